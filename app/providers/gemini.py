"""Google Gemini (`generateContent`, `streamGenerateContent?alt=sse`, `batchEmbedContents`) behind the
OpenAI API, both ways; the request side is in gemini_request.py.

Response: parts → content, thought parts → `reasoning_content`, `functionCall` → `tool_calls` (with the
thought signature in `extra_content.google.thought_signature`), `usageMetadata` → usage. A prompt
blocked by safety filters is a 400 `content_filter` error; a blocked answer ends with
`finish_reason: content_filter`.
"""

from __future__ import annotations

import base64
import sys
import uuid
from array import array
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp
import msgspec

from app.channels.catalog import Route
from app.core.tokens import estimate_text_tokens
from app.core.upstream_errors import UpstreamRejected, UpstreamUnavailable
from app.providers.base import ChatCall, ChatResult, EmbedCall, EmbedResult, StreamEvent, Usage
from app.providers.common import json_headers, open_stream, post
from app.providers.gemini_request import to_gemini
from app.providers.sse import SSESplitter
from app.providers.translate import TranslatedStream, completion, message, unsupported

FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}
FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"}
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def _usage(meta: Any) -> tuple[Usage, int]:
    m = meta if isinstance(meta, dict) else {}
    thoughts = int(m.get("thoughtsTokenCount") or 0)
    prompt = int(m.get("promptTokenCount") or 0)
    output = int(m.get("candidatesTokenCount") or 0) + thoughts
    total = int(m.get("totalTokenCount") or prompt + output)
    return Usage(prompt, output, total, int(m.get("cachedContentTokenCount") or 0)), thoughts


def check_blocked(response: dict[str, Any]) -> None:
    reason = (response.get("promptFeedback") or {}).get("blockReason")
    if reason and not response.get("candidates"):
        text = f"The prompt was blocked by the provider's safety filters ({reason})."
        error = {"message": text, "type": "invalid_request_error", "param": "messages", "code": "content_filter"}
        raise UpstreamRejected(text, status=400, error=error)


