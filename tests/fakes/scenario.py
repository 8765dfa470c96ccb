"""One answer, written out in each vendor's wire format (OpenAI, Anthropic Messages, Gemini), so a test
can check that the gateway gives an OpenAI client the same thing whichever upstream produced it.

Shapes follow the vendors' documentation: Anthropic's Messages API and its SSE events
(message_start, content_block_start/delta/stop with text_delta, input_json_delta and thinking_delta,
message_delta, message_stop, ping); Gemini's GenerateContentResponse (candidates, parts, functionCall,
finishReason, usageMetadata), streamed with `alt=sse` as one JSON object per `data:` event, no [DONE].
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    pieces: list[str] = field(default_factory=lambda: ["Hello", " from", " upstream"])
    tool: tuple[str, dict[str, Any]] | None = None
    reasoning: list[str] = field(default_factory=list)
    prompt_tokens: int = 11
    completion_tokens: int = 3

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def arguments(self) -> str:
        return json.dumps(self.tool[1]) if self.tool else ""


TOOL_ANSWER = Answer(pieces=[], tool=("get_weather", {"city": "Paris", "unit": "celsius"}), completion_tokens=9)


def openai_json(a: Answer, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": a.text or None}
    if a.tool:
        call = {"id": "call_1", "type": "function", "function": {"name": a.tool[0], "arguments": a.arguments}}
        message["tool_calls"] = [call]
    total = a.prompt_tokens + a.completion_tokens
    return {
        "id": "chatcmpl-up",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if a.tool else "stop"}],
        "usage": {"prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens, "total_tokens": total},
    }


def _oa_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-up",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "up",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def openai_sse(a: Answer) -> list[Any]:
    events: list[Any] = [_oa_chunk({"role": "assistant", "content": ""})]
    events += [_oa_chunk({"content": p}) for p in a.pieces]
    if a.tool:
        fn = {"name": a.tool[0], "arguments": ""}
        events.append(_oa_chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": fn}]}))
        half = len(a.arguments) // 2
        for piece in (a.arguments[:half], a.arguments[half:]):
            events.append(_oa_chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    events.append(_oa_chunk({}, "tool_calls" if a.tool else "stop"))
    total = a.prompt_tokens + a.completion_tokens
    usage = {"prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens, "total_tokens": total}
    events.append({**_oa_chunk({}), "choices": [], "usage": usage})
    return [*events, "[DONE]"]


def anthropic_json(a: Answer, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if a.reasoning:
        content.append({"type": "thinking", "thinking": "".join(a.reasoning), "signature": "sig-1"})
    if a.text:
        content.append({"type": "text", "text": a.text})
    if a.tool:
        content.append({"type": "tool_use", "id": "toolu_01", "name": a.tool[0], "input": a.tool[1]})
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if a.tool else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": a.prompt_tokens, "output_tokens": a.completion_tokens},
    }


def anthropic_sse(a: Answer, model: str) -> list[dict[str, Any]]:
    start = {**anthropic_json(a, model), "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": a.prompt_tokens, "output_tokens": 1}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    index = 0

    def block(first: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        events.append({"type": "content_block_start", "index": index, "content_block": first})
        events.extend({"type": "content_block_delta", "index": index, "delta": d} for d in deltas)
        events.append({"type": "content_block_stop", "index": index})
        index += 1

    if a.reasoning:
        thinking = [{"type": "thinking_delta", "thinking": r} for r in a.reasoning]
        block({"type": "thinking", "thinking": ""}, [*thinking, {"type": "signature_delta", "signature": "sig-1"}])
    if a.pieces:
        events.append({"type": "ping"})
        block({"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in a.pieces])
    if a.tool:
        half = len(a.arguments) // 2
        pieces = ["", a.arguments[:half], a.arguments[half:]]
        first = {"type": "tool_use", "id": "toolu_01", "name": a.tool[0], "input": {}}
        block(first, [{"type": "input_json_delta", "partial_json": p} for p in pieces])
    delta = {"stop_reason": "tool_use" if a.tool else "end_turn", "stop_sequence": None}
    events.append({"type": "message_delta", "delta": delta, "usage": {"output_tokens": a.completion_tokens}})
    events.append({"type": "message_stop"})
    return events


def _gemini(parts: list[dict[str, Any]], model: str, finish: str | None, usage: dict[str, int]) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
        candidate["safetyRatings"] = [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": "resp-1"}


def _gemini_usage(a: Answer) -> dict[str, int]:
    total = a.prompt_tokens + a.completion_tokens
    return {"promptTokenCount": a.prompt_tokens, "candidatesTokenCount": a.completion_tokens, "totalTokenCount": total}


def gemini_json(a: Answer, model: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": "".join(a.reasoning), "thought": True}] if a.reasoning else []
    parts += [{"text": a.text}] if a.text else []
    if a.tool:
        parts.append({"functionCall": {"name": a.tool[0], "args": a.tool[1]}, "thoughtSignature": "c2lnLTE="})
    return _gemini(parts, model, "STOP", _gemini_usage(a))


def gemini_sse(a: Answer, model: str) -> list[dict[str, Any]]:
    partial = {"promptTokenCount": a.prompt_tokens, "totalTokenCount": a.prompt_tokens}
    events = [_gemini([{"text": r, "thought": True}], model, None, partial) for r in a.reasoning]
    events += [_gemini([{"text": p}], model, None, partial) for p in a.pieces]
    last: list[dict[str, Any]] = []
    if a.tool:
        last.append({"functionCall": {"name": a.tool[0], "args": a.tool[1]}, "thoughtSignature": "c2lnLTE="})
    events.append(_gemini(last, model, "STOP", _gemini_usage(a)))
    return events
