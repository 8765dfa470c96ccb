"""Validation of `POST /v1/embeddings` bodies (OpenAI's four `input` forms)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.errors import InvalidRequest
from app.validation import optional_int, require_str, wrong_type

MAX_INPUTS = 2048
ENCODINGS = ("float", "base64")


@dataclass(slots=True)
class EmbeddingParams:
    model: str
    inputs: int


def _is_token_array(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)


def _check_input(body: dict[str, Any]) -> int:
    if body.get("input") is None:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input", code="missing_required_parameter")
    value = body["input"]
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("'input' must not be an empty string.", param="input", code="invalid_value")
        return 1
    if not isinstance(value, list):
        raise wrong_type("input", "a string, an array of strings or an array of token arrays", value)
    if not value:
        raise InvalidRequest("'input' must not be an empty array.", param="input", code="invalid_value")
    if len(value) > MAX_INPUTS:
        raise InvalidRequest(
            f"'input' may hold at most {MAX_INPUTS} items; got {len(value)}.", param="input", code="invalid_value"
        )
    if _is_token_array(value):
        return 1
    for i, item in enumerate(value):
        if isinstance(item, str):
            if not item:
                raise InvalidRequest(
                    f"'input[{i}]' must not be an empty string.", param=f"input[{i}]", code="invalid_value"
                )
        elif _is_token_array(item):
            if not item:
                raise InvalidRequest(
                    f"'input[{i}]' must not be an empty token array.", param=f"input[{i}]", code="invalid_value"
                )
        else:
            raise wrong_type(f"input[{i}]", "a string or an array of integers", item)
    return len(value)


def validate_embeddings(body: dict[str, Any]) -> EmbeddingParams:
    model = require_str(body, "model")
    inputs = _check_input(body)
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ENCODINGS:
        raise InvalidRequest(
            f"Invalid value for 'encoding_format': {encoding!r}; expected 'float' or 'base64'.",
            param="encoding_format",
            code="invalid_value",
        )
    optional_int(body, "dimensions", 1)
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise wrong_type("user", "a string", body["user"])
    return EmbeddingParams(model, inputs)
