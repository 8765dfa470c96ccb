"""Validation of `POST /v1/chat/completions` bodies. Unknown fields are kept and passed upstream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.errors import InvalidRequest
from app.validation import optional_bool, optional_int, optional_number, require_str, wrong_type

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
GATEWAY_ONLY_FIELDS = ("reasoning",)


@dataclass(slots=True)
class ChatParams:
    model: str
    messages: list[Any]
    stream: bool
    include_usage: bool
    reasoning: bool | None
    max_tokens: int | None
    n: int = 1


def _check_messages(body: dict[str, Any]) -> list[Any]:
    if body.get("messages") is None:
        raise InvalidRequest(
            "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
        )
    messages = body["messages"]
    if not isinstance(messages, list):
        raise wrong_type("messages", "an array", messages)
    if not messages:
        raise InvalidRequest("'messages' must contain at least one message.", param="messages", code="invalid_value")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise wrong_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise InvalidRequest(
                f"Missing required parameter: '{where}.role'.", param=f"{where}.role", code="missing_required_parameter"
            )
        if role not in ROLES:
            raise InvalidRequest(
                f"Invalid value for '{where}.role': {role!r}; expected one of {', '.join(sorted(ROLES))}.",
                param=f"{where}.role",
                code="invalid_value",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise wrong_type(f"{where}.content", "a string or an array of content parts", content)
        if content is None and role in ("user", "system", "developer"):
            raise InvalidRequest(
                f"Missing required parameter: '{where}.content'.",
                param=f"{where}.content",
                code="missing_required_parameter",
            )
    return messages


def validate_chat(body: dict[str, Any]) -> ChatParams:
    model = require_str(body, "model")
    messages = _check_messages(body)
    stream = bool(optional_bool(body, "stream"))
    optional_number(body, "temperature", 0, 2)
    optional_number(body, "top_p", 0, 1)
    optional_number(body, "presence_penalty", -2, 2)
    optional_number(body, "frequency_penalty", -2, 2)
    n = optional_int(body, "n", 1, 128) or 1
    max_tokens = optional_int(body, "max_tokens", 1)
    max_completion = optional_int(body, "max_completion_tokens", 1)
    reasoning = optional_bool(body, "reasoning")
    include_usage = False
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise wrong_type("stream_options", "an object", options)
        if not stream:
            raise InvalidRequest(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
        include_usage = bool(optional_bool(options, "include_usage"))
    for param, kind in (("tools", list), ("user", str), ("metadata", dict)):
        if body.get(param) is not None and not isinstance(body[param], kind):
            raise wrong_type(
                param, "an array" if kind is list else "a string" if kind is str else "an object", body[param]
            )
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str | list):
        raise wrong_type("stop", "a string or an array of strings", stop)
    return ChatParams(model, messages, stream, include_usage, reasoning, max_tokens or max_completion, n)
