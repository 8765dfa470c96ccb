"""The Anthropic adapter against the mock Anthropic server (which refuses what the real API refuses)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import AddChannel, Tenant, unique_model, wait_for_model
from tests.fakes.scenario import Answer, anthropic_sse
from tests.fakes.upstream import Reply
from tests.fakes.vendors import ScriptedAnswers
from tests.routing_support import CHAT_PATH, QUIET, sse_events, streamed_text

MESSAGES = "/v1/messages"


async def _model(client: AsyncTestClient[Any], add_channel: AddChannel, server: ScriptedAnswers, **options: Any) -> str:
    model = unique_model("claude")
    await add_channel(server.base_url, [f"{model}=claude-test"], provider="anthropic", options={**QUIET, **options})
    await wait_for_model(client, model)
    return model


async def test_request_translation(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, vendors: dict[str, ScriptedAnswers]
) -> None:
    server = vendors["anthropic"]
    model = await _model(client, add_channel, server)
    call = {"id": "toolu_9", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    body = {
        "model": model,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "toolu_9", "content": "42"},
            {"role": "tool", "tool_call_id": "toolu_9", "content": "43"},
            {"role": "user", "content": "and?"},
        ],
        "stop": "END",
        "temperature": 1.6,
        "user": "u-1",
        "seed": 7,
        "n": 1,
        "response_format": {"type": "text"},
    }
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=body)
    assert response.status_code == 200, response.text
    seen = server.requests[-1]
    sent = seen.body
    assert seen.headers["x-api-key"] == "sk-upstream-test" and seen.headers["anthropic-version"] == "2023-06-01"
    assert sent["model"] == "claude-test" and sent["system"] == "Be brief.\n\nUse metric."
    assert sent["max_tokens"] == 4096 and sent["temperature"] == 1.0 and sent["stop_sequences"] == ["END"]
    assert sent["metadata"] == {"user_id": "u-1"}
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    ]
    assert sent["messages"][1]["content"] == [{"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"a": 1}}]
    results = sent["messages"][2]["content"]
    assert [b["type"] for b in results] == ["tool_result", "tool_result", "text"]


async def test_reasoning_maps_to_thinking_and_thinking_comes_back_as_reasoning_content(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, vendors: dict[str, ScriptedAnswers]
) -> None:
    server = vendors["anthropic"]
    server.answer = Answer(reasoning=["Let me ", "think."])
    model = await _model(client, add_channel, server, thinking_budget=1500)
    body = {"model": model, "reasoning": True, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    whole = (await client.post(CHAT_PATH, headers=tenant.headers, json=body)).json()
    sent = server.requests[-1].body
    # The cap sent is the one held for: the answer's 100 plus the instance's thinking budget (2048); the
    # channel's option lowers the budget inside it.
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1500} and sent["max_tokens"] == 100 + 2048
    assert "temperature" not in sent
    assert whole["choices"][0]["message"]["reasoning_content"] == "Let me think."
    assert whole["choices"][0]["message"]["content"] == "Hello from upstream"

    response = await client.post(CHAT_PATH, headers=tenant.headers, json={**body, "stream": True})
    events = sse_events(response.text)
    thinking = "".join(e["choices"][0]["delta"].get("reasoning_content") or "" for e in events[:-1] if e["choices"])
    assert thinking == "Let me think." and streamed_text(events) == "Hello from upstream"


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (
            Reply(status=529, json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            500,
            "upstream_error",
        ),
        (
            Reply(status=400, json={"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}),
            400,
            "upstream_rejected",  # Anthropic sends no code; ours is never null
        ),
        (
            Reply(sse=[{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}]),
            500,
            "upstream_error",
        ),
        (Reply(sse=[{"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}]), 503, "overloaded"),
    ],
)
async def test_errors_come_back_in_the_openai_envelope(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    add_channel: AddChannel,
    vendors: dict[str, ScriptedAnswers],
    reply: Reply,
    status: int,
    code: str,
) -> None:
    server = vendors["anthropic"]
    model = await _model(client, add_channel, server)
    server.script(MESSAGES, reply)
    body = {"model": model, "stream": reply.sse is not None, "messages": [{"role": "user", "content": "x"}]}
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code


async def test_error_event_mid_stream_and_unsupported_input(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, vendors: dict[str, ScriptedAnswers]
) -> None:
    server = vendors["anthropic"]
    model = await _model(client, add_channel, server)
    events = [*anthropic_sse(Answer(), "m")[:4], {"type": "error", "error": {"type": "api_error", "message": "oops"}}]
    server.script(MESSAGES, Reply(sse=events))
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    out = sse_events((await client.post(CHAT_PATH, headers=tenant.headers, json=body)).text)
    assert streamed_text(out) == "Hello" and "oops" in out[-2]["error"]["message"] and out[-1] == "[DONE]"

    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    response = await client.post(
        CHAT_PATH, headers=tenant.headers, json={"model": model, "messages": [{"role": "user", "content": [audio]}]}
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "unsupported_content"
    embed = await client.post("/v1/embeddings", headers=tenant.headers, json={"model": model, "input": "x"})
    assert embed.status_code == 400
