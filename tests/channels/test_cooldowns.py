"""Cooldowns in one process: opened by repeated failures or a Retry-After, visible in the admin API,
skipped without a Redis read, and ended by one trial request."""

from __future__ import annotations

import time
from typing import Any

from litestar.testing import AsyncTestClient

from tests.conftest import ADMIN_HEADERS, AddChannel, Tenant
from tests.fakes.upstream import MockUpstream, Reply
from tests.routing_support import CHAT_PATH, QUIET, chat_body, job_of, model_on
from tests.support import apoll

BROKEN = Reply(status=500, json={"error": {"message": "boom", "type": "server_error"}})


async def cooldown_of(client: AsyncTestClient[Any], channel: str, state: str | None) -> dict[str, Any] | None:
    """Poll the admin API until `channel` is in `state` (None: has no cooldown)."""

    async def check() -> Any:
        data = (await client.get("/admin/cooldowns", headers=ADMIN_HEADERS)).json()["data"]
        mine = [c for c in data if c["channel"] == channel]
        if state is None:
            return not mine
        return mine[0] if mine and mine[0]["state"] == state else None

    found = await apoll(check, timeout=15, message=f"{channel} {state or 'without cooldown'}")
    return found if isinstance(found, dict) else None


async def half_open_here(client: AsyncTestClient[Any], channel: str) -> None:
    """Half-open in Redis and on this process's copy of the board, which converts Redis's clock at its
    last sync (a few ms later under load): only then is the next request certain to be the trial."""
    cooldown = await cooldown_of(client, channel, "half_open")
    assert cooldown is not None
    board, channel_id = client.app.state.resources.cooldowns, cooldown["channel_id"]

    def local() -> bool:
        entry = board.entries.get(channel_id)
        return entry is not None and entry.until <= time.monotonic()

    await apoll(local, timeout=10, message=f"{channel} half-open on the local board")


async def test_repeated_failures_open_a_cooldown_and_one_trial_closes_it(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    add_channel: AddChannel,
    mock_upstream: MockUpstream,
    mock_upstream_b: MockUpstream,
) -> None:
    options = {"cooldown_failures": 2, "cooldown_seconds": 1}
    model = await model_on(
        client,
        add_channel,
        (mock_upstream.base_url, {"priority": 10, "options": options}),
        (mock_upstream_b.base_url, {"options": QUIET}),
    )
    name = client.app.state.resources.catalog.current.routes[model][0].channel_name
    mock_upstream.script(CHAT_PATH, BROKEN, BROKEN)
    for _ in range(2):
        assert (await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model))).status_code == 200
    cooldown = await cooldown_of(client, name, "cooling_down")
    assert cooldown is not None and "500" in cooldown["reason"] and cooldown["failures"] == 2
    board = client.app.state.resources.cooldowns
    await apoll(lambda: cooldown["channel_id"] in board.entries, timeout=10, message="the local cooldown board")

    # While it cools down the channel is skipped: the request goes straight to the other one.
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model))
    assert response.status_code == 200 and len(mock_upstream.calls(CHAT_PATH)) == 2
    job = await job_of(client, tenant, response.headers["x-request-id"])
    assert [a["outcome"] for a in job["attempts"]] == ["skipped", "ok"]

    # Half-open after a second: one trial request, which succeeds and ends the cooldown.
    await half_open_here(client, name)
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model))
    job = await job_of(client, tenant, response.headers["x-request-id"])
    assert job["attempts"][-1]["trial"] is True and job["attempts"][-1]["channel"] == name
    await cooldown_of(client, name, None)
    assert len(mock_upstream.calls(CHAT_PATH)) == 3


async def test_a_failed_trial_doubles_the_cooldown(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    add_channel: AddChannel,
    mock_upstream: MockUpstream,
    mock_upstream_b: MockUpstream,
) -> None:
    model = await model_on(
        client,
        add_channel,
        (mock_upstream.base_url, {"priority": 10, "options": {"cooldown_failures": 1, "cooldown_seconds": 0.5}}),
        (mock_upstream_b.base_url, {"options": QUIET}),
    )
    name = client.app.state.resources.catalog.current.routes[model][0].channel_name
    mock_upstream.script(CHAT_PATH, BROKEN, BROKEN)
    await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model))
    first = await cooldown_of(client, name, "cooling_down")
    assert first is not None and first["level"] == 0
    await half_open_here(client, name)
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model))
    assert response.status_code == 200  # the trial failed over to the healthy channel
    again = await cooldown_of(client, name, "cooling_down")
    assert again is not None and again["level"] == 1


async def test_only_channel_cooling_down_is_503_with_retry_after(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await model_on(
        client, add_channel, (mock_upstream.base_url, {"options": {"cooldown_failures": 1, "cooldown_seconds": 30}})
    )
    mock_upstream.script(CHAT_PATH, BROKEN)
    assert (await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model))).status_code == 500
    # Failures are reported in the background: wait for this process's copy of the board.
    channel_id = client.app.state.resources.catalog.current.routes[model][0].channel_id
    board = client.app.state.resources.cooldowns
    await apoll(lambda: channel_id in board.entries, timeout=10, message="the local cooldown board")
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model))
    assert response.status_code == 503 and response.json()["error"]["code"] == "overloaded"
    assert 1 <= int(response.headers["retry-after"]) <= 30
    assert len(mock_upstream.calls(CHAT_PATH)) == 1


async def test_retry_after_opens_a_cooldown_at_once_and_an_operator_can_end_it(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await model_on(client, add_channel, (mock_upstream.base_url, {"options": QUIET}))
    name = client.app.state.resources.catalog.current.routes[model][0].channel_name
    limited = Reply(status=429, json={"error": {"message": "slow down"}}, headers={"retry-after": "40"})
    mock_upstream.script(CHAT_PATH, limited)
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model))
    assert response.status_code == 503 and response.headers["retry-after"] == "40"
    cooldown = await cooldown_of(client, name, "cooling_down")
    assert cooldown is not None and 30 < cooldown["retry_after"] <= 40 and cooldown["status"] == 429

    listed = (await client.get(f"/admin/channels/{name}", headers=ADMIN_HEADERS)).json()
    assert listed["cooldown"]["state"] == "cooling_down"
    assert (await client.delete(f"/admin/cooldowns/{name}", headers=ADMIN_HEADERS)).status_code == 200
    await cooldown_of(client, name, None)

    async def served() -> bool:
        response = await client.post(CHAT_PATH, headers=tenant.headers, json=chat_body(model))
        return response.status_code == 200

    await apoll(served, timeout=10, message="the channel serving again")
