"""The admission script against the real Redis: exact limits, reservations, leases, holds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import DataError

from app.accounts.auth import Principal
from app.accounts.limits import Limits
from app.api.resources import create_pipelined_redis, create_redis
from app.billing.limits.service import Gate, LimiterUnavailable
from app.core.errors import AuthenticationFailed, InsufficientQuota, PermissionDenied, RateLimited
from app.core.settings import Settings
from tests.support import free_port


@pytest.fixture(params=["pipelined", "redis-py"])
async def gate(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Gate]:
    """The Gate as the web app makes it (admission over the pipelining client) and as the worker and the
    CLI do (everything over redis-py): the same answers either way."""
    redis = create_redis(settings)
    pipelined = create_pipelined_redis(settings) if request.param == "pipelined" else None
    assert pipelined is not None or request.param == "redis-py"
    yield Gate(redis, settings, pipelined)
    await redis.aclose()
    if pipelined is not None:
        await pipelined.aclose()


def principal(**limits: int) -> Principal:
    values = {"rpm": 100, "rph": 1000, "tpm": 100_000, "max_streams": 10, **limits}
    return Principal(
        f"key_{uuid.uuid4().hex[:10]}", f"acct_{uuid.uuid4().hex[:10]}", "active", "default", Limits(**values)
    )


_CONCURRENCY = asyncio.Semaphore(25)


async def bounded(call: Any) -> Any:
    """Concurrent, but over at most 25 connections: opening 150 at once can outlast the connect timeout
    on a loaded machine, and exactness does not need more sockets, only overlapping scripts."""
    async with _CONCURRENCY:
        return await call


def duration_ms(text: str) -> float:
    """A Go duration of minutes and seconds, as the rate headers carry them ("1m0.825s", "51s")."""
    minutes, _, seconds = text.rpartition("m")
    return (int(minutes or 0) * 60 + float(seconds.removesuffix("s"))) * 1000


def job() -> str:
    return f"job_{uuid.uuid4().hex}"


async def test_rpm_admits_exactly_the_limit(gate: Gate) -> None:
    who = principal(rpm=100)
    results = await asyncio.gather(*(bounded(gate.admit(who, job())) for _ in range(150)), return_exceptions=True)
    admitted = [r for r in results if not isinstance(r, Exception)]
    limited = [r for r in results if isinstance(r, RateLimited)]
    assert (len(admitted), len(limited)) == (100, 50), {type(r) for r in results}
    err = limited[0]
    assert err.code == "requests_per_minute"
    assert 1 <= int(err.headers["retry-after"]) <= 61
    assert 0 < int(err.headers["retry-after-ms"]) <= 61_000
    assert err.headers["x-ratelimit-remaining-requests"] == "0"
    headers = dict(admitted[-1].headers)
    assert headers[b"x-ratelimit-limit-requests"] == b"100"


async def test_rph_counts_across_minutes_and_zero_switches_off(gate: Gate) -> None:
    who = principal(rpm=0, rph=3)
    for _ in range(3):
        await gate.admit(who, job())
    with pytest.raises(RateLimited) as caught:
        await gate.admit(who, job())
    assert caught.value.code == "requests_per_hour"
    unlimited = principal(rpm=0, rph=0, tpm=0, max_streams=0)
    for _ in range(200):
        admission = await gate.admit(unlimited, job(), tokens=10**9)
    assert admission.headers == []


async def test_tpm_reserves_then_reconciles_with_real_usage(gate: Gate) -> None:
    who = principal(rpm=0, tpm=100_000)
    results = await asyncio.gather(*(gate.admit(who, job(), tokens=5000) for _ in range(30)), return_exceptions=True)
    admitted = [r for r in results if not isinstance(r, Exception)]
    assert len(admitted) == 20
    assert all(isinstance(r, RateLimited) and r.code == "tokens_per_minute" for r in results if r not in admitted)
    # each finished with 18 real tokens: the remaining budget reflects the real usage
    await gate.settle_many([(a, 18, 0, "apply") for a in admitted])
    headers = dict(await gate.admit_read(who))
    assert headers[b"x-ratelimit-remaining-tokens"] == str(100_000 - 20 * 18).encode()


async def test_tpm_reservation_is_capped_at_the_limit(gate: Gate) -> None:
    who = principal(rpm=0, tpm=1000)
    admission = await gate.admit(who, job(), tokens=50_000)
    assert admission.tokens_reserved == 1000


async def test_stream_leases_limit_concurrency_and_free_on_release(gate: Gate) -> None:
    who = principal(rpm=0, max_streams=10)
    results = await asyncio.gather(*(gate.admit(who, job(), lease=True) for _ in range(12)), return_exceptions=True)
    admitted = [r for r in results if not isinstance(r, Exception)]
    assert len(admitted) == 10
    refused = next(r for r in results if isinstance(r, RateLimited))
    assert refused.code == "concurrent_streams"
    assert refused.headers["retry-after"] == "1"
    await gate.release_lease(admitted[0])
    await gate.admit(who, job(), lease=True)


async def test_leases_of_a_dead_process_lapse_after_the_ttl(settings: Settings) -> None:
    short = settings.model_copy(update={"stream_lease_ttl_seconds": 1})
    redis = create_redis(settings)
    try:
        gate = Gate(redis, short)
        who = principal(rpm=0, max_streams=1)
        await gate.admit(who, job(), lease=True)  # never released, never refreshed: its process "died"
        with pytest.raises(RateLimited):
            await gate.admit(who, job(), lease=True)
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            try:
                await gate.admit(who, job(), lease=True)
                break
            except RateLimited:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
    finally:
        await redis.aclose()


async def test_hold_needs_a_mirror_and_enough_balance(gate: Gate) -> None:
    who = principal()
    loads: list[str] = []

    async def load(account_id: str) -> int:
        loads.append(account_id)
        return 1000

    first = await gate.admit(who, job(), hold=600, load_balance=load)
    assert loads == [who.account_id] and first.hold == 600
    with pytest.raises(InsufficientQuota) as caught:
        await gate.admit(who, job(), hold=600, load_balance=load)
    assert "$0.000400 available" in caught.value.message
    # the refusal reads the booked balance once, to say how much requests in flight hold
    assert "Its balance is $0.001000, of which $0.000600 is held" in caught.value.message
    # settling gives back what was not spent
    await gate.settle_many([(first, 10, 250, "apply")])
    await gate.admit(who, job(), hold=750, load_balance=load)
    assert len(loads) == 2


async def test_a_missing_mirror_is_read_once_however_many_requests_find_it(
    gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a Redis restart, the in-flight requests of an account share one balance read; the one that
    started it may go away (client disconnect) without failing the others."""
    who = principal()
    loads: list[str] = []
    release, all_checked = asyncio.Event(), asyncio.Event()
    checked = 0
    run = gate._run

    async def counted_run(*args: Any, **kwargs: Any) -> Any:
        nonlocal checked
        result = await run(*args, **kwargs)
        checked += 1  # the caller goes on to the balance read in this same step
        if checked == 21:
            all_checked.set()
        return result

    monkeypatch.setattr(gate, "_run", counted_run)

    async def slow_load(account_id: str) -> int:
        loads.append(account_id)
        await release.wait()
        return 1000

    first = asyncio.ensure_future(gate.admit(who, job(), hold=10, load_balance=slow_load))
    others = [
        asyncio.ensure_future(bounded(gate.admit(who, job(), hold=10, load_balance=slow_load))) for _ in range(20)
    ]
    # Every request has found the mirror missing and is waiting for a balance.
    await asyncio.wait_for(all_checked.wait(), timeout=10)
    first.cancel()
    release.set()
    admitted = await asyncio.gather(*others)
    assert loads == [who.account_id]
    assert [a.hold for a in admitted] == [10] * 20
    assert first.cancelled()


