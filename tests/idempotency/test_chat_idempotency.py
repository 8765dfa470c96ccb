"""Idempotency-Key on chat completions: replay, reuse with another body, in flight, failures."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from litestar.testing import AsyncTestClient

from tests.billing.test_billing_api import PRICE, chat, priced_model, topup
from tests.conftest import AddChannel, Tenant
from tests.fakes.upstream import MockUpstream, Reply
from tests.support import LiveServer, apoll


async def model_listed(http: httpx.AsyncClient, tenant: Tenant, model: str) -> bool:
    response = await http.get(f"/v1/models/{model}", headers=tenant.headers)
    return response.status_code == 200


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"k-{uuid.uuid4()}"}


async def test_same_key_same_body_replays_without_a_second_upstream_call_or_charge(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await priced_model(client, add_channel, mock_upstream, PRICE)
    await topup(client, tenant, 100_000)
    headers = {**tenant.headers, **key()}
    first = await client.post("/v1/chat/completions", headers=headers, json=chat(model))
    again = await client.post("/v1/chat/completions", headers=headers, json=chat(model))
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(mock_upstream.requests) == 1
    # the key is the account's: another body under it is refused
    other = await client.post("/v1/chat/completions", headers=headers, json=chat(model, temperature=0.1))
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"


async def test_key_in_flight_is_409_with_retry_after(
    client: AsyncTestClient[Any], live: LiveServer, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await priced_model(client, add_channel, mock_upstream, PRICE)
    await topup(client, tenant, 100_000)
    mock_upstream.script("/v1/chat/completions", Reply(delay_before=1.0))
    headers = {**tenant.headers, **key()}
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        await apoll(lambda: model_listed(http, tenant, model), message="model in the live catalog")
        slow = asyncio.create_task(http.post("/v1/chat/completions", headers=headers, json=chat(model)))
        await apoll(lambda: mock_upstream.requests, message="first request upstream")
        busy = await http.post("/v1/chat/completions", headers=headers, json=chat(model))
        first = await slow
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "idempotency_key_in_use"
    assert busy.headers["retry-after"] == "1"
    assert first.status_code == 200


async def test_a_failed_request_frees_its_key(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await priced_model(client, add_channel, mock_upstream, PRICE)
    headers = {**tenant.headers, **key()}
    broke = await client.post("/v1/chat/completions", headers=headers, json=chat(model))
    assert broke.status_code == 402
    await topup(client, tenant, 100_000)
    mock_upstream.script("/v1/chat/completions", Reply(status=503, json={"error": {"message": "busy"}}))
    failed = await client.post("/v1/chat/completions", headers=headers, json=chat(model))
    assert failed.status_code == 500
    retried = await client.post("/v1/chat/completions", headers=headers, json=chat(model))
    assert retried.status_code == 200 and "idempotent-replayed" not in retried.headers


async def test_bad_keys_and_streams(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    for bad in ("", "x" * 256, "tab\there"):
        response = await client.post(
            "/v1/chat/completions", headers={**tenant.headers, "Idempotency-Key": bad}, json=chat("local-chat")
        )
        assert response.status_code == 400, bad
        assert response.json()["error"]["param"] == "Idempotency-Key"
    streamed = await client.post(
        "/v1/chat/completions", headers={**tenant.headers, **key()}, json=chat("local-chat", stream=True)
    )
    assert streamed.status_code == 400
    assert streamed.json()["error"]["code"] == "idempotency_not_supported"


async def test_no_key_no_fingerprint(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    add_channel: AddChannel,
    mock_upstream: MockUpstream,
    monkeypatch: Any,
) -> None:
    """Without an Idempotency-Key the body is not re-encoded to fingerprint it (hot path)."""
    from app.api import idempotency

    model = await priced_model(client, add_channel, mock_upstream, PRICE)
    await topup(client, tenant, 100_000)
    calls: list[str] = []
    real = idempotency.fingerprint
    monkeypatch.setattr(idempotency, "fingerprint", lambda *a: calls.append("fp") or real(*a))
    plain = await client.post("/v1/chat/completions", headers=tenant.headers, json=chat(model))
    assert plain.status_code == 200 and "idempotent-replayed" not in plain.headers
    assert calls == []
    keyed = await client.post("/v1/chat/completions", headers={**tenant.headers, **key()}, json=chat(model))
    assert keyed.status_code == 200
    assert calls == ["fp"]
