"""OpenAI-compatible upstreams (OpenAI, DeepSeek, vLLM, Groq, …): bodies relayed as they are.

Streams are relayed read for read: the events that arrived together go on together, each payload
decoded once (to read usage and count content) and sent on as the same bytes, with only the upstream's
id swapped for ours.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec

from app.channels.catalog import Route
from app.core.tokens import estimate_prompt_tokens, estimate_text_tokens
from app.core.upstream_errors import ProviderError, UpstreamUnavailable
from app.providers.base import DONE, ChatCall, ChatResult, EmbedCall, EmbedResult, StreamEvent, StreamStats, Usage
from app.providers.common import UpstreamResponse, json_headers, open_stream, post
from app.providers.sse import SSESplitter

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class _UsageOnly(msgspec.Struct):
    usage: dict[str, Any] | None = None


_decode_usage = msgspec.json.Decoder(_UsageOnly).decode


def apply_reasoning(body: dict[str, Any], reasoning: bool | None, options: dict[str, Any]) -> None:
    """Map the gateway's `reasoning: bool` onto the upstream's own switch (route option `reasoning`):
    `effort` (default) → `reasoning_effort`; `thinking` → DeepSeek/Qwen-style `thinking`;
    `model:<name>` → a different upstream model (e.g. `model:deepseek-reasoner`)."""
    if reasoning is None:
        return
    mode = str(options.get("reasoning", "effort"))
    if mode == "thinking":
        body.setdefault("thinking", {"type": "enabled" if reasoning else "disabled"})
    elif mode.startswith("model:"):
        if reasoning:
            body["model"] = mode.removeprefix("model:")
    elif reasoning:
        body.setdefault("reasoning_effort", options.get("reasoning_effort", "medium"))


class OpenAIProvider:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    @staticmethod
    def _headers(route: Route) -> dict[str, str]:
        return json_headers(route, "authorization", "Bearer ")

    async def _post(self, route: Route, path: str, body: dict[str, Any]) -> bytes:
        return await post(
            self._session, f"{route.base_url}{path}", _encode(body), self._headers(route), route.policy.http_timeout
        )

    async def chat(self, route: Route, call: ChatCall) -> ChatResult:
        body = dict(call.body)
        apply_reasoning(body, call.reasoning, route.options)
        content = await self._post(route, "/chat/completions", body)
        try:
            completion = _decode(content)
        except msgspec.DecodeError as exc:
            raise UpstreamUnavailable("Upstream answered 200 with a body that is not JSON.") from exc
        if not isinstance(completion, dict):
            raise UpstreamUnavailable("Upstream answered 200 with a body that is not a JSON object.")
        completion["id"] = call.response_id
        usage = Usage.from_openai(completion.get("usage"))
        if usage is None:
            text = "".join(str((c.get("message") or {}).get("content") or "") for c in completion.get("choices") or [])
            prompt = estimate_prompt_tokens(body.get("messages") or [])
            completion_tokens = estimate_text_tokens(len(text))
            usage = Usage(prompt, completion_tokens, prompt + completion_tokens, estimated=True)
        return ChatResult(completion, usage)

    async def open_chat_stream(self, route: Route, call: ChatCall) -> OpenAIChatStream:
        body = dict(call.body)
        apply_reasoning(body, call.reasoning, route.options)
        body["stream"] = True
        # The gateway always reads usage; the client sees the usage chunk only if it asked for it.
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        response = await open_stream(
            self._session,
            f"{route.base_url}/chat/completions",
            _encode(body),
            self._headers(route),
            route.policy.http_timeout,
        )
        return OpenAIChatStream(response, call.response_id)

    async def embed(self, route: Route, call: EmbedCall) -> EmbedResult:
        content = await self._post(route, "/embeddings", call.body)
        try:
            usage = Usage.from_openai(_decode_usage(content).usage)
        except msgspec.DecodeError as exc:
            raise UpstreamUnavailable("Upstream answered 200 with a body that is not JSON.") from exc
        return EmbedResult(content, usage or Usage(estimated=True))


class _Function(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCall(msgspec.Struct):
    function: _Function | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Chunk(msgspec.Struct):
    """Just what the relay reads of a `chat.completion.chunk`; every other field is skipped unparsed."""

    id: str | None = None
    choices: list[_Choice] | None = None
    usage: dict[str, Any] | None = None
    error: Any = None


_decode_chunk = msgspec.json.Decoder(_Chunk).decode


class OpenAIChatStream:
    """Relays the upstream's payloads as they are, the events of one read together. Each payload is
    decoded once into `_Chunk` (content counted, usage read); one of another shape than OpenAI's (say
    `content` as a list) takes the slower untyped path, which reads the same fields where they are."""

    def __init__(self, response: UpstreamResponse, response_id: str) -> None:
        self._response = response
        self._id = response_id
        self.stats = StreamStats()

    async def __aiter__(self) -> AsyncIterator[list[StreamEvent]]:
        splitter = SSESplitter()
        stats = self.stats
        old_id: bytes | None = None
        new_id = b'"id":"' + self._id.encode() + b'"'
        saw_finish = False
        async for raw in self._response:
            batch: list[StreamEvent] = []
            for payload in splitter.feed(raw):
                if payload == b"[DONE]":
                    batch.append(DONE)
                    yield batch
                    stats.finished = True
                    return
                try:
                    chunk = _decode_chunk(payload)
                except msgspec.ValidationError:
                    try:
                        event = self._untyped(payload)
                    except UpstreamUnavailable:
                        if batch:
                            yield batch
                        raise
                    if event is not None:
                        saw_finish = saw_finish or event[1]
                        batch.append(event[0])
                    continue
                except msgspec.DecodeError:
                    continue
                if chunk.error:
                    if batch:
                        yield batch  # what came before the error still reaches the client
                    raise _stream_error(chunk.error)
                usage = chunk.usage
                if usage:
                    stats.usage = Usage.from_openai(usage)
                choices = chunk.choices
                if choices:
                    for choice in choices:
                        saw_finish = saw_finish or bool(choice.finish_reason)
                        delta = choice.delta
                        if delta is not None:
                            _count_typed(stats, delta)
                if old_id is None:
                    old_id = b'"id":"' + (chunk.id or "").encode() + b'"'
                if old_id in payload:
                    payload = payload.replace(old_id, new_id, 1)
                else:
                    untyped = _decode(payload)
                    untyped["id"] = self._id
                    payload = _encode(untyped)
                batch.append(StreamEvent(payload, usage_only=not choices and usage is not None))
            if batch:
                yield batch
        if saw_finish:
            stats.finished = True
        else:
            raise UpstreamUnavailable("Upstream closed the stream before it finished.")

    def _untyped(self, payload: bytes) -> tuple[StreamEvent, bool] | None:
        """A payload `_Chunk` cannot hold: read it as plain JSON (None: not an object, skipped)."""
        chunk = _decode(payload)
        if not isinstance(chunk, dict):
            return None
        if chunk.get("error"):
            raise _stream_error(chunk["error"])
        stats = self.stats
        usage = chunk.get("usage")
        if usage:
            stats.usage = Usage.from_openai(usage)
        finished = False
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict):
                    finished = finished or bool(choice.get("finish_reason"))
                    _count(stats, choice.get("delta"))
        chunk["id"] = self._id
        return StreamEvent(_encode(chunk), usage_only=not choices and usage is not None), finished

    async def aclose(self) -> None:
        await self._response.aclose()


def _stream_error(error: Any) -> UpstreamUnavailable:
    err = error if isinstance(error, dict) else {"message": str(error)}
    return UpstreamUnavailable(f"Upstream error mid-stream: {err.get('message')}", error=err)


def _count_typed(stats: StreamStats, delta: _Delta) -> None:
    chars = 0
    if delta.content:
        chars += len(delta.content)
    if delta.reasoning_content:
        chars += len(delta.reasoning_content)
    if delta.reasoning:
        chars += len(delta.reasoning)
    if delta.tool_calls:
        for call in delta.tool_calls:
            fn = call.function
            if fn is not None:
                chars += len(fn.arguments or "") + len(fn.name or "")
    if chars:
        stats.content_chars += chars
        stats.content_chunks += 1


def _count(stats: StreamStats, delta: Any) -> None:
    if not isinstance(delta, dict):
        return
    chars = 0
    for key in ("content", "reasoning_content", "reasoning"):
        value = delta.get(key)
        if isinstance(value, str):
            chars += len(value)
    for call in delta.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            chars += len(str(fn.get("arguments") or "")) + len(str(fn.get("name") or ""))
    if chars:
        stats.content_chars += chars
        stats.content_chunks += 1


__all__ = ["OpenAIChatStream", "OpenAIProvider", "ProviderError", "apply_reasoning"]
