"""Conservation under concurrency (issue 5's acceptance), on whichever database the run uses.

200 concurrent chat requests — streaming and not, some cancelled by the client mid-stream, some failing
upstream — against an account whose balance covers only part of them. The balance never goes below
zero, every request that got content is charged, failed ones are not, and top-ups − balance = captures.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.core.settings import Settings
from tests.billing.test_billing_api import PRICE
from tests.conftest import ADMIN_HEADERS, AddChannel, Tenant, unique_model
from tests.fakes.upstream import MockUpstream, Reply, chat_completion, default_stream
from tests.routing_support import QUIET
from tests.support import LiveServer, apoll

pytestmark = pytest.mark.e2e
CHAT = "/v1/chat/completions"
TOPUP = 6_000
# Every admitted request stays in flight this long, so holds overlap and the balance (≈ 51 holds)
# covers only part of the 200 however the requests happen to be spread out.
DELAY = 1.0


def behaviour(body: Any) -> Reply:
    said = body["messages"][0]["content"]
    if said == "fail":
        return Reply(status=500, json={"error": {"message": "upstream down"}}, delay_before=DELAY)
    if said == "cancel":
        return Reply(forever=True, chunk_delay=0.02, delay_before=DELAY)
    if body.get("stream"):
        return Reply(sse=default_stream(), delay_before=DELAY)
    return Reply(json=chat_completion(body), delay_before=DELAY)


async def one(http: httpx.AsyncClient, tenant: Tenant, model: str, kind: str) -> tuple[str, int, str | None]:
    stream = kind in ("stream", "cancel")
    body = {
        "model": model,
        "max_tokens": 50,
        "stream": stream,
        "messages": [{"role": "user", "content": kind if kind in ("fail", "cancel") else "hello"}],
    }
    async with http.stream("POST", CHAT, headers=tenant.headers, json=body) as response:
        job_id = response.headers.get("x-request-id")
        if response.status_code != 200 or kind != "cancel":
            await response.aread()
            return kind, response.status_code, job_id
        seen = 0
        async for _ in response.aiter_raw():
            seen += 1
            if seen >= 3:
                break  # the client goes away mid-stream
        return kind, response.status_code, job_id


async def test_conservation(
    settings: Settings, live: LiveServer, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = unique_model("bank")
    # Failing requests must not cool the one channel down (that would turn later requests into 503s,
    # which routing's own tests cover): this test is about the money.
    await add_channel(mock_upstream.base_url, [model], price=PRICE, options=QUIET)
    mock_upstream.default[CHAT] = behaviour
    redis = Redis.from_url(settings.redis_url)
    mirror = f"{settings.redis_prefix}bal:{tenant.account_id}"
    async with httpx.AsyncClient(base_url=live.url, timeout=60, limits=httpx.Limits(max_connections=250)) as http:
        admin = await http.patch(
            f"/admin/keys/{tenant.key_id}", headers=ADMIN_HEADERS, json={"rpm": 0, "rph": 0, "tpm": 0, "max_streams": 0}
        )
        assert admin.status_code == 200
        topped = await http.post(
            f"/admin/accounts/{tenant.account_id}/topups", headers=ADMIN_HEADERS, json={"amount": TOPUP}
        )
        assert topped.status_code == 201

        async def listed() -> bool:
            return (await http.get(f"/v1/models/{model}", headers=tenant.headers)).status_code == 200

        await apoll(listed, message="model served")
        lowest: list[int] = []
        stop = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                value = await redis.get(mirror)
                if value is not None:
                    lowest.append(int(value))
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        rng = random.Random(7)
        kinds = [rng.choice(["whole", "stream", "cancel", "fail"]) for _ in range(200)]
        results = await asyncio.gather(*(one(http, tenant, model, k) for k in kinds))
        stop.set()
        await watcher

        statuses = {code for _, code, _ in results}
        assert statuses <= {200, 402, 500}
        assert 402 in statuses and 200 in statuses, "the balance must cover only part of the requests"
        served = [(kind, job_id) for kind, code, job_id in results if code in (200, 500) and job_id]

        async def settled() -> bool:
            inflight = await redis.get(f"{settings.redis_prefix}inflight:{tenant.account_id}")
            return inflight in (None, b"0")

        await apoll(settled, timeout=30, message="every hold settled")
        jobs: dict[str, dict[str, Any]] = {}

        async def all_recorded() -> bool:
            for _, job_id in served:
                if job_id not in jobs:
                    response = await http.get(f"/v1/jobs/{job_id}", headers=tenant.headers)
                    if response.status_code != 200:
                        return False
                    jobs[job_id] = response.json()
            return True

        await apoll(all_recorded, timeout=30, message="every job row")
        account = (await http.get("/v1/account", headers=tenant.headers)).json()
        verify = (await http.get("/admin/ledger/verify", headers=ADMIN_HEADERS)).json()

    await redis.aclose()
    assert min(lowest) >= 0, "the Redis balance went below zero"
    captured = 0
    for kind, job_id in served:
        job = jobs[job_id]["billing"]
        captures = [e for e in job["ledger"] if e["kind"] == "capture"]
        if kind == "fail":
            assert job["captured"] == 0 and captures == [], f"failed request charged: {job}"
        else:
            assert job["captured"] > 0, f"{kind} request with content not charged: {job}"
            assert len(captures) == 1 and -captures[0]["amount"] == job["captured"]
            assert job["captured"] <= job["hold"], f"charged more than the hold: {job}"
        if kind == "whole":
            assert job["captured"] == 25
        if kind == "stream":
            assert job["captured"] == 17
        captured += job["captured"]
    assert account["balance"] >= 0
    assert TOPUP - account["balance"] == captured
    assert verify["ok"], verify
