"""The edge: a request is decoded once, into msgspec Structs, and what the core must never see stops here.

Every body, query and path value goes through this module (or a Struct built from its types) before it
reaches SQL, Lua, an upstream or a log line:

- strings: no NUL (PostgreSQL refuses it, C strings cut at it); lone surrogates cannot get through,
  since msgspec refuses them while decoding JSON and `check_json` refuses them anywhere else;
- integers: within a signed 64-bit column (`Int64`) or a tighter range of the field;
- nesting: at most `MAX_DEPTH` levels in any free-form JSON value;
- bytes: valid UTF-8 JSON.

A failure is an `InvalidRequest` (400) naming the field in `param` with a non-null `code`; the same
fault gets the same code on every route:

    invalid_json                the body is not JSON, not UTF-8, or not an object
    missing_required_parameter  a required field is absent or null
    invalid_type                a field has the wrong JSON type
    invalid_value               the type is right, the value is not (range, length, enum, pattern)
    nesting_too_deep            a JSON value nests deeper than MAX_DEPTH
    invalid_header              a header is repeated or malformed (Authorization)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, TypeVar

import msgspec

from app.core.errors import InvalidRequest

MAX_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1

NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, msgspec.Meta(pattern=NO_NUL)]
"""Any string a client sends: no NUL."""
NonEmptyText = Annotated[str, msgspec.Meta(min_length=1, pattern=NO_NUL)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_NUL)]
"""A model name, an account name, a label: short and printable."""
Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
NonNegative64 = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
Count = Annotated[int, msgspec.Meta(ge=1, le=INT32_MAX)]
"""A positive count of tokens, items or seconds: fits every column and every Lua number exactly."""
ObjectId = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
"""One of our ids (`video_01J…`, `chatcmpl-01J…`) in a path or query: anything else names no object."""

T = TypeVar("T")
_decode_any = msgspec.json.Decoder().decode


def decode_json(raw: bytes) -> Any:
    """The body as plain JSON values, or 400 `invalid_json`."""
    if not raw.strip():
        raise InvalidRequest("The request body is empty; expected a JSON object.", code="invalid_json")
    try:
        return _decode_any(raw)
    except RecursionError:
        raise _too_deep("body") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {_reason(exc)}.", code="invalid_json") from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8"
    text = str(exc)
    # msgspec reports an escaped lone surrogate (\ud800) as a truncated input.
    return "a string holds an invalid escape or a lone surrogate" if "truncated" in text else text


def decode_object(raw: bytes) -> dict[str, Any]:
    """The body as a checked JSON object (see `check_json`), or 400."""
    body = decode_json(raw)
    if not isinstance(body, dict):
        raise InvalidRequest(f"The request body must be a JSON object, not {type_name(body)}.", code="invalid_json")
    if _may_hold_unsafe_values(raw):
        check_json(body, "")
    return body


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def _may_hold_unsafe_values(raw: bytes) -> bool:
    """Whether a decoded body needs the walk (a few microseconds of Python per body): a NUL can only be
    written `\\u0000` in JSON (msgspec refuses raw control characters, and lone surrogates in any form),
    an integer past 64 bits needs 19 digits, and nesting deeper than MAX_DEPTH needs that many brackets.
    Scanning the bytes for these is C-speed; a false alarm only costs the walk."""
    return (
        raw.count(b"[") + raw.count(b"{") >= MAX_DEPTH
        or b"\\u0000" in raw
        or _LONG_NUMBER in raw.translate(_DIGITS_AS_ZERO)
    )


def decode(raw: bytes, into: type[T]) -> T:
    """Decode a body into its Struct: one JSON parse, the free-form parts checked, the fields converted."""
    return convert(decode_object(raw), into)


def convert(value: Any, into: type[T], *, param: str | None = None) -> T:
    """Checked JSON values → a Struct (or any msgspec type); a failure names the field."""
    try:
        return msgspec.convert(value, into, strict=True)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, param) from None


_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`")


def validation_error(exc: msgspec.ValidationError, prefix: str | None = None) -> InvalidRequest:
    """msgspec's message (`Expected `int` <= 10 - at `$.n``) as the OpenAI envelope's fields."""
    text = str(exc)
    match = _PATH.search(text)
    # `[...]` is msgspec's name for "some key of this object": the object is the parameter.
    path = match["path"].replace("[...]", "").lstrip(".") if match else ""
    detail = text[: match.start()] if match else text
    missing = _MISSING.match(detail)
    if missing:
        path = f"{path}.{missing['field']}" if path else missing["field"]
        code = "missing_required_parameter"
        message = f"Missing required parameter: '{_join(prefix, path)}'."
    else:
        code = "invalid_type" if (", got `" in detail or detail.startswith("Expected `object`")) else "invalid_value"
        unknown = _UNKNOWN.match(detail)
        if unknown:
            code = "unknown_parameter"
            path = f"{path}.{unknown['field']}" if path else unknown["field"]
        detail = detail.replace("matching regex '^[^\\x00]*$'", "without NUL characters")
        message = f"Invalid value for '{_join(prefix, path)}': {detail}." if path else f"Invalid request: {detail}."
    return InvalidRequest(message, param=_join(prefix, path) or None, code=code)


def _join(prefix: str | None, path: str) -> str:
    if not prefix:
        return path
    if not path:
        return prefix
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def check_json(value: Any, param: str) -> None:
    """Walk a free-form JSON value: no NUL or lone surrogate in any string or key, every integer a
    signed 64-bit one, no deeper than MAX_DEPTH. Raises 400 naming where."""
    _locate(value, param)


def _locate(value: Any, param: str, depth: int = 0) -> None:
    if isinstance(value, str):
        check_text(value, param or "body")
    elif isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise _too_deep(param or "body")
        for key, item in value.items():
            check_text(key, param or "body")
            _locate(item, f"{param}.{key}" if param else key, depth + 1)
    elif isinstance(value, list):
        if depth >= MAX_DEPTH:
            raise _too_deep(param or "body")
        for i, item in enumerate(value):
            _locate(item, f"{param}[{i}]", depth + 1)
    elif isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        raise InvalidRequest(
            f"Invalid value for '{param}': integers must fit in 64 bits.", param=param or None, code="invalid_value"
        )


def check_text(value: str, param: str) -> None:
    if "\x00" in value:
        raise InvalidRequest(
            f"Invalid value for '{param}': NUL characters are not allowed.", param=param, code="invalid_value"
        )
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidRequest(
            f"Invalid value for '{param}': lone surrogates are not allowed.", param=param, code="invalid_value"
        ) from None


def is_clean_id(value: str, max_length: int = 200) -> bool:
    """An id or cursor from a path or query: looked up only when it could exist (else 404, not a query)."""
    if not value or len(value) > max_length or "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _too_deep(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"The request nests JSON deeper than {MAX_DEPTH} levels at '{param}'.", param=param, code="nesting_too_deep"
    )


def single_header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The one value of a header, None when absent; 400 when it is repeated (proxies and frameworks
    disagree on which copy wins, so no copy does)."""
    found: str | None = None
    for key, value in headers:
        if key == name:
            if found is not None:
                header = name.decode().title()
                raise InvalidRequest(
                    f"The {header} header was sent more than once.", param=header, code="invalid_header"
                )
            found = value.decode("latin-1")
    return found


_TYPE_NAMES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)
