"""Anthropic Messages API behind the OpenAI Chat Completions API, both ways, streaming and not; the
request side is in anthropic_request.py.

Response: text, `tool_use` → `tool_calls`, `thinking` → `reasoning_content` (as DeepSeek sends it),
usage with cache reads and writes counted as prompt tokens. The SSE events (message_start,
content_block_start/delta/stop, message_delta, message_stop, ping, error) become `chat.completion.chunk`s.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import aiohttp
import msgspec

from app.channels.catalog import Route
from app.core.upstream_errors import ProviderError, UpstreamRateLimited, UpstreamRejected, UpstreamUnavailable
from app.providers.anthropic_request import to_anthropic
from app.providers.base import ChatCall, ChatResult, EmbedCall, EmbedResult, StreamEvent, Usage
from app.providers.common import json_headers, open_stream, post
from app.providers.sse import SSESplitter
from app.providers.translate import (
    TranslatedStream,
    completion,
    message,
    unsupported,
)

API_VERSION = "2023-06-01"
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def _usage(raw: Any) -> Usage:
    u = raw if isinstance(raw, dict) else {}
    cached = int(u.get("cache_read_input_tokens") or 0)
    prompt = int(u.get("input_tokens") or 0) + cached + int(u.get("cache_creation_input_tokens") or 0)
    output = int(u.get("output_tokens") or 0)
    return Usage(prompt, output, prompt + output, cached)


def from_anthropic(msg: dict[str, Any], call: ChatCall, model: str) -> ChatResult:
    text: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in msg.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text") or "")
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
        elif kind == "tool_use":
            arguments = _encode(block.get("input") or {}).decode()
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": arguments},
                }
            )
    finish = FINISH.get(str(msg.get("stop_reason")), "stop")
    choice = {"index": 0, "message": message("".join(text), "".join(reasoning), tool_calls), "logprobs": None}
    choice["finish_reason"] = finish
    usage = _usage(msg.get("usage"))
    return ChatResult(completion(call, str(msg.get("model") or model), [choice], usage), usage)


def stream_error(error: Any) -> ProviderError:
    err = error if isinstance(error, dict) else {"message": str(error)}
    kind, text = str(err.get("type") or ""), f"Upstream error mid-stream: {err.get('message')}"
    if kind == "rate_limit_error":
        return UpstreamRateLimited(text, status=429, error=err)
    if kind in ("invalid_request_error", "permission_error", "not_found_error", "request_too_large"):
        return UpstreamRejected(text, status=400, error={**err, "type": "invalid_request_error"})
    return UpstreamUnavailable(text, status=529 if kind == "overloaded_error" else 500, error=err)


class AnthropicChatStream(TranslatedStream):
    async def _events(self) -> AsyncGenerator[StreamEvent | None]:
        splitter, stats = SSESplitter(), self.stats
        tools: dict[int, int] = {}  # content block index → tool call index
        usage: dict[str, Any] = {}
        async for raw in self._response:
            for payload in splitter.feed(raw):
                try:
                    event = _decode(payload)
                except msgspec.DecodeError:
                    continue
                kind = event.get("type") if isinstance(event, dict) else None
                if kind == "message_start":
                    start = event.get("message") or {}
                    self._model = str(start.get("model") or self._model)
                    usage.update(start.get("usage") or {})
                    yield StreamEvent(self._chunk({"role": "assistant", "content": ""}))
                elif kind == "content_block_start":
                    block = event.get("content_block") or {}
                    if block.get("type") == "tool_use":
                        tools[event.get("index", 0)] = n = len(tools)
                        fn = {"name": block.get("name"), "arguments": ""}
                        yield StreamEvent(
                            self._chunk(
                                {
                                    "tool_calls": [
                                        {"index": n, "id": block.get("id"), "type": "function", "function": fn}
                                    ]
                                }
                            )
                        )
                    elif block.get("type") == "text" and block.get("text"):
                        yield StreamEvent(self._chunk({"content": block["text"]}))
                elif kind == "content_block_delta":
                    delta = self._delta(event.get("delta") or {}, tools.get(event.get("index", 0)))
                    if delta:
                        yield StreamEvent(self._chunk(delta))
                elif kind == "message_delta":
                    usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
                    reason = (event.get("delta") or {}).get("stop_reason")
                    if reason:
                        yield StreamEvent(self._chunk({}, FINISH.get(reason, "stop")))
                elif kind == "message_stop":
                    stats.finished = True
                    yield StreamEvent(self._usage_chunk(_usage(usage)), usage_only=True)
                    return
                elif kind == "error":
                    raise stream_error(event.get("error"))
            yield None  # the end of one upstream read
        raise UpstreamUnavailable("Upstream closed the stream before it finished.")

    @staticmethod
    def _delta(delta: dict[str, Any], tool: int | None) -> dict[str, Any] | None:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return {"content": delta["text"]}
        if kind == "thinking_delta" and delta.get("thinking"):
            return {"reasoning_content": delta["thinking"]}
        if kind == "input_json_delta" and tool is not None and delta.get("partial_json"):
            return {"tool_calls": [{"index": tool, "function": {"arguments": delta["partial_json"]}}]}
        return None  # signature_delta, citations_delta: nothing an OpenAI client reads


class AnthropicProvider:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    @staticmethod
    def _headers(route: Route) -> dict[str, str]:
        return json_headers(route, "x-api-key", fixed={"anthropic-version": API_VERSION})

    async def chat(self, route: Route, call: ChatCall) -> ChatResult:
        body = to_anthropic(call, route)
        content = await post(
            self._session, f"{route.base_url}/messages", _encode(body), self._headers(route), route.policy.http_timeout
        )
        try:
            msg = _decode(content)
        except msgspec.DecodeError as exc:
            raise UpstreamUnavailable("Upstream answered 200 with a body that is not JSON.") from exc
        if not isinstance(msg, dict) or msg.get("type") == "error":
            raise stream_error(msg.get("error") if isinstance(msg, dict) else msg)
        return from_anthropic(msg, call, route.upstream_model)

    async def open_chat_stream(self, route: Route, call: ChatCall) -> AnthropicChatStream:
        body = {**to_anthropic(call, route), "stream": True}
        response = await open_stream(
            self._session, f"{route.base_url}/messages", _encode(body), self._headers(route), route.policy.http_timeout
        )
        return AnthropicChatStream(response, call, route.upstream_model)

    async def embed(self, route: Route, call: EmbedCall) -> EmbedResult:
        raise unsupported("an embeddings request", "Anthropic (it has no embeddings API)")