async def test_a_window_spread_over_the_minute_frees_its_oldest_seconds_first(gate: Gate) -> None:
    """Counts laid out in seconds of the last minute (by Redis's clock, the script's): a refusal waits
    for just enough of the oldest seconds to leave the window, a second older than the window counts
    nothing and is dropped, and the reset is when the newest second leaves."""
    who = principal(rpm=6)
    key = gate.key("rl", who.key_id, "rpm")
    seconds, _ = await gate._redis.time()
    # Laid out newest first, so an answer that relied on the hash's order would be wrong.
    await gate._redis.hset(key, mapping={seconds - 10: 4, seconds - 30: 2, seconds - 50: 3, seconds - 70: 5})
    with pytest.raises(RateLimited) as caught:
        await gate.admit(who, job())
    # 9 in the window: the second 50 s ago leaving frees 3 (7 > 6 still), the one 30 s ago 2 more (newest
    # first would wrongly free the 4 of 10 s ago, at ~51 s).
    assert 29_000 < int(caught.value.headers["retry-after-ms"]) <= 31_000
    assert caught.value.headers["x-ratelimit-remaining-requests"] == "0"
    reset = caught.value.headers["x-ratelimit-reset-requests"]  # the second 10 s ago leaving: ~51 s
    assert 49_000 < duration_ms(reset) <= 51_000, reset
    assert not await gate._redis.hexists(key, str(seconds - 70))

    # A second key: 4 in the window, and a cached sum left from an earlier second, which must not count.
    other = principal(rpm=6)
    key = gate.key("rl", other.key_id, "rpm")
    await gate._redis.hset(key, mapping={seconds - 10: 4, -2: seconds - 1, -1: 99, -3: seconds - 1})
    headers = dict((await gate.admit(other, job())).headers)
    assert headers[b"x-ratelimit-remaining-requests"] == b"1"
    reset = headers[b"x-ratelimit-reset-requests"].decode()  # now the current second leaving
    assert 59_000 < duration_ms(reset) <= 61_000, reset


