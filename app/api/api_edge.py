"""app.core.edge inside Litestar: the request class every route's `data: SomeStruct` is decoded with, and
Litestar's own validation failures (query and path parameters) in the OpenAI envelope.

Litestar decodes `data` with msgspec in lax mode (`"10"` would pass as an integer) and lets a
RecursionError or a NUL through; `EdgeRequest.json` decodes the body with `app.core.edge` instead, strictly
and into the handler's declared type, so the signature model only sees a finished Struct. Routes that
need the raw object too (idempotency fingerprints, vendors' extra fields) read it with `body_of`.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.datastructures import UploadFile
from litestar.exceptions import ValidationException
from litestar.types import Empty

from app.core import edge
from app.core.errors import GatewayError, InvalidRequest, NotFound, error_response

_BODY = "heytoken.body"
_UPLOADS = "heytoken.uploads"

ID_PARAMS: dict[str, tuple[str, str, str]] = {
    # parameter: (noun, code, param in a path) as the route's own 404 for an unknown id names them
    "video_id": ("video", "video_not_found", "id"),
    "image_id": ("image", "image_not_found", "id"),
    "job_id": ("job", "job_not_found", "id"),
    "endpoint_id": ("webhook endpoint", "webhook_endpoint_not_found", "id"),
    "event_id": ("webhook event", "webhook_event_not_found", "id"),
    "after": ("object", "not_found", "after"),
    "model_id": ("model", "model_not_found", "model"),
    "account": ("account", "account_not_found", "account"),
    "key_id": ("API key", "key_not_found", "key"),
    "channel": ("channel", "channel_not_found", "channel"),
}
"""Path and query parameters that name an object: a malformed one names no object, so it answers the
route's own 404 (as an unknown id would), before any query is made."""


class EdgeRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        if self._json is not Empty:
            return self._json
        raw = await self._raw_object()
        field = self.route_handler.parsed_data_field
        value: Any = raw if field is None else edge.convert(raw, field.annotation)
        self._json = value
        return value

    async def _raw_object(self) -> dict[str, Any]:
        if _BODY in self.scope:
            return self.scope[_BODY]  # type: ignore[literal-required, no-any-return]
        if self.headers.get("content-type", "").startswith("multipart/form-data"):
            body = await _form_object(self)
        else:
            body = edge.decode_object(await self.body())
        self.scope[_BODY] = body  # type: ignore[literal-required]
        return body


async def _form_object(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Multipart fields → the JSON object they stand for (`metadata[k]` → metadata.k, `x[]` → a list);
    files are kept aside (`uploads_of`), a JSON-encoded field value stays a string unless it is an
    object field (`input_reference`)."""
    body: dict[str, Any] = {}
    uploads: dict[str, UploadFile] = {}
    try:
        form = await request.form()
    except UnicodeDecodeError:
        raise InvalidRequest("The request body is not valid: a form field is not UTF-8.", code="invalid_json") from None
    for key in form:
        values = form.getall(key)
        if isinstance(values[-1], UploadFile):
            uploads[key] = values[-1]
        elif key.endswith("[]"):
            body.setdefault(key[:-2], []).extend(values)
        elif key.startswith("metadata[") and key.endswith("]"):
            body.setdefault("metadata", {})[key[9:-1]] = values[-1]
        else:
            body[key] = values[-1]
    if isinstance(body.get("input_reference"), str):
        try:
            body["input_reference"] = edge.decode_json(body["input_reference"].encode())
        except InvalidRequest as exc:
            raise InvalidRequest(
                "'input_reference' must be a file, or a JSON object with image_url or file_id.",
                param="input_reference",
                code=exc.code,
            ) from None
    edge.check_json(body, "")
    request.scope[_UPLOADS] = uploads  # type: ignore[literal-required]
    return body


async def body_of(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The checked JSON object of the body (after `data` was decoded from it)."""
    if not isinstance(request, EdgeRequest):
        raise TypeError("the app must be built with request_class=EdgeRequest")
    return await request._raw_object()


def uploads_of(request: Request[Any, Any, Any]) -> dict[str, UploadFile]:
    uploads: dict[str, UploadFile] = request.scope.get(_UPLOADS, {})  # type: ignore[assignment]
    return uploads


def validation_exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Litestar's ValidationException (a query or path value that does not fit its type) → 400 naming
    the parameter, or the route's 404 for a malformed id."""
    error = as_gateway_error(exc, _aliases(request))
    return error_response(error.status_code, error.body(), error.headers)


def _aliases(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Python parameter name → the name the client sent (`event_type` → `type`)."""
    aliases = {}
    for name, field in request.route_handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        alias = getattr(kwarg, "query", None) or getattr(kwarg, "name", None)
        if alias:
            aliases[name] = alias
    return aliases


def as_gateway_error(exc: Exception, aliases: dict[str, str] | None = None) -> GatewayError:
    assert isinstance(exc, ValidationException)
    extra = exc.extra if isinstance(exc.extra, list) else []
    first: dict[str, Any] = extra[0] if extra and isinstance(extra[0], dict) else {}
    key = str(first.get("key") or "")
    key = (aliases or {}).get(key, key)
    message = str(first.get("message") or exc.detail)
    source = first.get("source")
    if not first:  # Litestar's own body checks (a multipart body without its boundary)
        return InvalidRequest(f"The request body is not valid: {exc.detail}.", code="invalid_request")
    if key in ("", "data") and source in (None, "body"):
        return InvalidRequest("The request body is empty; expected a JSON object.", code="invalid_json")
    if key in ID_PARAMS and source in ("path", "query"):
        noun, code, param = ID_PARAMS[key]
        return NotFound(f"No {noun} found with that id.", param=param if source == "path" else key, code=code)
    if message.startswith("Missing required") or "missing required" in message:
        return InvalidRequest(f"Missing required parameter: '{key}'.", param=key, code="missing_required_parameter")
    code = "invalid_type" if ", got `" in message else "invalid_value"
    message = message.replace("matching regex '^[^\\x00]*$'", "without NUL characters")
    return InvalidRequest(f"Invalid value for '{key}': {message}.", param=key or None, code=code)
