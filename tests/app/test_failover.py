"""Failover between two channels of one model (two mock upstreams on 127.0.0.1), before the first byte."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import AddChannel, Tenant
from tests.fakes.upstream import MockUpstream, Reply, chunk
from tests.routing_support import CHAT_PATH, QUIET, chat_body, job_of, model_on, sse_events, streamed_text
from tests.support import free_port

FAST = {**QUIET, "first_byte_timeout": 0.5, "total_timeout": 0.5, "idle_timeout": 0.5}

FAILURES: dict[str, tuple[Reply | None, str]] = {
    "500": (Reply(status=500, json={"error": {"message": "boom", "type": "server_error"}}), "upstream_error"),
    "refused": (None, "connect_error"),
    "dropped": (Reply(refuse=True), "connect_error"),
    "stall_before_headers": (Reply(delay_before=5), "timeout"),
}


async def _failing_first(
    client: AsyncTestClient[Any],
    add_channel: AddChannel,
    a: MockUpstream,
    b: MockUpstream,
    failure: str,
    options: dict[str, Any] | None = None,
) -> str:
    reply, _ = FAILURES.get(failure, (None, ""))
    url = f"http://127.0.0.1:{free_port()}/v1" if failure == "refused" else a.base_url
    if reply is not None:
        a.script(CHAT_PATH, reply)
    return await model_on(
        client,
        add_channel,
        (url, {"priority": 10, "options": {**FAST, **(options or {})}}),
        (b.base_url, {"priority": 0, "options": QUIET}),
    )


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("failure", list(FAILURES))
async def test_first_channel_fails_before_first_byte_second_answers(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    add_channel: AddChannel,
    mock_upstream: MockUpstream,
    mock_upstream_b: MockUpstream,
    failure: str,
    stream: bool,
) -> None:
    model = await _failing_first(client, add_channel, mock_upstream, mock_upstream_b, failure)
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model, stream=stream))
    assert response.status_code == 200, response.text
    if stream:
        events = sse_events(response.text)
        assert streamed_text(events) == "Hello from upstream" and events[-1] == "[DONE]"
        assert not any(isinstance(e, dict) and "error" in e for e in events)
    else:
        assert response.json()["choices"][0]["message"]["content"] == "Hello from the mock upstream."
    assert len(mock_upstream_b.calls(CHAT_PATH)) == 1
    job = await job_of(client, tenant, response.headers["x-request-id"])
    first, second = job["attempts"]
    assert first["outcome"] == FAILURES[failure][1] and first["channel"] != second["channel"]
    assert second["outcome"] == "ok" and job["status"] == "completed"
    assert job["channel_id"] == second["channel_id"]


async def test_stream_stalled_after_headers_fails_over(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    add_channel: AddChannel,
    mock_upstream: MockUpstream,
    mock_upstream_b: MockUpstream,
) -> None:
    """A 200 with no first token within the first-byte timeout is a failure like any other."""
    model = await _failing_first(client, add_channel, mock_upstream, mock_upstream_b, "none")
    mock_upstream.script(CHAT_PATH, Reply(sse=[chunk("never seen")], stall_after_headers=5))
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model, stream=True))
    assert streamed_text(sse_events(response.text)) == "Hello from upstream"
    job = await job_of(client, tenant, response.headers["x-request-id"])
    assert [a["outcome"] for a in job["attempts"]] == ["timeout", "ok"]
    assert "first byte" in job["attempts"][0]["error"]


@pytest.mark.parametrize("stream", [False, True])
async def test_client_errors_are_not_retried_but_channel_auth_errors_are(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    add_channel: AddChannel,
    mock_upstream: MockUpstream,
    mock_upstream_b: MockUpstream,
    stream: bool,
) -> None:
    model = await _failing_first(client, add_channel, mock_upstream, mock_upstream_b, "none")
    bad = {"error": {"message": "bad messages", "type": "invalid_request_error", "param": "messages", "code": "x"}}
    mock_upstream.script(CHAT_PATH, Reply(status=400, json=bad))
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model, stream=stream))
    assert response.status_code == 400 and response.json()["error"]["message"] == "bad messages"
    assert mock_upstream_b.calls(CHAT_PATH) == []

    mock_upstream.script(CHAT_PATH, Reply(status=401, json={"error": {"message": "invalid key"}}))
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model, stream=stream))
    assert response.status_code == 200
    job = await job_of(client, tenant, response.headers["x-request-id"])
    assert [(a["outcome"], a["status"]) for a in job["attempts"]] == [("rejected", 401), ("ok", 200)]


@pytest.mark.parametrize("stream", [False, True])
async def test_every_channel_failing_is_500_and_every_channel_saturated_is_503(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    add_channel: AddChannel,
    mock_upstream: MockUpstream,
    mock_upstream_b: MockUpstream,
    stream: bool,
) -> None:
    model = await model_on(
        client,
        add_channel,
        (mock_upstream.base_url, {"priority": 1, "options": QUIET}),
        (mock_upstream_b.base_url, {"options": QUIET}),
    )
    mock_upstream.script(CHAT_PATH, Reply(status=500, json={"error": {"message": "down"}}))
    mock_upstream_b.script(CHAT_PATH, Reply(status=502, json={"error": {"message": "bad gateway"}}))
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model, stream=stream))
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "upstream_error" and "2 channels tried" in error["message"]
    job = await job_of(client, tenant, response.headers["x-request-id"])
    assert [a["status"] for a in job["attempts"]] == [500, 502] and job["status"] == "failed"

    # Both rate limited: 503 overloaded, Retry-After from the upstreams' own.
    limited = {"error": {"message": "slow down"}}
    mock_upstream.script(CHAT_PATH, Reply(status=429, json=limited, headers={"retry-after": "4"}))
    mock_upstream_b.script(CHAT_PATH, Reply(status=429, json=limited, headers={"retry-after": "2"}))
    other = await model_on(
        client,
        add_channel,
        (mock_upstream.base_url, {"priority": 1, "options": QUIET}),
        (mock_upstream_b.base_url, {"options": QUIET}),
    )
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(other, stream=stream))
    assert response.status_code == 503 and response.json()["error"]["code"] == "overloaded"
    assert response.headers["retry-after"] == "2"


async def test_failure_after_the_first_byte_is_not_failed_over(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    add_channel: AddChannel,
    mock_upstream: MockUpstream,
    mock_upstream_b: MockUpstream,
) -> None:
    model = await _failing_first(client, add_channel, mock_upstream, mock_upstream_b, "none")
    mock_upstream.script(CHAT_PATH, Reply(sse=[chunk(role="assistant", content=""), chunk("partial")], close_after=2))
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model, stream=True))
    events = sse_events(response.text)
    assert streamed_text(events) == "partial"
    assert events[-2]["error"]["code"] == "upstream_error" and events[-1] == "[DONE]"
    assert mock_upstream_b.calls(CHAT_PATH) == []
    job = await job_of(client, tenant, response.headers["x-request-id"])
    (attempt,) = job["attempts"]
    assert attempt["mid_stream"] is True and job["status"] == "failed"


async def test_stall_between_chunks_ends_the_stream_with_an_error_event(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    add_channel: AddChannel,
    mock_upstream: MockUpstream,
    mock_upstream_b: MockUpstream,
) -> None:
    model = await _failing_first(client, add_channel, mock_upstream, mock_upstream_b, "none")
    mock_upstream.script(CHAT_PATH, Reply(sse=[chunk("one"), chunk(" two"), chunk(" late")], chunk_delay=5))
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model, stream=True))
    events = sse_events(response.text)
    assert streamed_text(events) == "one"
    assert "next chunk" in events[-2]["error"]["message"] and events[-1] == "[DONE]"
    assert mock_upstream_b.calls(CHAT_PATH) == []


async def test_embeddings_fail_over_too(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    add_channel: AddChannel,
    mock_upstream: MockUpstream,
    mock_upstream_b: MockUpstream,
) -> None:
    model = await _failing_first(client, add_channel, mock_upstream, mock_upstream_b, "none")
    mock_upstream.script("/v1/embeddings", Reply(status=503, json={"error": {"message": "busy"}}))
    response = await client.post("/v1/embeddings", headers=tenant.headers, json={"model": model, "input": "x"})
    assert response.status_code == 200 and response.json()["data"][0]["embedding"] == [0.25, -0.5, 0.75]
    job = await job_of(client, tenant, response.headers["x-request-id"])
    assert [a["status"] for a in job["attempts"]] == [503, 200]


async def test_weights_share_traffic_inside_a_tier(
    client: AsyncTestClient[Any],
    unlimited_tenant: Tenant,
    add_channel: AddChannel,
    mock_upstream: MockUpstream,
    mock_upstream_b: MockUpstream,
) -> None:
    """The HTTP check of weights (the 1,000-draw check runs on the selection function itself)."""
    model = await model_on(
        client,
        add_channel,
        (mock_upstream.base_url, {"weight": 3, "options": QUIET}),
        (mock_upstream_b.base_url, {"weight": 1, "options": QUIET}),
    )
    for _ in range(200):
        response = await client.post(CHAT_PATH, headers=unlimited_tenant.headers, json=chat_body(model))
        assert response.status_code == 200
    share = len(mock_upstream.calls(CHAT_PATH)) / 200
    assert len(mock_upstream_b.calls(CHAT_PATH)) == 200 - len(mock_upstream.calls(CHAT_PATH))
    assert 0.6 <= share <= 0.9  # 75 % expected; ±15 points is > 4.5 standard deviations at n = 200
