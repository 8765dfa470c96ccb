"""A stream assembled into the completion that is stored, and a stored completion replayed as chunks."""

from __future__ import annotations

import json
from typing import Any

from app.cache.replay import Assembler, replay


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {
        "id": "x",
        "created": 1,
        "model": "m",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }


def payloads(frames: list[bytes]) -> list[Any]:
    return [json.loads(f[6:]) if f != b"data: [DONE]\n\n" else "[DONE]" for f in frames]


def test_tool_calls_and_two_choices_survive_the_round_trip() -> None:
    assembler = Assembler()
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_", "arguments": '{"ci'}}
    for part in (
        chunk({"role": "assistant", "content": ""}),
        chunk({"role": "assistant", "content": "Hi "}, index=1),
        chunk({"tool_calls": [call]}),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "weather", "arguments": 'ty": "Oslo"}'}}]}),
        chunk({"content": "there"}, "stop", index=1),
        chunk({}, "tool_calls"),
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}},
    ):
        assembler.add(part)
    completion = assembler.completion()
    assert completion is not None
    first, second = completion["choices"]
    assert first["finish_reason"] == "tool_calls" and first["message"]["content"] == ""
    assert first["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    ]
    assert second["message"] == {"role": "assistant", "content": "Hi there"}

    usage = {**completion["usage"], "cost": 0}
    out = payloads(list(replay(completion, "chatcmpl-new", usage)))
    assert out[-1] == "[DONE]" and out[-2]["usage"] == usage and out[-2]["choices"] == []
    assert all(p["id"] == "chatcmpl-new" and p["object"] == "chat.completion.chunk" for p in out[:-1])
    text = "".join(p["choices"][0]["delta"].get("content") or "" for p in out[:-2] if p["choices"][0]["index"] == 1)
    assert text == "Hi there"
    calls = [p["choices"][0]["delta"]["tool_calls"] for p in out[:-2] if "tool_calls" in p["choices"][0]["delta"]]
    assert calls[0][0]["function"]["arguments"] == '{"city": "Oslo"}'


def test_an_unfinished_or_unrebuildable_stream_is_not_stored() -> None:
    unfinished = Assembler()
    unfinished.add(chunk({"content": "half"}))
    unfinished.add({"choices": [], "usage": {"prompt_tokens": 1}})
    assert unfinished.completion() is None
    with_logprobs = Assembler()
    with_logprobs.add({"choices": [{"index": 0, "delta": {"content": "a"}, "logprobs": {"content": []}}]})
    with_logprobs.add({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {}})
    assert with_logprobs.completion() is None
    no_usage = Assembler()
    no_usage.add(chunk({"content": "a"}, "stop"))
    assert no_usage.completion() is None
