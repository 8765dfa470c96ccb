"""Videos: the OpenAI SDK's own retries with one Idempotency-Key make one job; 422 on another body;
402 before anything is created; the job's hold is in the ledger."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from openai import APIStatusError, AsyncOpenAI, UnprocessableEntityError

from tests.conftest import ADMIN_HEADERS, AddChannel, Tenant, unique_model
from tests.support import LiveServer, apoll

pytestmark = pytest.mark.e2e


async def priced_video_model(live: LiveServer, tenant: Tenant, add_channel: AddChannel) -> str:
    model = unique_model("vid")
    # No worker runs here: the upstream is never called, the jobs stay queued.
    await add_channel("http://127.0.0.1:9/v1", [model], provider="runway", price={"per_video_second": 100_000})

    async def served() -> bool:
        async with httpx.AsyncClient(base_url=live.url) as http:
            return (await http.get(f"/v1/models/{model}", headers=tenant.headers)).status_code == 200

    await apoll(served, message="video model served")
    return model


async def test_sdk_retries_with_one_key_make_one_job(live: LiveServer, tenant: Tenant, add_channel: AddChannel) -> None:
    model = await priced_video_model(live, tenant, add_channel)
    async with httpx.AsyncClient(base_url=live.url) as http:
        await http.post(f"/admin/accounts/{tenant.account_id}/topups", headers=ADMIN_HEADERS, json={"amount_usd": "5"})
    sdk = AsyncOpenAI(api_key=tenant.key, base_url=f"{live.url}/v1", max_retries=5)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    # Eight identical calls at once: one creates the job; the others meet 409 (in flight), which the
    # SDK retries on its own after Retry-After, and get the first answer replayed.
    videos = await asyncio.gather(
        *(sdk.videos.create(model=model, prompt="a cat", seconds="4", extra_headers=key) for _ in range(8))
    )
    assert len({v.id for v in videos}) == 1
    listed = [v async for v in sdk.videos.list(limit=100) if v.model == model]
    assert [v.id for v in listed] == [videos[0].id]

    with pytest.raises(UnprocessableEntityError) as caught:
        await sdk.videos.create(model=model, prompt="a dog", seconds="4", extra_headers=key)
    assert caught.value.body["code"] == "idempotency_key_reused"  # type: ignore[index]

    async with httpx.AsyncClient(base_url=live.url) as http:
        job = (await http.get(f"/v1/jobs/{videos[0].id}", headers=tenant.headers)).json()
        account = (await http.get("/v1/account", headers=tenant.headers)).json()
    assert job["billing"]["state"] == "held" and job["billing"]["hold"] == 400_000
    assert [(e["kind"], e["amount"]) for e in job["billing"]["ledger"]] == [("hold", -400_000)]
    assert account["balance"] == 5_000_000 - 400_000


async def test_video_without_balance_is_402_and_creates_nothing(
    live: LiveServer, tenant: Tenant, add_channel: AddChannel
) -> None:
    model = await priced_video_model(live, tenant, add_channel)
    sdk = AsyncOpenAI(api_key=tenant.key, base_url=f"{live.url}/v1", max_retries=0)
    with pytest.raises(APIStatusError) as caught:
        await sdk.videos.create(model=model, prompt="a cat", seconds="4")
    assert caught.value.status_code == 402
    assert [v async for v in sdk.videos.list(limit=100)] == []
