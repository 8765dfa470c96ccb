"""The response cache on chat completions, as the OpenAI SDK sees it: a repeated request is a hit,
served without the upstream, with the same content and usage, billed at the cache price (free)."""

from __future__ import annotations

import json
from typing import Any

from litestar.testing import AsyncTestClient
from openai import AsyncOpenAI

from tests.billing.test_billing_api import topup
from tests.cache.conftest import COST, ON, priced_model
from tests.conftest import AddChannel, Tenant
from tests.fakes.upstream import MockUpstream
from tests.support import apoll

CHAT = "/v1/chat/completions"
MESSAGES: Any = [{"role": "user", "content": "What is a cache?"}]


async def job(client: AsyncTestClient[Any], tenant: Tenant, job_id: str) -> dict[str, Any]:
    async def written() -> dict[str, Any] | None:
        response = await client.get(f"/v1/jobs/{job_id}", headers=tenant.headers)
        body = response.json() if response.status_code == 200 else None
        return body if body and (body["billing"]["ledger"] or not body["billing"]["captured"]) else None

    found: dict[str, Any] = await apoll(written, message=f"job {job_id}")
    return found


async def test_the_same_request_twice_is_a_free_hit_with_the_same_answer(
    client: AsyncTestClient[Any], sdk: AsyncOpenAI, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await priced_model(client, add_channel, mock_upstream)
    await topup(client, tenant, 1_000_000)
    first = await sdk.chat.completions.with_raw_response.create(model=model, messages=MESSAGES, extra_headers=ON)
    second = await sdk.chat.completions.with_raw_response.create(model=model, messages=MESSAGES, extra_headers=ON)
    assert first.headers["x-heytoken-cache"] == "miss" and second.headers["x-heytoken-cache"] == "hit"
    a, b = first.parse(), second.parse()
    assert len(mock_upstream.calls(CHAT)) == 1
    assert b.choices[0].message.content == a.choices[0].message.content == "Hello from the mock upstream."
    assert a.usage is not None and b.usage is not None
    assert (b.usage.prompt_tokens, b.usage.completion_tokens, b.usage.total_tokens) == (11, 7, 18)
    assert (a.usage.prompt_tokens, a.usage.completion_tokens) == (11, 7)
    assert a.usage.model_extra == {"cost": COST} and b.usage.model_extra == {"cost": 0}
    assert b.id != a.id and second.headers["x-request-id"] == b.id

    row = await job(client, tenant, b.id)
    assert row["cache"] == {"status": "hit", "saved": COST, "unit": "usd_micros"}
    assert row["billing"]["captured"] == 0 and row["billing"]["hold"] == 0
    assert (await job(client, tenant, a.id))["cache"]["status"] == "miss"

    async def balance() -> bool:
        account = (await client.get("/v1/account", headers=tenant.headers)).json()
        return bool(account["balance"] == 1_000_000 - COST)

    await apoll(balance, message="only the first request charged")
    # Hits count against the key's requests per minute, never its tokens per minute.
    third = await sdk.chat.completions.with_raw_response.create(model=model, messages=MESSAGES, extra_headers=ON)
    fourth = await sdk.chat.completions.with_raw_response.create(model=model, messages=MESSAGES, extra_headers=ON)
    requests = [int(r.headers["x-ratelimit-remaining-requests"]) for r in (third, fourth)]
    tokens = [int(r.headers["x-ratelimit-remaining-tokens"]) for r in (third, fourth)]
    assert requests[1] == requests[0] - 1
    assert tokens[0] == tokens[1]  # (the first request's tokens were settled before: the balance moved)


async def test_a_cached_answer_is_replayed_as_a_stream(
    client: AsyncTestClient[Any], sdk: AsyncOpenAI, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await priced_model(client, add_channel, mock_upstream)
    await topup(client, tenant, 1_000_000)
    whole = await sdk.chat.completions.create(model=model, messages=MESSAGES, extra_headers=ON)
    stream = await sdk.chat.completions.create(
        model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}, extra_headers=ON
    )
    chunks = [chunk async for chunk in stream]
    assert len(mock_upstream.calls(CHAT)) == 1
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 18

    raw = await client.post(
        CHAT, headers={**tenant.headers, **ON}, json={"model": model, "messages": MESSAGES, "stream": True}
    )
    assert raw.headers["x-heytoken-cache"] == "hit"
    assert raw.text.endswith("data: [DONE]\n\n")
    assert len(mock_upstream.calls(CHAT)) == 1


async def test_a_streamed_answer_is_stored_once_it_finished(
    client: AsyncTestClient[Any], sdk: AsyncOpenAI, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await priced_model(client, add_channel, mock_upstream)
    await topup(client, tenant, 1_000_000)
    body = {"model": model, "messages": MESSAGES, "stream": True}
    first = await client.post(CHAT, headers={**tenant.headers, **ON}, json=body)
    assert first.headers["x-heytoken-cache"] == "miss" and first.text.endswith("data: [DONE]\n\n")

    async def stored() -> bool:
        again = await client.post(CHAT, headers={**tenant.headers, **ON}, json={**body, "stream": False})
        return again.headers["x-heytoken-cache"] == "hit"

    await apoll(stored, message="the streamed answer in the cache")
    whole = await sdk.chat.completions.create(model=model, messages=MESSAGES, extra_headers=ON)
    assert whole.choices[0].message.content == "Hello from upstream"
    assert whole.usage is not None and (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (11, 3)
    assert len(mock_upstream.calls(CHAT)) == 1


async def test_no_cache_refreshes_no_store_skips_and_without_opt_in_nothing_is_cached(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await priced_model(client, add_channel, mock_upstream)
    await topup(client, tenant, 1_000_000)
    body = {"model": model, "messages": MESSAGES}

    async def ask(**headers: str) -> str | None:
        response = await client.post(CHAT, headers={**tenant.headers, **headers}, json=body)
        assert response.status_code == 200, response.text
        return response.headers.get("x-heytoken-cache")

    assert await ask() is None and await ask() is None
    assert len(mock_upstream.calls(CHAT)) == 2  # no opt-in: never cached
    assert await ask(**ON, **{"cache-control": "no-store"}) == "miss"
    assert await ask(**ON) == "miss"  # no-store kept nothing
    assert await ask(**ON) == "hit"
    assert await ask(**ON, **{"cache-control": "no-cache"}) == "miss"
    assert len(mock_upstream.calls(CHAT)) == 5
    assert await ask(**{"x-heytoken-cache": "off"}) is None


async def test_an_account_never_reads_another_accounts_entries(
    client: AsyncTestClient[Any], make_tenant: Any, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await priced_model(client, add_channel, mock_upstream)
    a, b = await make_tenant(), await make_tenant()
    await topup(client, a, 1_000_000)
    await topup(client, b, 1_000_000)
    body = {"model": model, "messages": MESSAGES}
    mock_upstream.script(CHAT)
    for tenant in (a, a, b, b):
        await client.post(CHAT, headers={**tenant.headers, **ON}, json=body)
    statuses = []
    for tenant in (a, b):
        response = await client.post(CHAT, headers={**tenant.headers, **ON}, json=body)
        statuses.append(response.headers["x-heytoken-cache"])
    assert statuses == ["hit", "hit"]
    assert len(mock_upstream.calls(CHAT)) == 2  # one per account, never one for both
    assert json.loads(response.text)["usage"]["cost"] == 0