async def test_the_window_sums_stay_exact_within_a_second(gate: Gate) -> None:
    """Admissions and settlements in quick succession (most within one second, where the windows'
    cached sums serve): every count, reservation and reconciliation shows in the remaining figures."""
    who = principal(rpm=50, tpm=100_000)
    admitted = [await gate.admit(who, job(), tokens=1000) for _ in range(10)]
    await gate.settle_many([(adm, 300, 0, "apply") for adm in admitted[:4]])  # 700 back, each
    await gate.settle_many([(admitted[4], 1600, 0, "apply")])  # an overrun of 600
    headers = dict(await gate.admit_read(who))
    assert headers[b"x-ratelimit-remaining-requests"] == b"40"
    assert headers[b"x-ratelimit-remaining-tokens"] == str(100_000 - 10_000 + 4 * 700 - 600).encode()
    more = await gate.admit(who, job(), tokens=500)
    assert dict(more.headers)[b"x-ratelimit-remaining-tokens"] == str(100_000 - 10_000 + 4 * 700 - 600 - 500).encode()


async def test_refused_checks_count_nothing(gate: Gate) -> None:
    who = principal(rpm=2)

    async def broke(_: str) -> int:
        return 0

    with pytest.raises(InsufficientQuota):
        await gate.admit(who, job(), hold=5, load_balance=broke)
    await gate.admit(who, job())
    await gate.admit(who, job())  # the refused request took no slot


async def test_denied_keys_and_accounts(gate: Gate) -> None:
    who = principal()
    await gate.deny("key", who.key_id, True)
    with pytest.raises(AuthenticationFailed):
        await gate.admit(who, job())
    await gate.deny("key", who.key_id, False)
    await gate.deny("acct", who.account_id, True)
    with pytest.raises(PermissionDenied):
        await gate.admit_read(who)


async def test_unreachable_redis_is_a_quick_503(settings: Settings) -> None:
    dead = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    redis = Redis.from_url(dead.redis_url, socket_connect_timeout=1)
    try:
        with pytest.raises(LimiterUnavailable) as caught:
            await asyncio.wait_for(Gate(redis, dead).admit(principal(), job()), timeout=5)
        assert caught.value.status_code == 503
        opened = Gate(redis, dead.model_copy(update={"limits_fail_open": True}))
        assert (await opened.admit(principal(), job())).enforced is False
        with pytest.raises(LimiterUnavailable):
            await opened.admit(principal(), job(), hold=10)
    finally:
        await redis.aclose()


async def test_scripts_missing_from_redis_are_loaded_and_run(gate: Gate) -> None:
    """After a Redis restart its script cache is empty (NOSCRIPT): admission and the settle pipeline
    load their script and run the call, once. Simulated with unknown SHA1s, so the shared Redis's
    script cache is left alone."""
    who = principal(rpm=0, tpm=100_000)
    real_admit, real_settle = gate._admit.sha, gate._settle.sha
    gate._admit.sha = "0" * 40
    first = await gate.admit(who, job(), tokens=5000)
    assert gate._admit.sha == real_admit
    second = await gate.admit(who, job(), tokens=5000)
    gate._settle.sha = "0" * 40
    await gate.settle_many([(first, 18, 0, "apply"), (second, 20, 0, "apply")])
    assert gate._settle.sha == real_settle
    headers = dict(await gate.admit_read(who))
    assert headers[b"x-ratelimit-remaining-tokens"] == str(100_000 - 38).encode()


def test_commands_are_packed_by_hiredis_byte_for_byte_as_redis_py_would(settings: Settings) -> None:
    from redis.asyncio.connection import Connection

    redis = create_redis(settings)
    fast = redis.connection_pool.make_connection()
    plain = Connection()
    assert type(fast).pack_command is not Connection.pack_command
    for command in [
        ("EVALSHA", "ab" * 20, 2, "k:é", b"\x00raw", 7, -3, 1.5, "x" * 7000),
        ("SCRIPT EXISTS", "a"),
        ("SET", bytearray(b"k"), memoryview(b"v")),
    ]:
        assert b"".join(fast.pack_command(*command)) == b"".join(plain.pack_command(*command))
    for unsupported in (None, object()):
        with pytest.raises(DataError):
            fast.pack_command("SET", "k", unsupported)
        with pytest.raises(DataError):
            plain.pack_command("SET", "k", unsupported)
