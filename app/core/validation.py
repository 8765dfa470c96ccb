"""Small checks shared by every request parser; each failure names its field (`param`)."""

from __future__ import annotations

from typing import Any

from app.core.edge import type_name
from app.core.errors import InvalidRequest


def wrong_type(param: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def require_str(body: dict[str, Any], param: str) -> str:
    if param not in body or body[param] is None:
        raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    value = body[param]
    if not isinstance(value, str):
        raise wrong_type(param, "a string", value)
    if not value.strip():
        raise InvalidRequest(f"'{param}' must not be empty.", param=param, code="invalid_value")
    return value


def optional_bool(body: dict[str, Any], param: str) -> bool | None:
    value = body.get(param)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise wrong_type(param, "a boolean", value)
    return value


def optional_int(body: dict[str, Any], param: str, low: int, high: int | None = None) -> int | None:
    value = body.get(param)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(param, "an integer", value)
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise InvalidRequest(f"'{param}' must be {bound}; got {value}.", param=param, code="invalid_value")
    return value
