"""What the OpenAPI document says of every route's errors: the OpenAI envelope, one shared component."""

from __future__ import annotations

import msgspec
from litestar.openapi.datastructures import ResponseSpec


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorEnvelope(msgspec.Struct):
    """Every error answer: `{"error": {"message", "type", "param", "code"}}`."""

    error: ErrorDetail


def _spec(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorEnvelope, description=description, generate_examples=False)


ERROR_RESPONSES: dict[int, ResponseSpec] = {
    400: _spec("Invalid request: `param` names the field, `code` the fault"),
    401: _spec("Invalid or missing API key"),
    402: _spec("Insufficient balance (`insufficient_quota`)"),
    404: _spec("Unknown model or object"),
    429: _spec("Rate limit reached (with `Retry-After`)"),
    500: _spec("Upstream failure after every channel was tried"),
    503: _spec("Overloaded or a dependency unavailable (with `Retry-After`)"),
}
