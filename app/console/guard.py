"""The console router's before_request: who is signed in, and the CSRF check of every POST."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response

from app.console.pages import redirect, render
from app.console.resources import VIEWER, resources
from app.console.sessions import COOKIE, csrf_ok, load_viewer

log = logging.getLogger("heytoken.console")

SIGN_IN = "/console/sign-in"
OPEN_PATHS = frozenset({SIGN_IN, "/console/stripe/webhook"})
"""Reachable signed out. The sign-in form has its own CSRF check (a double-submit cookie); Stripe's
webhook is verified by its signature."""
OPERATOR_PREFIX = "/console/operator"
SHARED_PATHS = frozenset({"/console", "/console/", "/console/sign-out"})


async def load_session(request: Request[Any, Any, Any]) -> Response[Any] | None:
    path = request.url.path
    viewer = await load_viewer(resources(request).sessionmaker, request.cookies.get(COOKIE))
    if viewer is not None:
        request.scope[VIEWER] = viewer  # type: ignore[literal-required]
    if path in OPEN_PATHS:
        return None
    if viewer is None:
        if request.method == "GET":
            return redirect(request, SIGN_IN)
        return render(request, "error.html", status=401, status_code=401, message="Sign in first.")
    if request.method not in ("GET", "HEAD"):
        form = await request.form()
        if not csrf_ok(viewer, form.get("csrf")):
            log.warning("console.csrf_refused path=%s", path)
            return render(
                request, "error.html", status=403, status_code=403,
                message="This form has expired or did not come from the console. Reload the page and try again.",
            )  # fmt: skip
    # The operator's pages are the operator's; an account's people read them as unknown (and the other way round).
    if path not in SHARED_PATHS and path.startswith(OPERATOR_PREFIX) != viewer.is_operator:
        return render(request, "error.html", status=404, status_code=404, message="Page not found.")
    return None
