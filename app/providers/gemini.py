"""Google Gemini (`generateContent`, `streamGenerateContent?alt=sse`, `batchEmbedContents`) behind the
OpenAI API, both ways.

Request: roles user/assistant → user/model; system/developer → `systemInstruction`; images → `inlineData`
(data URLs) or `fileData` (other URLs); assistant `tool_calls` → `functionCall` parts (the thought
signature Gemini needs back travels in `extra_content.google.thought_signature`, as in Google's own
OpenAI compatibility); `tool` messages → `functionResponse` parts; sampling options → `generationConfig`;
`reasoning: true` → `thinkingConfig.includeThoughts`. Response: parts → content, thought parts →
`reasoning_content`, `functionCall` → `tool_calls`, `usageMetadata` → usage. A prompt blocked by safety
filters is a 400 `content_filter` error; a blocked answer ends with `finish_reason: content_filter`.
"""

from __future__ import annotations

import base64
import sys
import uuid
from array import array
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec

from app.channels.catalog import Route
from app.providers.base import ChatCall, ChatResult, EmbedCall, EmbedResult, StreamEvent, Usage
from app.providers.common import open_stream, post, transport_error
from app.providers.errors import UpstreamRejected, UpstreamUnavailable
from app.providers.sse import SSESplitter
from app.providers.translate import (
    TranslatedStream,
    arguments_of,
    completion,
    data_url,
    image_url_of,
    max_tokens_of,
    message,
    stop_sequences,
    text_of,
    unsupported,
)
from app.tokens import estimate_text_tokens

FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}
FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"}
# JSON Schema keywords Gemini's OpenAPI-subset `Schema` refuses.
SCHEMA_DROP = {"$schema", "additionalProperties", "strict", "$id", "$defs", "definitions"}
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def _schema(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _schema(v) for k, v in value.items() if k not in SCHEMA_DROP}
    if isinstance(value, list):
        return [_schema(v) for v in value]
    return value


def _user_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content or []:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"text": part.get("text") or ""})
        elif kind == "image_url":
            url = image_url_of(part)
            inline = data_url(url)
            mime = "image/png" if url.lower().endswith(".png") else "image/jpeg"
            parts.append(
                {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
                if inline
                else {"fileData": {"mimeType": mime, "fileUri": url}}
            )
        elif kind == "file" and (inline := data_url(str((part.get("file") or {}).get("file_data") or ""))):
            parts.append({"inlineData": {"mimeType": inline[0], "data": inline[1]}})
        else:
            raise unsupported(f"a {kind!r} content part", "Gemini")
    return parts


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _function_call(tc: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    fn = tc.get("function") or {}
    names[str(tc.get("id"))] = str(fn.get("name"))
    part: dict[str, Any] = {"functionCall": {"name": fn.get("name"), "args": arguments_of(fn.get("arguments"))}}
    signature = ((tc.get("extra_content") or {}).get("google") or {}).get("thought_signature")
    if signature:
        part["thoughtSignature"] = signature
    return part


def _function_response(m: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    raw = text_of(m.get("content"))
    try:
        value = _decode(raw) if raw else {}
    except msgspec.DecodeError:
        value = raw
    response = value if isinstance(value, dict) else {"result": value}
    name = names.get(str(m.get("tool_call_id")), m.get("name") or "tool")
    return {"functionResponse": {"name": name, "response": response}}


def _generation_config(body: dict[str, Any], route: Route, reasoning: bool | None) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("n", "candidateCount"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    if (limit := max_tokens_of(body)) is not None:
        config["maxOutputTokens"] = limit
    if stops := stop_sequences(body):
        config["stopSequences"] = stops
    fmt: dict[str, Any] = body["response_format"] if isinstance(body.get("response_format"), dict) else {}
    if fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema:
            config["responseJsonSchema"] = schema
    if reasoning:
        thinking: dict[str, Any] = {"includeThoughts": True}
        if "thinking_budget" in route.options:
            thinking["thinkingBudget"] = int(route.options["thinking_budget"])
        config["thinkingConfig"] = thinking
    return config


def _tool_config(body: dict[str, Any]) -> dict[str, Any]:
    functions = [t["function"] for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    if not functions:
        return {}
    declarations = [
        {k: v for k, v in (("name", f.get("name")), ("description", f.get("description"))) if v}
        | ({"parameters": _schema(f["parameters"])} if f.get("parameters") else {})
        for f in functions
    ]
    out: dict[str, Any] = {"tools": [{"functionDeclarations": declarations}]}
    choice = body.get("tool_choice")
    mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}.get(choice) if isinstance(choice, str) else None
    config: dict[str, Any] = {"mode": mode} if mode else {}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        config = {"mode": "ANY", "allowedFunctionNames": [choice["function"].get("name")]}
    if config:
        out["toolConfig"] = {"functionCallingConfig": config}
    return out


def to_gemini(body: dict[str, Any], route: Route, reasoning: bool | None) -> dict[str, Any]:
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id → function name (a functionResponse is matched by name)
    for m in body.get("messages") or []:
        role = m.get("role")
        if role in ("system", "developer"):
            system.append(text_of(m.get("content")))
        elif role == "assistant":
            text = text_of(m.get("content"))
            parts = [{"text": text}] if text else []
            parts += [_function_call(tc, names) for tc in m.get("tool_calls") or []]
            _append(contents, "model", parts)
        elif role == "tool":
            _append(contents, "user", [_function_response(m, names)])
        else:
            _append(contents, "user", _user_parts(m.get("content")))
    out: dict[str, Any] = {"contents": contents, **_tool_config(body)}
    if system:
        out["systemInstruction"] = {"parts": [{"text": "\n\n".join(s for s in system if s)}]}
    if config := _generation_config(body, route, reasoning):
        out["generationConfig"] = config
    return out


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
    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        splitter, stats = SSESplitter(), self.stats
        usage: Any = None
        tools: dict[int, int] = {}  # candidate index → tool calls sent so far
        started = False
        try:
            async for raw in self._response.aiter_raw():
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
        except httpx.HTTPError as exc:
            raise transport_error(exc) from exc
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
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    @staticmethod
    def _headers(route: Route) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if route.api_key:
            headers["x-goog-api-key"] = route.api_key
        extra = route.options.get("headers")
        if isinstance(extra, dict):
            headers.update({str(k): str(v) for k, v in extra.items()})
        return headers

    def _url(self, route: Route, method: str) -> str:
        return f"{route.base_url}/models/{route.upstream_model}:{method}"

    async def _post(self, route: Route, method: str, body: dict[str, Any]) -> Any:
        response = await post(
            self._client, self._url(route, method), _encode(body), self._headers(route), route.policy.http_timeout
        )
        try:
            decoded = _decode(response.content)
        except msgspec.DecodeError as exc:
            raise UpstreamUnavailable("Upstream answered 200 with a body that is not JSON.") from exc
        if not isinstance(decoded, dict):
            raise UpstreamUnavailable("Upstream answered 200 with a body that is not a JSON object.")
        return decoded

    async def chat(self, route: Route, call: ChatCall) -> ChatResult:
        response = await self._post(route, "generateContent", to_gemini(call.body, route, call.reasoning))
        return from_gemini(response, call, route.upstream_model)

    async def open_chat_stream(self, route: Route, call: ChatCall) -> GeminiChatStream:
        body = to_gemini(call.body, route, call.reasoning)
        url = self._url(route, "streamGenerateContent") + "?alt=sse"
        response = await open_stream(self._client, url, _encode(body), self._headers(route), route.policy.http_timeout)
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
