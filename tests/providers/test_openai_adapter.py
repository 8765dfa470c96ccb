"""The OpenAI-compatible adapter against a mock upstream on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.app.test_chat_local import sse_payloads
from tests.conftest import AddChannel, Tenant, unique_model, wait_for_model
from tests.fakes.upstream import MockUpstream, Reply, chunk, usage_chunk
from tests.routing_support import job_of

CHAT_PATH = "/v1/chat/completions"


async def _channel(
    client: AsyncTestClient[Any],
    add_channel: AddChannel,
    upstream: MockUpstream,
    spec: str | None = None,
    **kwargs: Any,
) -> str:
    model = unique_model("gpt")
    await add_channel(upstream.base_url, [spec.format(model=model) if spec else model], **kwargs)
    await wait_for_model(client, model)
    return model


async def test_body_relayed_with_alias_unknown_fields_and_default_temperature(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await _channel(client, add_channel, mock_upstream, "{model}=real-upstream-name")
    request = {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "seed": 42,
        "vendor_extension": {"keep": True},
        "reasoning": True,
    }
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=request)
    assert response.status_code == 200, response.text
    seen = mock_upstream.requests[-1]
    assert seen.path == CHAT_PATH
    assert seen.headers["Authorization"] == "Bearer sk-upstream-test"
    assert seen.body["model"] == "real-upstream-name"
    assert seen.body["seed"] == 42 and seen.body["vendor_extension"] == {"keep": True}
    assert seen.body["temperature"] == 0.7
    assert "reasoning" not in seen.body and seen.body["reasoning_effort"] == "medium"
    body = response.json()
    assert body["id"] == response.headers["x-request-id"] != "chatcmpl-upstream-123"
    assert body["choices"][0]["message"]["content"] == "Hello from the mock upstream."
    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18, "cost": 0}


async def test_explicit_temperature_is_kept_and_reasoning_models_get_no_default(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await _channel(client, add_channel, mock_upstream)
    await client.post(
        CHAT_PATH,
        headers=tenant.headers,
        json={"model": model, "temperature": 0, "messages": [{"role": "user", "content": "x"}]},
    )
    assert mock_upstream.requests[-1].body["temperature"] == 0
    o_model = await _channel(client, add_channel, mock_upstream, "{model}=o3-mini")
    await client.post(
        CHAT_PATH, headers=tenant.headers, json={"model": o_model, "messages": [{"role": "user", "content": "x"}]}
    )
    assert "temperature" not in mock_upstream.requests[-1].body


async def test_reasoning_switch_maps_to_thinking_or_model(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    thinking = await _channel(client, add_channel, mock_upstream, options={"reasoning": "thinking"})
    await client.post(
        CHAT_PATH,
        headers=tenant.headers,
        json={"model": thinking, "reasoning": True, "messages": [{"role": "user", "content": "x"}]},
    )
    assert mock_upstream.requests[-1].body["thinking"] == {"type": "enabled"}
    swap = await _channel(
        client, add_channel, mock_upstream, "{model}=deepseek-chat", options={"reasoning": "model:deepseek-reasoner"}
    )
    await client.post(
        CHAT_PATH,
        headers=tenant.headers,
        json={"model": swap, "reasoning": True, "messages": [{"role": "user", "content": "x"}]},
    )
    assert mock_upstream.requests[-1].body["model"] == "deepseek-reasoner"


async def test_stream_relayed_chunk_for_chunk(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await _channel(client, add_channel, mock_upstream)
    upstream_chunks = [
        chunk(role="assistant", content=""),
        chunk("Hel"),
        chunk("lo", extra_delta={"reasoning_content": "deep"}),
        chunk(finish="stop"),
        usage_chunk(20, 2),
        "[DONE]",
    ]
    mock_upstream.script(CHAT_PATH, Reply(sse=upstream_chunks))
    response = await client.post(
        CHAT_PATH,
        headers=tenant.headers,
        json={"model": model, "stream": True, "messages": [{"role": "user", "content": "x"}]},
    )
    payloads = sse_payloads(response.text)
    relayed = [json.loads(p) for p in payloads[:-1]]
    assert payloads[-1] == "[DONE]"
    # the usage chunk was not asked for, so it is not relayed; every other chunk is, unchanged but the id
    expected = upstream_chunks[:4]
    assert len(relayed) == len(expected)
    for got, sent in zip(relayed, expected, strict=True):
        assert got["id"] == response.headers["x-request-id"]
        assert {k: v for k, v in got.items() if k != "id"} == {k: v for k, v in sent.items() if k != "id"}
    # the gateway always asks for usage upstream
    assert mock_upstream.requests[-1].body["stream_options"] == {"include_usage": True}


async def test_stream_of_many_events_in_one_read_relayed_and_counted(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    """The events of one upstream read go on together (one send); each still arrives whole, counted,
    the usage chunk with its cost, and `[DONE]` once at the end."""
    model = await _channel(client, add_channel, mock_upstream)
    items = [chunk(role="assistant", content=""), chunk("Hel"), chunk("lo"), chunk(finish="stop"), usage_chunk(20, 2)]
    one_write = b"".join(b"data: " + json.dumps(i).encode() + b"\n\n" for i in items) + b"data: [DONE]\n\n"
    mock_upstream.script(CHAT_PATH, Reply(raw=one_write))
    response = await client.post(
        CHAT_PATH,
        headers=tenant.headers,
        json={
            "model": model,
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1
    relayed = [json.loads(p) for p in payloads[:-1]]
    assert len(relayed) == len(items)
    assert all(r["id"] == response.headers["x-request-id"] for r in relayed)
    assert "".join((r["choices"][0]["delta"].get("content") or "") for r in relayed[:-1]) == "Hello"
    assert relayed[-1]["usage"] == {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22, "cost": 0}
    job = await job_of(client, tenant, response.headers["x-request-id"])
    assert job["status"] == "completed" and job["usage"]["total_tokens"] == 22


async def test_stream_usage_chunk_relayed_when_asked(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await _channel(client, add_channel, mock_upstream)
    response = await client.post(
        CHAT_PATH,
        headers=tenant.headers,
        json={
            "model": model,
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    last = json.loads(sse_payloads(response.text)[-2])
    assert last["choices"] == [] and last["usage"]["total_tokens"] == 14


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (Reply(status=500, json={"error": {"message": "boom", "type": "server_error"}}), 500, "upstream_error"),
        (Reply(status=502, json={"oops": True}), 500, "upstream_error"),
        (Reply(refuse=True), 500, "upstream_error"),
        (Reply(status=401, json={"error": {"message": "bad key"}}), 500, "upstream_error"),
        (Reply(status=429, json={"error": {"message": "slow down"}}, headers={"retry-after": "7"}), 503, "overloaded"),
        (
            Reply(
                status=400,
                json={
                    "error": {
                        "message": "messages too long",
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": "context_length_exceeded",
                    }
                },
            ),
            400,
            "context_length_exceeded",
        ),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_errors_mapped(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    add_channel: AddChannel,
    mock_upstream: MockUpstream,
    reply: Reply,
    status: int,
    code: str,
    stream: bool,
) -> None:
    model = await _channel(client, add_channel, mock_upstream)
    mock_upstream.script(CHAT_PATH, reply)
    response = await client.post(
        CHAT_PATH,
        headers=tenant.headers,
        json={"model": model, "stream": stream, "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if status == 503:
        assert response.headers["retry-after"] == "7"
    if status == 400:
        assert error["param"] == "messages" and error["message"] == "messages too long"


async def test_refused_connection_is_500(client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel) -> None:
    model = unique_model("gpt")
    await add_channel("http://127.0.0.1:9/v1", [model])
    await wait_for_model(client, model)
    response = await client.post(
        CHAT_PATH, headers=tenant.headers, json={"model": model, "messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "upstream_error"


async def test_failure_mid_stream_ends_with_error_event_and_done(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await _channel(client, add_channel, mock_upstream)
    mock_upstream.script(CHAT_PATH, Reply(sse=[chunk(role="assistant", content=""), chunk("partial")], close_after=2))
    response = await client.post(
        CHAT_PATH,
        headers=tenant.headers,
        json={"model": model, "stream": True, "messages": [{"role": "user", "content": "x"}]},
    )
    payloads = sse_payloads(response.text)
    assert json.loads(payloads[1])["choices"][0]["delta"]["content"] == "partial"
    assert json.loads(payloads[-2])["error"]["code"] == "upstream_error"
    assert payloads[-1] == "[DONE]"


async def test_embeddings_relayed(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await _channel(client, add_channel, mock_upstream, "{model}=text-embedding-3-small")
    response = await client.post(
        "/v1/embeddings",
        headers=tenant.headers,
        json={"model": model, "input": ["a", "b"], "dimensions": 3, "user": "u1"},
    )
    assert response.status_code == 200
    seen = mock_upstream.requests[-1]
    assert seen.path == "/v1/embeddings"
    assert seen.body == {"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 3, "user": "u1"}
    assert [d["index"] for d in response.json()["data"]] == [0, 1]
    assert response.json()["usage"]["prompt_tokens"] == 5


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_timeout_is_500(
    settings: Any, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream, stream: bool
) -> None:
    from app.api.main import create_app

    model = unique_model("gpt")
    await add_channel(mock_upstream.base_url, [model])
    mock_upstream.script(CHAT_PATH, Reply(delay_before=3))
    app = create_app(settings.model_copy(update={"upstream_first_byte_timeout": 0.3, "upstream_total_timeout": 0.3}))
    async with AsyncTestClient(app=app, timeout=10) as impatient:
        await wait_for_model(impatient, model)
        response = await impatient.post(
            CHAT_PATH,
            headers=tenant.headers,
            json={"model": model, "stream": stream, "messages": [{"role": "user", "content": "x"}]},
        )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "upstream_error"
    assert "timed out" in response.json()["error"]["message"]