def _parts(candidate: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    text: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if "functionCall" in part:
            fc = part["functionCall"] or {}
            call = {
                "id": fc.get("id") or f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": fc.get("name"), "arguments": _encode(fc.get("args") or {}).decode()},
            }
            if part.get("thoughtSignature"):
                call["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
            calls.append(call)
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else text).append(part["text"])
    return "".join(text), "".join(thoughts), calls


def _finish(candidate: dict[str, Any], has_calls: bool) -> str | None:
    reason = candidate.get("finishReason")
    if not reason:
        return None
    if reason in FILTERED:
        return "content_filter"
    return "tool_calls" if has_calls else FINISH.get(reason, "stop")


def from_gemini(response: dict[str, Any], call: ChatCall, model: str) -> ChatResult:
    check_blocked(response)
    choices = []
    for i, candidate in enumerate(response.get("candidates") or []):
        text, thoughts, calls = _parts(candidate)
        finish = _finish(candidate, bool(calls)) or "stop"
        choices.append(
            {
                "index": candidate.get("index", i),
                "message": message(text, thoughts, calls),
                "logprobs": None,
                "finish_reason": finish,
            }
        )
    usage, thoughts_tokens = _usage(response.get("usageMetadata"))
    out = completion(call, str(response.get("modelVersion") or model), choices, usage, thoughts_tokens)
    return ChatResult(out, usage)


class GeminiChatStream(TranslatedStream):
    async def _events(self) -> AsyncGenerator[StreamEvent | None]:
        splitter, stats = SSESplitter(), self.stats
        usage: Any = None
        tools: dict[int, int] = {}  # candidate index → tool calls sent so far
        started = False
        async for raw in self._response:
            for payload in splitter.feed(raw):
                try:
                    event = _decode(payload)
                except msgspec.DecodeError:
                    continue
                if not isinstance(event, dict):
                    continue
                if event.get("error"):
                    err = event["error"] if isinstance(event["error"], dict) else {"message": str(event["error"])}
                    raise UpstreamUnavailable(f"Upstream error mid-stream: {err.get('message')}", error=err)
                check_blocked(event)
                usage = event.get("usageMetadata") or usage
                self._model = str(event.get("modelVersion") or self._model)
                if not started:
                    started = True
                    yield StreamEvent(self._chunk({"role": "assistant", "content": ""}))
                for i, candidate in enumerate(event.get("candidates") or []):
                    index = candidate.get("index", i)
                    for chunk in self._translate(candidate, index, tools):
                        yield StreamEvent(chunk)
            yield None  # the end of one upstream read
        if not stats.finished:
            raise UpstreamUnavailable("Upstream closed the stream before it finished.")
        total, thoughts = _usage(usage)
        yield StreamEvent(self._usage_chunk(total, thoughts), usage_only=True)

    def _translate(self, candidate: dict[str, Any], index: int, tools: dict[int, int]) -> list[bytes]:
        text, thoughts, calls = _parts(candidate)
        out = []
        if thoughts:
            out.append(self._chunk({"reasoning_content": thoughts}, index=index))
        if text:
            out.append(self._chunk({"content": text}, index=index))
        if calls:
            first = tools.get(index, 0)
            tools[index] = first + len(calls)
            deltas = [{"index": first + n, **c} for n, c in enumerate(calls)]
            out.append(self._chunk({"tool_calls": deltas}, index=index))
        if (finish := _finish(candidate, index in tools)) is not None:
            self.stats.finished = True
            out.append(self._chunk({}, finish, index=index))
        return out


class GeminiProvider:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    @staticmethod
    def _headers(route: Route) -> dict[str, str]:
        return json_headers(route, "x-goog-api-key")

    def _url(self, route: Route, method: str) -> str:
        return f"{route.base_url}/models/{route.upstream_model}:{method}"

    async def _post(self, route: Route, method: str, body: dict[str, Any]) -> Any:
        content = await post(
            self._session, self._url(route, method), _encode(body), self._headers(route), route.policy.http_timeout
        )
        try:
            decoded = _decode(content)
        except msgspec.DecodeError as exc:
            raise UpstreamUnavailable("Upstream answered 200 with a body that is not JSON.") from exc
        if not isinstance(decoded, dict):
            raise UpstreamUnavailable("Upstream answered 200 with a body that is not a JSON object.")
        return decoded

    async def chat(self, route: Route, call: ChatCall) -> ChatResult:
        response = await self._post(route, "generateContent", to_gemini(call, route))
        return from_gemini(response, call, route.upstream_model)

    async def open_chat_stream(self, route: Route, call: ChatCall) -> GeminiChatStream:
        body = to_gemini(call, route)
        url = self._url(route, "streamGenerateContent") + "?alt=sse"
        response = await open_stream(self._session, url, _encode(body), self._headers(route), route.policy.http_timeout)
        return GeminiChatStream(response, call, route.upstream_model)

    async def embed(self, route: Route, call: EmbedCall) -> EmbedResult:
        texts = call.body["input"] if isinstance(call.body["input"], list) else [call.body["input"]]
        if not all(isinstance(t, str) for t in texts):
            raise unsupported("token arrays as embeddings input", "Gemini")
        extra = {"outputDimensionality": call.body["dimensions"]} if call.body.get("dimensions") else {}
        model = f"models/{route.upstream_model}"
        requests = [{"model": model, "content": {"parts": [{"text": t}]}, **extra} for t in texts]
        response = await self._post(route, "batchEmbedContents", {"requests": requests})
        as_base64 = call.body.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": _b64(e.get("values") or []) if as_base64 else e.get("values"),
            }
            for i, e in enumerate(response.get("embeddings") or [])
        ]
        tokens = sum(estimate_text_tokens(len(t)) for t in texts)  # Gemini reports no token count here
        payload = {
            "object": "list",
            "data": data,
            "model": call.public_model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return EmbedResult(_encode(payload), Usage(tokens, 0, tokens, estimated=True))


def _b64(values: list[float]) -> str:
    vector = array("f", values)
    if sys.byteorder != "little":
        vector.byteswap()
    return base64.b64encode(vector.tobytes()).decode()
