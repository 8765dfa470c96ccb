"""OpenAI Chat Completions request → Gemini `generateContent` request.

Roles user/assistant → user/model; system/developer → `systemInstruction`; images → `inlineData`
(data URLs) or `fileData` (other URLs); assistant `tool_calls` → `functionCall` parts, with the thought
signature Gemini needs back read from `extra_content.google.thought_signature` (Google's own OpenAI
compatibility carries it there); `tool` messages → `functionResponse` parts (named after the call they
answer); sampling options and `response_format` → `generationConfig`; the normalised output cap
(`ChatCall.max_output`, the one held for) → `maxOutputTokens`; `reasoning: true` →
`thinkingConfig.includeThoughts` with the call's thinking budget.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.channels.catalog import Route
from app.providers.base import ChatCall
from app.providers.translate import (
    arguments_of,
    data_url,
    image_url_of,
    stop_sequences,
    text_of,
    thinking_budget,
    unsupported,
)

# JSON Schema keywords Gemini's OpenAPI-subset `Schema` refuses.
SCHEMA_DROP = {"$schema", "additionalProperties", "strict", "$id", "$defs", "definitions"}
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


def _generation_config(call: ChatCall, route: Route) -> dict[str, Any]:
    body = call.body
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
    if call.max_output:
        config["maxOutputTokens"] = call.max_output
    if stops := stop_sequences(body):
        config["stopSequences"] = stops
    fmt: dict[str, Any] = body["response_format"] if isinstance(body.get("response_format"), dict) else {}
    if fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema:
            config["responseJsonSchema"] = schema
    if call.reasoning:
        thinking: dict[str, Any] = {"includeThoughts": True}
        if call.thinking_budget:
            thinking["thinkingBudget"] = thinking_budget(call, route)
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


def to_gemini(call: ChatCall, route: Route) -> dict[str, Any]:
    body = call.body
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
    if config := _generation_config(call, route):
        out["generationConfig"] = config
    return out
