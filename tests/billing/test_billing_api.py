"""Billing through the API: holds before the upstream, costs reported, the account's own views."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from litestar.testing import AsyncTestClient

from tests.app.test_chat_local import sse_payloads
from tests.conftest import ADMIN_HEADERS, AddChannel, Tenant, unique_model, wait_for_model
from tests.fakes.upstream import MockUpstream, Reply
from tests.support import LiveServer, apoll

# $1 / 1M input tokens, $2 / 1M output tokens; the mock upstream reports 11 in + 7 out → 25 micro-dollars.
PRICE = {"input_per_mtok": 1_000_000, "output_per_mtok": 2_000_000}
COST = 25


async def priced_model(
    client: AsyncTestClient[Any], add_channel: AddChannel, upstream: MockUpstream, price: dict[str, Any] | None = None
) -> str:
    model = unique_model("paid")
    await add_channel(upstream.base_url, [model], price=price or PRICE)
    await wait_for_model(client, model)
    return model


async def topup(client: AsyncTestClient[Any], tenant: Tenant, amount: int) -> None:
    response = await client.post(
        f"/admin/accounts/{tenant.account_id}/topups", headers=ADMIN_HEADERS, json={"amount": amount, "reason": "test"}
    )
    assert response.status_code == 201, response.text


def chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50, **extra}


async def test_insufficient_balance_is_402_before_any_upstream_call(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await priced_model(client, add_channel, mock_upstream)
    for stream in (False, True):
        response = await client.post("/v1/chat/completions", headers=tenant.headers, json=chat(model, stream=stream))
        assert response.status_code == 402
        assert response.json()["error"]["type"] == "insufficient_quota"
        assert response.json()["error"]["code"] == "insufficient_quota"
    embed = await client.post("/v1/embeddings", headers=tenant.headers, json={"model": model, "input": "x"})
    assert embed.status_code == 402
    assert mock_upstream.requests == []


async def test_a_402_says_how_much_of_the_balance_requests_in_flight_hold(
    client: AsyncTestClient[Any], live: LiveServer, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    # Given a balance that covers one request's hold, and one request in flight holding it (on a real
    # socket: the in-process client runs one request at a time)
    model = await priced_model(client, add_channel, mock_upstream)
    await topup(client, tenant, 600)  # one hold here is $0.000441
    mock_upstream.script("/v1/chat/completions", Reply(delay_before=1.0))
    async with httpx.AsyncClient(base_url=live.url, headers=tenant.headers, timeout=30) as http:
        await apoll(lambda: _listed(http, model), message="the live server serves the model")
        first = asyncio.create_task(http.post("/v1/chat/completions", json=chat(model)))
        await apoll(lambda: mock_upstream.requests or first.done(), message="the first request at the upstream")
        assert not first.done(), (await first).text
        # When a second request comes meanwhile
        refused = await http.post("/v1/chat/completions", json=chat(model))
        assert (await first).status_code == 200
    # Then its 402 states the balance and the part of it held in flight, not just what is left
    assert refused.status_code == 402, refused.text
    message = refused.json()["error"]["message"]
    assert "Its balance is $0.000600, of which $0.000441 is held by requests in flight" in message, message


async def _listed(http: httpx.AsyncClient, model: str) -> bool:
    return (await http.get(f"/v1/models/{model}")).status_code == 200


async def test_a_model_without_a_price_cannot_be_called(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = unique_model("unpriced")
    await add_channel(mock_upstream.base_url, [model], price=False)
    await wait_for_model(client, model)
    response = await client.post("/v1/chat/completions", headers=tenant.headers, json=chat(model))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "model_not_priced"
    assert mock_upstream.requests == []


async def test_costs_are_reported_and_captured_once(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await priced_model(client, add_channel, mock_upstream)
    await topup(client, tenant, 1_000_000)
    whole = await client.post("/v1/chat/completions", headers=tenant.headers, json=chat(model))
    assert whole.status_code == 200
    assert whole.json()["usage"]["cost"] == COST
    assert whole.headers["x-ratelimit-limit-requests"] == "100"

    streamed = await client.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json=chat(model, stream=True, stream_options={"include_usage": True}),
    )
    final = json.loads(sse_payloads(streamed.text)[-2])
    assert final["usage"]["cost"] == 11 * 1 + 3 * 2  # the default stream reports 11 in, 3 out

    embedded = await client.post("/v1/embeddings", headers=tenant.headers, json={"model": model, "input": "x" * 8})
    assert embedded.json()["usage"]["cost"] == 5  # 5 input tokens at $1/M (within the 9-token input bound)

    job_id = whole.json()["id"]

    async def billed() -> dict[str, Any] | None:
        # The job answers at once from the pending job log; its ledger fills once the row is written.
        response = await client.get(f"/v1/jobs/{job_id}", headers=tenant.headers)
        return response.json() if response.status_code == 200 and response.json()["billing"]["ledger"] else None

    job = await apoll(billed, message="job row with its capture")
    billing = job["billing"]
    # the hold was the worst case: a prompt bound of bytes + 50 output tokens at $2/M
    assert billing["hold"] >= COST and billing["captured"] == COST and billing["state"] == "captured"
    assert [(e["kind"], e["amount"]) for e in billing["ledger"]] == [("capture", -COST)]

    async def balance_settled() -> bool:
        account = (await client.get("/v1/account", headers=tenant.headers)).json()
        return account["balance"] == 1_000_000 - COST - 17 - 5

    await apoll(balance_settled, message="balance after three captures")
    ledger = (await client.get("/v1/ledger", headers=tenant.headers)).json()
    assert sorted(e["kind"] for e in ledger["data"]) == ["capture", "capture", "capture", "topup"]
    usage = (await client.get("/v1/usage", headers=tenant.headers)).json()
    row = next(r for r in usage["data"] if r["model"] == model)
    assert row["requests"] == 3 and row["cost"] == COST + 17 + 5


async def test_failed_upstream_costs_nothing(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    from tests.fakes.upstream import Reply

    model = await priced_model(client, add_channel, mock_upstream)
    await topup(client, tenant, 10_000)
    mock_upstream.script("/v1/chat/completions", Reply(status=500, json={"error": {"message": "down"}}))
    response = await client.post("/v1/chat/completions", headers=tenant.headers, json=chat(model))
    assert response.status_code == 500
    job_id = response.headers.get("x-request-id")

    async def released() -> bool:
        account = (await client.get("/v1/account", headers=tenant.headers)).json()
        ledger = (await client.get("/v1/ledger", headers=tenant.headers)).json()
        return account["balance"] == 10_000 and [e["kind"] for e in ledger["data"]] == ["topup"]

    await apoll(released, message="hold released, nothing captured")
    assert job_id is None or job_id.startswith("chatcmpl-")


async def test_tier_multiplier_discounts(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream, settings: Any
) -> None:
    model = await priced_model(client, add_channel, mock_upstream)
    tier = unique_model("half")
    assert (
        await client.put(f"/admin/tiers/{tier}", headers=ADMIN_HEADERS, json={"price_multiplier_bp": 5000})
    ).status_code == 200
    assert (
        await client.patch(f"/admin/accounts/{tenant.account_id}", headers=ADMIN_HEADERS, json={"tier": tier})
    ).status_code == 200
    await topup(client, tenant, 10_000)

    async def discounted() -> bool:
        response = await client.post("/v1/chat/completions", headers=tenant.headers, json=chat(model))
        return response.status_code == 200 and response.json()["usage"]["cost"] == 13  # ceil(25 / 2)

    await apoll(discounted, timeout=settings.key_cache_ttl_seconds + 5, message="the tier's price applies")


async def test_redemption_codes_work_once(client: AsyncTestClient[Any], tenant: Tenant, make_tenant: Any) -> None:
    created = await client.post("/admin/codes", headers=ADMIN_HEADERS, json={"amount_usd": "2.50", "count": 2})
    codes = [c["code"] for c in created.json()["data"]]
    assert len(set(codes)) == 2
    redeemed = await client.post("/v1/redeem", headers=tenant.headers, json={"code": codes[0]})
    assert redeemed.json()["amount"] == 2_500_000 and redeemed.json()["balance"] == 2_500_000
    other = await make_tenant()
    again = await client.post("/v1/redeem", headers=other.headers, json={"code": codes[0]})
    assert again.status_code == 409 and again.json()["error"]["code"] == "code_already_redeemed"
    bogus = await client.post("/v1/redeem", headers=tenant.headers, json={"code": "HT-AAAA-BBBB-CCCC-DDDD"})
    assert bogus.status_code == 404
    garbage = await client.post("/v1/redeem", headers=tenant.headers, json={"code": "free money"})
    assert garbage.status_code == 400 and garbage.json()["error"]["param"] == "code"


async def test_account_view_and_bad_queries(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    account = (await client.get("/v1/account", headers=tenant.headers)).json()
    assert account["id"] == tenant.account_id and account["balance"] == 0 and account["unit"] == "usd_micros"
    assert account["limits"]["rpm"] == 100 and account["limits"]["tpm"] == 100_000
    for query, param in (("start=yesterday", "start"), ("start=2026-02-01&end=2026-01-01", "start")):
        bad = await client.get(f"/v1/usage?{query}", headers=tenant.headers)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == param
    bad_page = await client.get("/v1/ledger?limit=1000", headers=tenant.headers)
    assert bad_page.status_code == 400 and bad_page.json()["error"]["param"] == "limit"
