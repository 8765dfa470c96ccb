"""Errors the HTTP edge can raise, and their rendering as the OpenAI error envelope.

    GatewayError                      500 server_error
    ├── InvalidRequest                400 invalid_request_error  (param names the field)
    ├── AuthenticationFailed          401 invalid_request_error / invalid_api_key
    ├── PermissionDenied              403 invalid_request_error
    ├── NotFound                      404 invalid_request_error  (model_not_found, …)
    ├── Conflict                      409 invalid_request_error
    ├── PayloadTooLarge               413 invalid_request_error
    ├── Unprocessable                 422 invalid_request_error
    ├── InsufficientQuota             402 insufficient_quota
    ├── RateLimited                   429 rate_limit_exceeded (code names the limit)
    ├── UpstreamFailed                500 server_error / upstream_error
    ├── Overloaded                    503 server_error / overloaded
    ├── ServiceUnavailable            503 server_error / service_unavailable (database outage)
    └── GenerationTimeout             504 server_error / generation_timeout (carries job_id)

Every response body is `{"error": {"message", "type", "param", "code"}}`; nothing else ever reaches a
client, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from app.core.outage import is_database_outage, outages

log = logging.getLogger("heytoken.errors")


class GatewayError(Exception):
    status_code: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(GatewayError):
    status_code = 400
    type = "invalid_request_error"
    # The fault of most checks that name no code: the field has the right type, not a usable value.
    code = "invalid_value"


class AuthenticationFailed(GatewayError):
    status_code = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status_code = 403
    type = "invalid_request_error"
    code = "permission_denied"


class NotFound(GatewayError):
    status_code = 404
    type = "invalid_request_error"
    code = "not_found"


class Conflict(GatewayError):
    status_code = 409
    type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(GatewayError):
    status_code = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class Unprocessable(GatewayError):
    status_code = 422
    type = "invalid_request_error"
    code = "unprocessable"


class InsufficientQuota(GatewayError):
    status_code = 402
    type = "insufficient_quota"
    code = "insufficient_quota"
    available: int | None = None
    """What the account had available when refused (lets a capless chat request size its cap to it)."""


class RateLimited(GatewayError):
    status_code = 429
    type = "rate_limit_exceeded"


class UpstreamFailed(GatewayError):
    status_code = 500
    type = "server_error"
    code = "upstream_error"


class Overloaded(GatewayError):
    status_code = 503
    type = "server_error"
    code = "overloaded"


DATABASE_RETRY_AFTER_SECONDS = 5


class ServiceUnavailable(GatewayError):
    """The database cannot be reached: nothing wrong with the request, worth retrying shortly."""

    status_code = 503
    type = "server_error"
    code = "service_unavailable"


def database_unavailable(exc: BaseException, where: str) -> ServiceUnavailable:
    """The answer to a database outage met at `where` (logged once per burst, see app.core.outage)."""
    outages.warn(where, exc)
    return ServiceUnavailable(
        "The service is temporarily unavailable: its database cannot be reached. Please retry shortly.",
        headers={"retry-after": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


class GenerationTimeout(GatewayError):
    """A synchronous wait for a job ran out; the job goes on and can be fetched by its id."""

    status_code = 504
    type = "server_error"
    code = "generation_timeout"

    def __init__(self, message: str, *, job_id: str) -> None:
        # The SDK would otherwise retry the POST and start a second, billed job.
        super().__init__(message, headers={"x-should-retry": "false"})
        self.job_id = job_id

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"]["job_id"] = self.job_id
        return body


_ENCODER = msgspec.json.Encoder()


def error_response(status_code: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> Response[bytes]:
    return Response(
        content=_ENCODER.encode(body),
        status_code=status_code,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def gateway_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, GatewayError)
    return error_response(exc.status_code, exc.body(), exc.headers)


_HTTP_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "payload_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
    429: ("rate_limit_exceeded", "rate_limit_exceeded"),
}


def http_exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Litestar's own exceptions (unknown route, wrong method, body too large, validation) → envelope."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status >= 500:
        return internal_error_handler(request, exc)
    err_type, code = _HTTP_TYPES.get(status, ("invalid_request_error", "invalid_request"))
    message = exc.detail
    if status == 404:
        message = f"Unknown path: {request.method} {request.url.path}"
    elif status == 413:
        message = "Request body is larger than this server accepts."
    body = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    headers = {k: v for k, v in (exc.headers or {}).items()}
    return error_response(status, body, headers)


INTERNAL_ERROR_BODY: dict[str, Any] = {
    "error": {
        "message": "The server had an error while processing your request.",
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }
}
"""What an unexpected failure answers: nothing of its cause reaches the client (the log has it)."""


class InternalError(GatewayError):
    """An unexpected failure, as answered: nothing of its cause (the log has it)."""

    code = "internal_error"

    def __init__(self) -> None:
        super().__init__(INTERNAL_ERROR_BODY["error"]["message"])


def unexpected_error(exc: BaseException, path: str) -> GatewayError:
    """What an exception no handler expected answers: 503 for a database outage (a WARNING per
    burst), else 500 with the traceback logged. Both pipelines (Litestar's and the fast path) use it."""
    if is_database_outage(exc):
        return database_unavailable(exc, f"path={path}")
    log.error("http.unhandled_error path=%s", path, exc_info=exc)
    return InternalError()


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    error = unexpected_error(exc, request.url.path)
    return error_response(error.status_code, error.body(), error.headers)
