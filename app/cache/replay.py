"""Chat answers between their two shapes: a stream's chunks assembled into one `chat.completion` (to
store it), and a stored completion replayed as OpenAI's chunks (role, content, finish, usage when
asked, `[DONE]`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

_encode = msgspec.json.Encoder().encode
PIECE = 48
"""Characters of content per replayed chunk."""
_META = ("created", "model", "system_fingerprint", "service_tier")


class Assembler:
    """Builds the completion a stream amounts to; anything it cannot rebuild exactly (log
    probabilities, audio, a legacy function call) makes the answer not storable."""

    def __init__(self) -> None:
        self.meta: dict[str, Any] = {}
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] | None = None
        self.storable = True

    def add(self, chunk: dict[str, Any]) -> None:
        for name in _META:
            if name in chunk and name not in self.meta:
                self.meta[name] = chunk[name]
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for part in chunk.get("choices") or ():
            index = part.get("index", 0)
            choice = self.choices.setdefault(
                index, {"index": index, "message": {"role": "assistant"}, "finish_reason": None}
            )
            if part.get("logprobs"):
                self.storable = False
            message = choice["message"]
            for name, value in (part.get("delta") or {}).items():
                if name == "tool_calls" and isinstance(value, list):
                    self._tool_calls(message.setdefault("tool_calls", []), value)
                elif name == "role":
                    message["role"] = value
                elif isinstance(value, str):
                    message[name] = message.get(name, "") + value
                elif value is not None:
                    self.storable = False
            if part.get("finish_reason"):
                choice["finish_reason"] = part["finish_reason"]

    def _tool_calls(self, calls: list[dict[str, Any]], deltas: list[Any]) -> None:
        for delta in deltas:
            index = delta.get("index", 0)
            while len(calls) <= index:
                calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
            call = calls[index]
            if delta.get("id"):
                call["id"] = delta["id"]
            if delta.get("type"):
                call["type"] = delta["type"]
            function = delta.get("function") or {}
            call["function"]["name"] += function.get("name") or ""
            call["function"]["arguments"] += function.get("arguments") or ""

    def completion(self) -> dict[str, Any] | None:
        """The completion, or None when it is not storable or not finished (every choice ended)."""
        if not self.storable or not self.choices or self.usage is None:
            return None
        choices = [self.choices[i] for i in sorted(self.choices)]
        if any(choice["finish_reason"] is None for choice in choices):
            return None
        for choice in choices:
            choice["message"].setdefault("content", None)
        return {"id": "", "object": "chat.completion", **self.meta, "choices": choices, "usage": self.usage}


def frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + _encode(payload) + b"\n\n"


DONE = b"data: [DONE]\n\n"


def replay(completion: dict[str, Any], job_id: str, usage: dict[str, Any] | None) -> Iterator[bytes]:
    """The completion as SSE frames; `usage` (with its cost) is sent last when the client asked for it."""
    base = {"id": job_id, "object": "chat.completion.chunk"}
    base.update((name, completion[name]) for name in _META if name in completion)

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return frame({**base, "choices": [choice]})

    for choice in completion.get("choices") or ():
        index, message = choice.get("index", 0), choice.get("message") or {}
        yield chunk(index, {"role": message.get("role", "assistant"), "content": ""})
        content = message.get("content") or ""
        for at in range(0, len(content), PIECE):
            yield chunk(index, {"content": content[at : at + PIECE]})
        for name, value in message.items():
            if name not in ("role", "content", "tool_calls") and isinstance(value, str) and value:
                yield chunk(index, {name: value})
        if message.get("tool_calls"):
            calls = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
            yield chunk(index, {"tool_calls": calls})
        yield chunk(index, {}, choice.get("finish_reason") or "stop")
    if usage is not None:
        yield frame({**base, "choices": [], "usage": usage})
    yield DONE


def live_chunk(chunk: dict[str, Any], job_id: str) -> bytes:
    """An upstream chunk relayed to a waiter under the waiter's own id."""
    return frame({**chunk, "id": job_id})
