"""Chat completions against the built-in local provider, in-process."""

from __future__ import annotations

import json
from typing import Any

from litestar.testing import AsyncTestClient

from tests.conftest import Tenant


def sse_payloads(text: str) -> list[str]:
    events = [e for e in text.split("\n\n") if e.strip()]
    assert all(e.startswith("data: ") for e in events), events
    return [e[len("data: ") :] for e in events]


async def test_chat_completion_answers_with_usage(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    response = await client.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": "local-chat", "messages": [{"role": "user", "content": "Hello!"}]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert response.headers["x-request-id"] == body["id"]
    assert "Hello!" in body["choices"][0]["message"]["content"]
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_stream_relays_tokens_and_done(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    request = {"model": "local-chat", "stream": True, "messages": [{"role": "user", "content": "Hi there"}]}
    streamed = await client.post("/v1/chat/completions", headers=tenant.headers, json=request)
    whole = await client.post("/v1/chat/completions", headers=tenant.headers, json={**request, "stream": False})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    payloads = sse_payloads(streamed.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == whole.json()["choices"][0]["message"]["content"]
    # usage was not asked for: no usage chunk
    assert all(c.get("usage") is None for c in chunks)


async def test_stream_include_usage_adds_final_usage_chunk(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    request = {
        "model": "local-chat",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "count me"}],
    }
    response = await client.post("/v1/chat/completions", headers=tenant.headers, json=request)
    chunks = [json.loads(p) for p in sse_payloads(response.text)[:-1]]
    last = chunks[-1]
    assert last["choices"] == []
    assert last["usage"]["completion_tokens"] == sum(
        1 for c in chunks[:-1] if c["choices"] and c["choices"][0]["delta"].get("content")
    )


async def test_max_tokens_truncates_with_length_finish(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    response = await client.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": "local-chat", "max_tokens": 3, "messages": [{"role": "user", "content": "a long question"}]},
    )
    body = response.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3


async def test_reasoning_streams_reasoning_content_first(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    response = await client.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={
            "model": "local-chat",
            "stream": True,
            "reasoning": True,
            "messages": [{"role": "user", "content": "why?"}],
        },
    )
    deltas = [json.loads(p)["choices"][0]["delta"] for p in sse_payloads(response.text)[:-1]]
    kinds = [("reasoning" if "reasoning_content" in d else "content") for d in deltas[1:-1]]
    assert kinds[0] == "reasoning" and kinds[-1] == "content"
    assert kinds == sorted(kinds, key=lambda k: k != "reasoning")


async def test_routes_also_answer_without_v1_prefix(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    response = await client.post(
        "/chat/completions",
        headers=tenant.headers,
        json={"model": "local-chat", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 200
