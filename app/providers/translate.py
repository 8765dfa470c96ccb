"""What the translating adapters (Anthropic, Gemini) share: reading OpenAI requests, writing OpenAI
completions and chunks, and the skeleton of a translated stream."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import msgspec

from app.channels.catalog import Route
from app.core.upstream_errors import ProviderError, UpstreamRejected
from app.providers.base import DONE, ChatCall, StreamEvent, StreamStats, Usage
from app.providers.common import UpstreamResponse

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[^,]*)?;base64,(?P<data>.*)$", re.DOTALL)


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:` URL, None for any other URL."""
    match = DATA_URL.match(url)
    return (match["mime"], match["data"]) if match else None


def image_url_of(part: dict[str, Any]) -> str:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise unsupported("an image_url part without a url")
    return url


def unsupported(what: str, provider: str = "this provider") -> UpstreamRejected:
    message = f"The gateway cannot send {what} to {provider}."
    return UpstreamRejected(
        message,
        status=400,
        error={"message": message, "type": "invalid_request_error", "param": "messages", "code": "unsupported_content"},
    )


def arguments_of(raw: Any) -> Any:
    """A tool call's `arguments` (a JSON string in OpenAI's format) as a value."""
    if not isinstance(raw, str):
        return raw if isinstance(raw, dict) else {}
    try:
        value = _decode(raw) if raw.strip() else {}
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def thinking_budget(call: ChatCall, route: Route) -> int:
    """The thinking budget to send: the channel's option `thinking_budget` may lower the call's, never
    raise it (the hold was sized for the call's)."""
    option = route.options.get("thinking_budget")
    return call.thinking_budget if option is None else min(int(option), call.thinking_budget)


def stop_sequences(body: dict[str, Any]) -> list[str] | None:
    stop = body.get("stop")
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and stop:
        return [s for s in stop if isinstance(s, str)]
    return None


def openai_usage(usage: Usage, reasoning_tokens: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
    }


def completion(
    call: ChatCall, model: str, choices: list[dict[str, Any]], usage: Usage, reasoning_tokens: int = 0
) -> dict[str, Any]:
    return {
        "id": call.response_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": openai_usage(usage, reasoning_tokens),
    }


def message(text: str, reasoning: str, tool_calls: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": text or (None if tool_calls else ""), "refusal": None}
    if tool_calls:
        out["tool_calls"] = tool_calls
    if reasoning:
        out["reasoning_content"] = reasoning
    return out


class TranslatedStream:
    """Owns the upstream response; subclasses turn its events into OpenAI chunks with `_chunk`, yielded
    from `_events` with None at the end of each upstream read, so the chunks of one read go on together."""

    def __init__(self, response: UpstreamResponse, call: ChatCall, model: str) -> None:
        self._response = response
        self._id = call.response_id
        self._model = model
        self._created = int(time.time())
        self.stats = StreamStats()

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, index: int = 0) -> bytes:
        self._count(delta)
        return _encode(
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
        )

    def _usage_chunk(self, usage: Usage, reasoning_tokens: int = 0) -> bytes:
        self.stats.usage = usage
        return _encode(
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": openai_usage(usage, reasoning_tokens),
            }
        )

    def _count(self, delta: dict[str, Any]) -> None:
        chars = len(delta.get("content") or "") + len(delta.get("reasoning_content") or "")
        for call in delta.get("tool_calls") or ():
            fn = call.get("function") or {}
            chars += len(fn.get("arguments") or "") + len(fn.get("name") or "")
        if chars:
            self.stats.content_chars += chars
            self.stats.content_chunks += 1

    def _events(self) -> AsyncGenerator[StreamEvent | None]:
        raise NotImplementedError

    async def __aiter__(self) -> AsyncIterator[list[StreamEvent]]:
        batch: list[StreamEvent] = []
        events = self._events()
        try:
            async for event in events:
                if event is not None:
                    batch.append(event)
                elif batch:
                    yield batch
                    batch = []
        except ProviderError:
            if batch:
                yield batch  # what came before the error still reaches the client
            raise
        finally:
            await events.aclose()
        if self.stats.finished:
            batch.append(DONE)
        if batch:
            yield batch

    async def aclose(self) -> None:
        await self._response.aclose()
