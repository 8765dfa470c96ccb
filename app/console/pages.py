"""Rendering helpers of every console page: the template response, flash messages across a
redirect, the error page."""

from __future__ import annotations

import json
import logging
from base64 import urlsafe_b64decode, urlsafe_b64encode
from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template

from app.console.resources import VIEWER, is_https
from app.console.sessions import Viewer
from app.core.errors import GatewayError
from app.core.money import format_usd

log = logging.getLogger("heytoken.console")
FLASH = "ht_flash"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    # Our own files only: no CDN, no inline script; media may come from the object store's signed links.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: http: https:; media-src 'self' blob: http: https:; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'none'"
    ),
}


def usd(micros: int | None) -> str:
    """Dollars with cents, and the micro-dollars after them only when there are any."""
    if micros is None:
        return "—"
    text = format_usd(micros)
    return text[:-4] if text.endswith("0000") else text.rstrip("0")


def _read_flash(request: Request[Any, Any, Any]) -> dict[str, str]:
    raw = request.cookies.get(FLASH)
    if not raw:
        return {}
    try:
        value = json.loads(urlsafe_b64decode(raw.encode()))
    except ValueError:
        return {}
    return {k: str(v) for k, v in value.items() if k in ("notice", "error")} if isinstance(value, dict) else {}


def render(request: Request[Any, Any, Any], name: str, status: int = 200, **context: Any) -> Template:
    flash = _read_flash(request)
    context.setdefault("notice", flash.get("notice"))
    context.setdefault("error", flash.get("error"))
    viewer: Viewer | None = request.scope.get(VIEWER)  # type: ignore[assignment]
    response = Template(
        template_name=name,
        context={"viewer": viewer, "csrf": viewer.csrf if viewer else "", "path": request.url.path, **context},
        status_code=status,
        headers=SECURITY_HEADERS,
    )
    if FLASH in request.cookies:
        response.delete_cookie(FLASH, path="/console")
    return response


def redirect(
    request: Request[Any, Any, Any], to: str, *, notice: str | None = None, error: str | None = None
) -> Redirect:
    response = Redirect(path=to, status_code=303, headers=SECURITY_HEADERS)
    flash = {k: v for k, v in (("notice", notice), ("error", error)) if v}
    if flash:
        value = urlsafe_b64encode(json.dumps(flash).encode()).decode()
        response.set_cookie(flash_cookie(request, value))
    return response


def flash_cookie(request: Request[Any, Any, Any], value: str) -> Cookie:
    return Cookie(key=FLASH, value=value, path="/console", httponly=True, secure=is_https(request), samesite="lax")


def console_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Errors on console pages are pages too (the API's are JSON)."""
    if isinstance(exc, GatewayError):
        status, message = exc.status_code, exc.message
        headers = exc.headers
    elif isinstance(exc, HTTPException):
        status, message, headers = exc.status_code, str(exc.detail), {}
    else:
        log.error("console.unexpected_error path=%s", request.url.path, exc_info=exc)
        status, message, headers = 500, "Something went wrong on our side.", {}
    response = render(request, "error.html", status=status, message=message, status_code=status)
    response.headers.update(headers)
    return response
