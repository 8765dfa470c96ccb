"""OpenAI Chat Completions request → Anthropic Messages request.

System/developer messages → `system`; `tool` messages → `tool_result` blocks in a user turn; assistant
`tool_calls` → `tool_use` blocks; image parts → `image` blocks (base64 or URL), PDF files → `document`;
same-role neighbours merged (turns must alternate); `stop` → `stop_sequences`; `max_tokens` is the
gateway's normalised output cap (`ChatCall.max_output`, the one the hold was sized for, thinking
included); `temperature` capped at 1 (Anthropic's range); `reasoning: true` → `thinking` with the call's
thinking budget, spent inside `max_tokens` as Anthropic counts it.
Fields with no Anthropic equivalent are not sent (the API refuses unknown fields).
"""

from __future__ import annotations

from typing import Any

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


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content or []:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            url = image_url_of(part)
            inline = data_url(url)
            source = (
                {"type": "base64", "media_type": inline[0], "data": inline[1]}
                if inline
                else {"type": "url", "url": url}
            )
            blocks.append({"type": "image", "source": source})
        elif kind == "file" and (inline := data_url(str((part.get("file") or {}).get("file_data") or ""))):
            blocks.append(
                {"type": "document", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}
            )
        else:
            raise unsupported(f"a {kind!r} content part", "Anthropic")
    return blocks


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Anthropic wants user and assistant turns to alternate: same-role neighbours are merged."""
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _tools(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tools = [t.get("function") for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    if tools:
        out["tools"] = [
            {
                "name": fn.get("name"),
                "description": fn.get("description") or "",
                "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
            }
            for fn in tools
            if isinstance(fn, dict)
        ]
    choice = body.get("tool_choice")
    picked: dict[str, Any] | None = None
    if choice in ("auto", "none"):
        picked = {"type": choice}
    elif choice == "required":
        picked = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        picked = {"type": "tool", "name": choice["function"].get("name")}
    if body.get("parallel_tool_calls") is False and out.get("tools"):
        picked = {**(picked or {"type": "auto"}), "disable_parallel_tool_use": True}
    if picked is not None and out.get("tools"):
        out["tool_choice"] = picked
    return out


def to_anthropic(call: ChatCall, route: Route) -> dict[str, Any]:
    body = call.body
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for m in body.get("messages") or []:
        role = m.get("role")
        if role in ("system", "developer"):
            system.append(text_of(m.get("content")))
        elif role == "tool":
            result = {"type": "tool_result", "tool_use_id": m.get("tool_call_id"), "content": text_of(m.get("content"))}
            _append(messages, "user", [result])
        elif role == "assistant":
            text = text_of(m.get("content"))
            blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
            for tc in m.get("tool_calls") or []:
                fn = tc.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": tc.get("id"),
                        "name": fn.get("name"),
                        "input": arguments_of(fn.get("arguments")),
                    }
                )
            _append(messages, "assistant", blocks)
        else:
            _append(messages, "user", _user_blocks(m.get("content")))
    out: dict[str, Any] = {
        "model": body["model"],
        "messages": messages,
        "max_tokens": call.max_output,
    }
    if system:
        out["system"] = "\n\n".join(s for s in system if s)
    if isinstance(body.get("temperature"), int | float):
        out["temperature"] = min(float(body["temperature"]), 1.0)
    for key in ("top_p", "top_k"):
        if body.get(key) is not None:
            out[key] = body[key]
    if stops := stop_sequences(body):
        out["stop_sequences"] = stops
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    out.update(_tools(body))
    if call.reasoning and call.thinking_budget:
        out["thinking"] = {"type": "enabled", "budget_tokens": thinking_budget(call, route)}
        for key in ("temperature", "top_k", "top_p"):  # refused together with thinking
            out.pop(key, None)
    return out
