"""Route selection and the per-request plan, on their own (no HTTP)."""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import pytest

from app.channels.catalog import Catalog, Route
from app.channels.cooldowns import Cooldown
from app.channels.policy import DEFAULT_POLICY, ChannelPolicy
from app.channels.routing import Plan, backoff, candidates
from app.core.errors import Overloaded, UpstreamFailed
from app.core.upstream_errors import UpstreamRateLimited, UpstreamRejected, UpstreamUnavailable


def route(name: str, *, priority: int = 0, weight: int = 1) -> Route:
    return Route(f"ch_{name}", name, "openai", "http://127.0.0.1:9/v1", None, "m", priority, weight, {})


def catalog_of(*routes: Route, model: str = "m") -> Catalog:
    catalog = Catalog()
    for r in routes:
        catalog.add(model, r, 0)
    catalog.finish()
    return catalog


class FakeBoard:
    def __init__(self, entries: dict[str, Cooldown] | None = None, trial: bool = True) -> None:
        self.entries = entries or {}
        self.trial = trial
        self.failures: list[tuple[str, str]] = []
        self.recovered: list[str] = []
        self.released: list[str] = []

    async def claim_trial(self, channel_id: str, policy: ChannelPolicy) -> bool:
        return self.trial

    def report_failure(self, channel_id: str, policy: Any, reason: str, status: Any, retry_after: Any) -> None:
        self.failures.append((channel_id, reason))

    def report_recovery(self, channel_id: str) -> None:
        self.recovered.append(channel_id)

    def release_trial(self, channel_id: str) -> None:
        self.released.append(channel_id)


def plan(catalog: Catalog, board: FakeBoard, attempts: int = 3) -> Plan:
    return Plan(catalog, board, "m", [], attempts=attempts, base=0.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(5))
def test_weights_3_to_1_over_1000_draws_land_within_5_points_of_75_25(seed: int) -> None:
    tiers = catalog_of(route("a", weight=3), route("b", weight=1)).tiers["m"]
    rand = random.Random(seed).random
    first = Counter(next(candidates(tiers, rand)).channel_name for _ in range(1000))
    assert abs(first["a"] / 1000 - 0.75) <= 0.05, first
    assert first["a"] + first["b"] == 1000


def test_every_route_once_highest_priority_tier_first() -> None:
    tiers = catalog_of(
        route("low", priority=-5), route("a", priority=10), route("b", priority=10), route("mid", priority=1)
    ).tiers["m"]
    orders = {tuple(r.channel_name for r in candidates(tiers)) for _ in range(200)}
    assert orders == {("a", "b", "mid", "low"), ("b", "a", "mid", "low")}


def test_backoff_is_short_jittered_and_capped() -> None:
    assert 0.075 <= backoff(1, 0.1) <= 0.1
    assert 0.15 <= backoff(2, 0.1) <= 0.2
    assert backoff(30, 0.1) <= 2.0


def cooling(seconds: float, reason: str = "Upstream answered 500: boom") -> Cooldown:
    return Cooldown(time.monotonic() + seconds, 0, reason, 500, time.time(), 3)


async def test_plan_skips_cooling_channels_without_asking_anyone() -> None:
    board = FakeBoard({"ch_a": cooling(30)}, trial=False)
    p = plan(catalog_of(route("a", priority=1), route("b")), board)
    chosen = await p.next()
    assert chosen is not None and chosen.channel_name == "b"
    assert p.log[0]["outcome"] == "skipped" and "cooling down" in p.log[0]["error"]


async def test_all_cooling_is_503_with_the_shortest_retry_after() -> None:
    board = FakeBoard({"ch_a": cooling(30), "ch_b": cooling(4.2)})
    p = plan(catalog_of(route("a"), route("b")), board)
    assert await p.next() is None
    error = p.exhausted()
    assert isinstance(error, Overloaded) and error.headers["retry-after"] == "5"


async def test_half_open_channel_gets_one_trial_and_recovers_on_success() -> None:
    board = FakeBoard({"ch_a": cooling(-1)})
    p = plan(catalog_of(route("a", priority=1), route("b")), board)
    chosen = await p.next()
    assert chosen is not None and chosen.channel_name == "a"
    p.succeeded(chosen)
    assert board.recovered == ["ch_a"] and p.log[-1]["trial"] is True

    abandoned = FakeBoard({"ch_a": cooling(-1)})
    p = plan(catalog_of(route("a", priority=1), route("b")), abandoned)
    chosen = await p.next()
    assert chosen is not None
    p.abandon(chosen)  # e.g. the client went away during the trial: another request may try at once
    assert abandoned.released == ["ch_a"] and abandoned.recovered == []

    lost = FakeBoard({"ch_a": cooling(-1)}, trial=False)
    p = plan(catalog_of(route("a", priority=1), route("b")), lost)
    chosen = await p.next()
    assert chosen is not None and chosen.channel_name == "b"


async def test_failures_are_reported_and_attempts_bounded() -> None:
    board = FakeBoard()
    p = plan(catalog_of(route("a", priority=2), route("b", priority=1), route("c")), board, attempts=2)
    for _ in range(2):
        chosen = await p.next()
        assert chosen is not None
        assert p.failed(chosen, UpstreamUnavailable("Upstream answered 500: x", status=500)) is None
    assert await p.next() is None
    assert [c for c, _ in board.failures] == ["ch_a", "ch_b"]
    assert isinstance(p.exhausted(), UpstreamFailed)


async def test_rate_limits_everywhere_are_503_but_a_client_error_stops_at_once() -> None:
    p = plan(catalog_of(route("a", priority=1), route("b")), FakeBoard())
    while (chosen := await p.next()) is not None:
        p.failed(chosen, UpstreamRateLimited("Upstream answered 429", status=429, retry_after=7))
    assert isinstance(p.exhausted(), Overloaded)

    board = FakeBoard()
    p = plan(catalog_of(route("a", priority=1), route("b")), board)
    chosen = await p.next()
    assert chosen is not None
    error = p.failed(chosen, UpstreamRejected("Upstream answered 400", status=400, error={"message": "bad"}))
    assert error is not None and error.status_code == 400 and board.failures == []


def test_channel_options_override_the_defaults() -> None:
    from app.core.settings import Settings

    policy = ChannelPolicy.build(Settings(_env_file=None), {"idle_timeout": 2, "cooldown_failures": 9})  # type: ignore[call-arg]
    assert policy.idle_timeout == 2.0 and policy.cooldown_failures == 9
    assert policy.first_byte_timeout == DEFAULT_POLICY.first_byte_timeout
    assert policy.http_timeout.connect == 5.0 and policy.http_timeout.sock_read == 61.0
