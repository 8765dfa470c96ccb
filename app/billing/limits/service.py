"""Admission control: one Redis round trip before the upstream call does the key check, the rate
limits (RPM, RPH, TPM, concurrent streams) and the billing hold, all or nothing (lua/admit.lua).

After the answer, settlements are batched: the recorder commits the job rows and captures, then one
pipelined round trip settles the whole batch (lua/settle.lua). Stream leases are the exception: a
finished or disconnected stream frees its slot at once, and live leases are refreshed in the
background so a crashed process's leases lapse within the lease TTL.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript as Script
from redis.exceptions import NoScriptError, RedisError

from app.billing.limits.headers import rate_headers
from app.billing.limits.pipelined import PipelinedRedis
from app.billing.limits.protocol import (
    ACCOUNT_DENIED,
    INSUFFICIENT,
    KEY_DENIED,
    LIMITED,
    NO_MIRROR,
    AdmitArgs,
    AdmitKeys,
    AdmitResult,
    SettleArgs,
    SettleKeys,
)
from app.core.errors import AuthenticationFailed, GatewayError, InsufficientQuota, PermissionDenied, RateLimited
from app.core.money import format_usd
from app.core.settings import Settings
from app.core.singleflight import SingleFlight
from app.core.tasks import Loop

if TYPE_CHECKING:
    from app.accounts.auth import Principal

log = logging.getLogger("heytoken.limits")
BOOKED_TTL_SECONDS = 1.0

_HOLD = AdmitKeys._fields.index("hold")
_SETTLE_KEYS = len(SettleKeys._fields)


def load_script(name: str) -> str:
    return importlib_resources.files("app.billing.limits").joinpath("lua", name).read_text()


class LimiterUnavailable(GatewayError):
    status_code = 503
    type = "server_error"
    code = "rate_limiter_unavailable"


@dataclass(slots=True)
class Admission:
    """What admission granted a request; settled exactly once after the answer."""

    job_id: str
    key_id: str
    account_id: str
    hold: int = 0
    tokens_reserved: int = 0
    tpm_bucket: int = 0
    lease: bool = False
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    enforced: bool = True
    """False when Redis was unreachable and limits failed open (nothing to settle)."""


class Gate:
    KEY_CACHE_SIZE = 10_000

    def __init__(self, redis: Redis, settings: Settings, pipelined: PipelinedRedis | None = None) -> None:
        """`pipelined` carries admission and settlement (the hot path); the rest goes through `redis`."""
        self._redis = redis
        self._pipelined = pipelined
        self._execute: Callable[..., Awaitable[Any]] = (
            pipelined.execute if pipelined is not None else redis.execute_command
        )
        self._settings = settings
        self._p = settings.redis_prefix
        self._admit = redis.register_script(load_script("admit.lua"))
        self._settle = redis.register_script(load_script("settle.lua"))
        self._credit = redis.register_script(load_script("credit.lua"))
        self._resync = redis.register_script(load_script("resync.lua"))
        self._expire = redis.register_script(load_script("expire.lua"))
        self._holds_key = self.key("holds")
        self._key_cache: dict[tuple[str, str], AdmitKeys] = {}
        self._leases: dict[str, str] = {}
        """Live stream leases of this process: job id → key id (refreshed in the background)."""
        self._seeding: SingleFlight[str, None] = SingleFlight()
        """Mirror loads in flight, by account: the one database read its requests wait on."""
        # A stream's lease lives a TTL; every third of it, this process extends its live streams'.
        self._loop = Loop("lease-refresh", self._refresh_leases, settings.stream_lease_ttl_seconds / 3)
        self._last_outage_log = 0.0
        self._booked: dict[str, tuple[float, int]] = {}
        """Booked balances read for 402 messages, by account: (monotonic time read, balance)."""

    # -- keys -------------------------------------------------------------------------------------
    def key(self, *parts: str) -> str:
        return self._p + ":".join(parts)

    def balance_key(self, account_id: str) -> str:
        return self.key("bal", account_id)

    # -- admission --------------------------------------------------------------------------------
    async def admit(
        self,
        principal: Principal,
        job_id: str,
        *,
        tokens: int = 0,
        lease: bool = False,
        hold: int = 0,
        hold_ttl_ms: int | None = None,
        load_balance: Callable[[str], Awaitable[int]] | None = None,
    ) -> Admission:
        """Admit a work request or raise 401/402/403/429/503. `load_balance(account_id)` returns the
        database balance when the Redis mirror is missing (first request after a Redis start)."""
        limits = principal.limits
        tokens = min(tokens, limits.tpm) if limits.tpm else tokens
        args = AdmitArgs(
            job=job_id,
            mode="work",
            rpm=limits.rpm,
            rph=limits.rph,
            tpm=limits.tpm,
            tokens=tokens,
            lease=int(lease),
            max_streams=limits.max_streams,
            hold=hold,
            hold_ttl=hold_ttl_ms or self._settings.chat_hold_ttl_seconds * 1000,
            lease_ttl=self._settings.stream_lease_ttl_seconds * 1000,
            account=principal.account_id,
            reads=self._settings.default_reads_per_minute,
        )
        result = await self._run(principal, job_id, args, free=hold == 0)
        if result is None:
            return Admission(job_id, principal.key_id, principal.account_id, enforced=False)
        if result.status == NO_MIRROR and load_balance is not None:
            await self._seed_mirror(principal.account_id, load_balance)
            result = await self._run(principal, job_id, args, free=hold == 0)
            if result is None:
                return Admission(job_id, principal.key_id, principal.account_id, enforced=False)
        booked = None
        if result.status == INSUFFICIENT and load_balance is not None:
            booked = await self._booked_balance(principal.account_id, load_balance)
        headers = self._check(result, principal, hold, booked)
        admission = Admission(
            job_id,
            principal.key_id,
            principal.account_id,
            hold=hold,
            tokens_reserved=tokens,
            tpm_bucket=int(result.tpm_bucket),
            lease=lease and limits.max_streams > 0,
            headers=headers,
        )
        if admission.lease:
            self._leases[job_id] = principal.key_id
        return admission

    async def admit_read(self, principal: Principal) -> list[tuple[bytes, bytes]]:
        """Reads (listing, polling) count against their own, more generous per-minute limit."""
        limits = principal.limits
        args = AdmitArgs(
            job="",
            mode="read",
            rpm=limits.rpm,
            rph=limits.rph,
            tpm=limits.tpm,
            tokens=0,
            lease=0,
            max_streams=0,
            hold=0,
            hold_ttl=0,
            lease_ttl=0,
            account=principal.account_id,
            reads=self._settings.default_reads_per_minute,
        )
        result = await self._run(principal, "", args, free=True)
        return [] if result is None else self._check(result, principal, 0)

    def _admit_keys(self, key_id: str, account_id: str) -> AdmitKeys:
        """The admission's keys, built once per (key, account) and kept (every request of a key would
        otherwise join the same strings again); the request's own hold key is put in by `_run`."""
        keys = self._key_cache.get((key_id, account_id))
        if keys is None:
            if len(self._key_cache) >= self.KEY_CACHE_SIZE:
                self._key_cache.clear()
            p = self._p
            keys = self._key_cache[(key_id, account_id)] = AdmitKeys(
                deny_key=f"{p}deny:key:{key_id}",
                deny_account=f"{p}deny:acct:{account_id}",
                rpm=f"{p}rl:{key_id}:rpm",
                rph=f"{p}rl:{key_id}:rph",
                tpm=f"{p}rl:{key_id}:tpm",
                streams=f"{p}rl:{key_id}:streams",
                balance=f"{p}bal:{account_id}",
                hold="",
                holds=self._holds_key,
                inflight=f"{p}inflight:{account_id}",
                reads=f"{p}rl:{key_id}:reads",
            )
        return keys

    async def _evalsha(self, script: Script, *keys_and_args: Any, numkeys: int) -> Any:
        """EVALSHA straight through the client (redis-py's Script object rebuilds its argument tuples on
        every call); after a Redis restart the script cache is empty: load it once and run again."""
        try:
            return await self._execute("EVALSHA", script.sha, numkeys, *keys_and_args)
        except NoScriptError:
            script.sha = await self._redis.script_load(script.script)
            return await self._execute("EVALSHA", script.sha, numkeys, *keys_and_args)

    async def _run(self, principal: Principal, job_id: str, args: AdmitArgs, *, free: bool) -> AdmitResult | None:
        keys = self._admit_keys(principal.key_id, principal.account_id)
        try:
            result = await self._evalsha(
                self._admit,
                *keys[:_HOLD],
                f"{self._p}hold:{job_id}",
                *keys[_HOLD + 1 :],
                *args,
                numkeys=len(keys),
            )
            return AdmitResult(*result)
        except (RedisError, OSError) as exc:
            self._log_outage(exc)
            # Failing open is an operator's choice for rate limits only: money is never spent unchecked.
            if self._settings.limits_fail_open and free:
                return None
            raise LimiterUnavailable(
                "The gateway cannot check rate limits and balances right now; try again shortly.",
                headers={"retry-after": "1"},
            ) from exc

    def _log_outage(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_outage_log > 5:
            self._last_outage_log = now
            log.error("limits.redis_unreachable fail_open=%s error=%r", self._settings.limits_fail_open, exc)

    async def _booked_balance(self, account_id: str, load_balance: Callable[[str], Awaitable[int]]) -> int | None:
        """The account's booked balance, read for a 402's message only (the refused path): the Redis
        mirror says what is available, the database what the balance is before in-flight holds. Kept
        for a second, so a client retrying in a loop costs the database one read a second at most."""
        now = time.monotonic()
        cached = self._booked.get(account_id)
        if cached is not None and now - cached[0] < BOOKED_TTL_SECONDS:
            return cached[1]
        try:
            booked = await load_balance(account_id)
        except Exception:
            return None  # the 402 goes out without the breakdown rather than as a 503
        if len(self._booked) >= self.KEY_CACHE_SIZE:
            self._booked.clear()
        self._booked[account_id] = (now, booked)
        return booked

    def _check(
        self, result: AdmitResult, principal: Principal, hold: int, booked: int | None = None
    ) -> list[tuple[bytes, bytes]]:
        status = int(result.status)
        detail = result.detail.decode() if isinstance(result.detail, bytes) else str(result.detail)
        if status == KEY_DENIED:
            raise AuthenticationFailed("Incorrect API key provided.")
        if status == ACCOUNT_DENIED:
            raise PermissionDenied("This account is suspended.", code="account_suspended")
        headers = rate_headers(
            int(result.rpm_limit),
            int(result.rpm_remaining),
            int(result.rpm_reset_ms),
            int(result.tpm_limit),
            int(result.tpm_remaining),
            int(result.tpm_reset_ms),
        )
        if status == LIMITED:
            wait_ms = max(1, int(result.retry_after_ms))
            raise RateLimited(
                _LIMIT_MESSAGES.get(detail, "Rate limit reached.") + f" Retry in {math.ceil(wait_ms / 1000)}s.",
                code=detail,
                headers={
                    "retry-after": str(math.ceil(wait_ms / 1000)),
                    "retry-after-ms": str(wait_ms),
                    **{k.decode(): v.decode() for k, v in headers},
                },
            )
        if status in (INSUFFICIENT, NO_MIRROR):
            available = int(result.balance)
            exc = InsufficientQuota(
                _shortfall_message(hold, available, booked),
                headers={k.decode(): v.decode() for k, v in headers},
            )
            exc.available = available
            raise exc
        return headers

    # -- settlement -------------------------------------------------------------------------------
    def _settle_call(self, adm: Admission, used_tokens: int, cost: int, mode: str) -> tuple[Any, ...]:
        p, k, a = self._p, adm.key_id, adm.account_id
        keys = SettleKeys(
            tpm=f"{p}rl:{k}:tpm",
            streams=f"{p}rl:{k}:streams",
            hold=f"{p}hold:{adm.job_id}",
            holds=self._holds_key,
            balance=f"{p}bal:{a}",
            inflight=f"{p}inflight:{a}",
            seq=f"{p}seq:{a}",
        )
        args = SettleArgs(
            job=adm.job_id, bucket=adm.tpm_bucket, reserved=adm.tokens_reserved, used=used_tokens, cost=cost, mode=mode
        )
        return (*keys, *args)

    async def settle_many(self, items: list[tuple[Admission, int, int, str]]) -> None:
        """Settle (admission, tokens used, cost, "apply" | "durable") for a batch, in one round trip.

        EVALSHA goes into the pipeline as a plain command: redis-py's Script objects in a pipeline make
        it ask SCRIPT EXISTS first, a second round trip per batch. A NOSCRIPT reply (Redis restarted)
        means that call did not run: the script is loaded and only those calls are sent again."""
        calls = [self._settle_call(*item) for item in items if item[0].enforced]
        if not calls:
            return
        try:
            results = await self._settle_pipeline(calls)
            failed = [call for call, result in zip(calls, results, strict=True) if isinstance(result, NoScriptError)]
            if failed:
                self._settle.sha = await self._redis.script_load(self._settle.script)
                results = await self._settle_pipeline(failed)
            for result in results:
                if isinstance(result, Exception):
                    raise result
        except (RedisError, OSError) as exc:
            # Holds left behind expire (reconciler) and the mirror is resynced from the ledger.
            self._log_outage(exc)

    async def _settle_pipeline(self, calls: list[tuple[Any, ...]]) -> list[Any]:
        sha = self._settle.sha
        if self._pipelined is not None:
            return await self._pipelined.execute_many([("EVALSHA", sha, _SETTLE_KEYS, *call) for call in calls])
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.execute_command("EVALSHA", sha, _SETTLE_KEYS, *call)
            results: list[Any] = await pipe.execute(raise_on_error=False)
            return results

    async def release_lease(self, adm: Admission) -> None:
        """Free a stream's slot now (the rest of its settlement follows with the batch)."""
        if not adm.lease:
            return
        self._leases.pop(adm.job_id, None)
        try:
            await self._redis.zrem(self.key("rl", adm.key_id, "streams"), adm.job_id)
        except (RedisError, OSError) as exc:
            self._log_outage(exc)

    # -- money mirror -----------------------------------------------------------------------------
    async def _seed_mirror(self, account_id: str, load_balance: Callable[[str], Awaitable[int]]) -> None:
        """One database read per account however many requests find its mirror missing at once: after a
        Redis restart every in-flight request of an account would otherwise read the same balance, each
        on a database connection of its own (a pool of 15 opened for one account at 128 connections)."""

        async def seed() -> None:
            await self.load_mirror(account_id, await load_balance(account_id))

        await self._seeding.run(account_id, seed)

    async def load_mirror(self, account_id: str, balance: int) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self.balance_key(account_id), balance, nx=True)
            pipe.sadd(self.key("mirrors"), account_id)
            await pipe.execute()

    async def credit(self, account_id: str, amount: int) -> None:
        """After a committed top-up/adjustment/job settlement: move the mirror the same way."""
        try:
            await self._credit(keys=[self.balance_key(account_id), self.key("seq", account_id)], args=[amount])
        except (RedisError, OSError) as exc:
            self._log_outage(exc)

    async def deny(self, kind: str, ident: str, denied: bool) -> None:
        """Revoked keys and suspended accounts are refused by every process at once."""
        name = self.key("deny", kind, ident)
        try:
            await (self._redis.set(name, 1) if denied else self._redis.delete(name))
        except (RedisError, OSError) as exc:
            self._log_outage(exc)

    # -- background -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _refresh_leases(self) -> None:
        if not self._leases:
            return
        expiry = int(time.time() * 1000) + self._settings.stream_lease_ttl_seconds * 1000
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for job_id, key_id in list(self._leases.items()):
                    pipe.zadd(self.key("rl", key_id, "streams"), {job_id: expiry}, xx=True)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._log_outage(exc)

    @property
    def scripts(self) -> dict[str, Any]:
        return {"resync": self._resync, "expire": self._expire}


_LIMIT_MESSAGES = {
    "requests_per_minute": "Rate limit reached for requests per minute.",
    "requests_per_hour": "Rate limit reached for requests per hour.",
    "tokens_per_minute": "Rate limit reached for tokens per minute.",
    "concurrent_streams": "Too many concurrent streams for this key.",
    "reads_per_minute": "Rate limit reached for read requests per minute.",
}


def _shortfall_message(hold: int, available: int, booked: int | None) -> str:
    """A 402's message. Right after a success the previous request's hold may not be settled yet, so
    `available` is less than the balance: say how much is held, or the answer reads as a wrong balance."""
    message = (
        f"Insufficient balance: this request may cost up to {format_usd(hold)} and the account has "
        f"{format_usd(available)} available."
    )
    if booked is not None and booked > available:
        message += (
            f" Its balance is {format_usd(booked)}, of which {format_usd(booked - available)} is held by "
            "requests in flight (charged what they cost and the rest released when they finish)."
        )
    return message + " Top up your credits to continue."
