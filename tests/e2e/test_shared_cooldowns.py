"""Cooldowns across two web processes (started as the Procfile starts them, sharing Redis and the
database): a channel that failed N times behind one process is skipped by the other too, and comes
back after its cooldown through exactly one trial request."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.core.settings import Settings
from tests.conftest import ADMIN_HEADERS, AddChannel, Tenant, unique_model
from tests.fakes.upstream import MockUpstream, Reply, chat_completion
from tests.routing_support import CHAT_PATH, QUIET, chat_body
from tests.support import LiveServer, apoll

pytestmark = pytest.mark.e2e
BROKEN = Reply(status=500, json={"error": {"message": "boom", "type": "server_error"}})


@pytest.fixture(scope="module")
def second_live(settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(settings).start()
    yield server
    server.stop()


async def _job(http: httpx.AsyncClient, tenant: Tenant, job_id: str) -> dict[str, Any]:
    async def fetch() -> Any:
        response = await http.get(f"/v1/jobs/{job_id}", headers=tenant.headers)
        return response.json() if response.status_code == 200 else None

    job: dict[str, Any] = await apoll(fetch, timeout=10, message=f"job {job_id}")
    return job


async def _cooldown(http: httpx.AsyncClient, channel: str) -> dict[str, Any] | None:
    data = (await http.get("/admin/cooldowns", headers=ADMIN_HEADERS)).json()["data"]
    return next((c for c in data if c["channel"] == channel), None)


async def test_cooldown_is_shared_and_ends_with_one_trial(
    live: LiveServer,
    second_live: LiveServer,
    tenant: Tenant,
    add_channel: AddChannel,
    mock_upstream: MockUpstream,
    mock_upstream_b: MockUpstream,
) -> None:
    model = unique_model("shared")
    await add_channel(mock_upstream_b.base_url, [model], options=QUIET)
    flaky = await add_channel(
        mock_upstream.base_url, [model], priority=10, options={"cooldown_failures": 2, "cooldown_seconds": 2}
    )
    mock_upstream.default[CHAT_PATH] = lambda body: BROKEN
    one = httpx.AsyncClient(base_url=live.url, timeout=30)
    two = httpx.AsyncClient(base_url=second_live.url, timeout=30)
    try:
        # Given: two failures of the flaky channel behind the first process (each request still answered).
        async def failed_twice() -> bool:
            response = await one.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model))
            assert response.status_code in (200, 404), response.text  # 404 until the catalog has the model
            return len(mock_upstream.calls(CHAT_PATH)) >= 2

        await apoll(failed_twice, timeout=20, interval=0.05, message="two failures of the flaky channel")
        cooldown = await apoll(lambda: _cooldown(one, flaky), timeout=10, message="the cooldown in Redis")
        assert cooldown["state"] == "cooling_down" and "500" in cooldown["reason"]

        # Then: the second process skips it as well, within its sync interval.
        async def skipped_by_two() -> bool:
            response = await two.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model))
            assert response.status_code == 200
            job = await _job(two, tenant, response.headers["x-request-id"])
            return job["attempts"][0]["outcome"] == "skipped"

        await apoll(skipped_by_two, timeout=10, interval=0.05, message="the second process skipping the channel")
        before = len(mock_upstream.calls(CHAT_PATH))
        for _ in range(3):
            assert (await two.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model))).status_code == 200
        assert len(mock_upstream.calls(CHAT_PATH)) == before

        # When: the cooldown runs out and the upstream is healthy again (its first answer slow), a burst
        # of requests on both processes sends it exactly one trial; the rest go to the other channel.
        del mock_upstream.default[CHAT_PATH]
        mock_upstream.script(CHAT_PATH, Reply(delay_before=1.0, json=chat_completion({"model": "up"})))
        channel_id = cooldown["channel_id"]
        for http in (one, two):
            await apoll(lambda h=http: _half_open(h, channel_id), timeout=15, message="the cooldown running out")
        burst = [c.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model)) for c in (one, two) * 3]
        responses = await asyncio.gather(*burst)
        assert [r.status_code for r in responses] == [200] * 6
        assert len(mock_upstream.calls(CHAT_PATH)) == before + 1

        # Then: the trial succeeded, the cooldown is gone everywhere and the channel serves again.
        await apoll(lambda: _gone(one, flaky), timeout=10, message="the cooldown closed")

        async def served_by_flaky_on_two() -> bool:
            await two.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model))
            return len(mock_upstream.calls(CHAT_PATH)) > before + 1

        await apoll(served_by_flaky_on_two, timeout=10, interval=0.05, message="the second process using it again")
    finally:
        mock_upstream.default.pop(CHAT_PATH, None)
        await one.aclose()
        await two.aclose()


async def _half_open(http: httpx.AsyncClient, channel_id: str) -> bool:
    """Half-open in that process's own copy of the board."""
    local = (await http.get("/admin/status", headers=ADMIN_HEADERS)).json()["local_cooldowns"]
    return any(c["channel_id"] == channel_id and c["state"] == "half_open" for c in local)


async def _gone(http: httpx.AsyncClient, channel: str) -> bool:
    return await _cooldown(http, channel) is None
