"""Sign in (e-mail + password, or the operator's admin token), sign out."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie

from app.console import users
from app.console.pages import redirect, render
from app.console.resources import is_https, resources, throttle, viewer
from app.console.sessions import COOKIE, close_session, open_session
from app.core.db import unit_of_work
from app.core.errors import RateLimited

PRE_SIGN_IN = "ht_signin"
"""Double-submit token of the sign-in form (no session exists yet to hold a CSRF token)."""


def _cookie(request: Request[Any, Any, Any], key: str, value: str, max_age: int | None) -> Cookie:
    return Cookie(
        key=key, value=value, path="/console", max_age=max_age, httponly=True, secure=is_https(request), samesite="lax"
    )


@get("/")
async def home(request: Request[Any, Any, Any]) -> Response[Any]:
    return redirect(request, "/console/operator" if viewer(request).is_operator else "/console/keys")


@get("/sign-in")
async def sign_in_page(request: Request[Any, Any, Any]) -> Response[Any]:
    token = secrets.token_urlsafe(24)
    response = render(request, "sign_in.html", form_token=token)
    response.set_cookie(_cookie(request, PRE_SIGN_IN, token, 3600))
    return response


@post("/sign-in", status_code=303)
async def sign_in(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    expected = request.cookies.get(PRE_SIGN_IN) or ""
    given = str(form.get("csrf") or "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        return render(
            request, "error.html", status=403, status_code=403, message="Reload the sign-in page and try again."
        )
    res = resources(request)
    client = request.client.host if request.client else None
    gate = throttle(request)
    try:
        await gate.check(email, client)
    except RateLimited as exc:
        response = render(request, "sign_in.html", status=429, form_token=given, email=email, error=exc.message)
        response.headers.update(exc.headers)
        return response
    admin = res.settings.admin_token
    user = None
    if email.lower() == "operator" and admin is not None:
        ok = hmac.compare_digest(admin.get_secret_value().encode(), password.encode())
    else:
        async with unit_of_work(res.sessionmaker) as session:
            user = await users.authenticate(session, email, password)
        ok = user is not None
    if not ok:
        await gate.failed(email, client)
        return render(
            request, "sign_in.html", status=401, form_token=given, email=email,
            error="Wrong e-mail address or password.",
        )  # fmt: skip
    await gate.succeeded(email)
    token = await open_session(res.sessionmaker, user, res.settings.console_session_hours)
    signed_in = redirect(request, "/console/")
    signed_in.set_cookie(_cookie(request, COOKIE, token, int(res.settings.console_session_hours * 3600)))
    signed_in.delete_cookie(PRE_SIGN_IN, path="/console")
    return signed_in


@post("/sign-out", status_code=303)
async def sign_out(request: Request[Any, Any, Any]) -> Response[Any]:
    await close_session(resources(request).sessionmaker, viewer(request).session_id)
    response = redirect(request, "/console/sign-in", notice="Signed out.")
    response.delete_cookie(COOKIE, path="/console")
    return response


HANDLERS = [home, sign_in_page, sign_in, sign_out]
