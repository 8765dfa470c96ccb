"""Which upstream serves a request, what happens when it fails, and how a failure reads to the client.

A model's routes come in priority tiers (app.channels.catalog): the highest tier first, a weighted
random order inside a tier, the next tier once a whole tier failed. A `Plan` walks that order for one
request: it skips channels cooling down (read from this process's copy of the cooldown board, no
Redis), lets one trial request through a half-open channel, waits a short jittered backoff between
attempts, tries each channel at most once and at most `upstream_max_attempts` in all, writes one
attempts-log entry per channel, and reports failures to the cooldown board (in the background).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from app.channels.catalog import Catalog, Route, Tier
from app.channels.cooldowns import CooldownBoard
from app.core.errors import GatewayError, Overloaded, UpstreamFailed
from app.core.upstream_errors import ProviderError, UpstreamRateLimited, UpstreamRejected

if TYPE_CHECKING:
    from app.channels.catalog import CatalogCache
    from app.core.settings import Settings


class RoutingResources(Protocol):
    """What routing reads from the process's resources (app/api/resources.py passes them in)."""

    settings: Settings
    catalog: CatalogCache
    cooldowns: CooldownBoard


# Upstream 4xx statuses that describe the client's own request and are passed through as they are.
PASS_THROUGH = frozenset({400, 404, 409, 413, 415, 422})
# 4xx statuses about the channel itself (its key, its account): another channel may well succeed.
CHANNEL_FAULTS = frozenset({401, 402, 403})
BACKOFF_CAP = 2.0
T = TypeVar("T")
GiveUp = Callable[[Route | None, GatewayError, str], GatewayError]
"""Records the failed job and returns the error to raise: (channel tried last, error, detail)."""
OVERLOADED = "The model is currently experiencing high traffic. Try again in a few seconds."


def resolve(catalog: Catalog, model: str) -> tuple[Tier, ...]:
    tiers = catalog.tiers.get(model)
    if not tiers:
        raise catalog.unknown(model)
    return tiers


def pick(catalog: Catalog, model: str) -> Route:
    """One route for work that stays on its channel (a media job): the highest tier, by weight."""
    return next(candidates(resolve(catalog, model)))


def candidates(tiers: tuple[Tier, ...], rand: Callable[[], float] = random.random) -> Iterator[Route]:
    """Every route once: tier by tier, each tier in a weighted random order (sampling without replacement)."""
    for tier in tiers:
        if len(tier) == 1:
            yield tier[0]
            continue
        pool = list(tier)
        weights = [route.weight for route in pool]
        total = sum(weights)
        while pool:
            x = rand() * total
            i, last = 0, len(pool) - 1
            while i < last:
                x -= weights[i]
                if x < 0:
                    break
                i += 1
            total -= weights.pop(i)
            yield pool.pop(i)


def backoff(attempt: int, base: float, rand: Callable[[], float] = random.random) -> float:
    """Before attempt n+1: base·2ⁿ⁻¹ (at most 2 s), scaled by U(0.75, 1) so retries do not march in step."""
    delay: float = min(base * 2 ** (attempt - 1), BACKOFF_CAP)
    return delay * (1 - 0.25 * rand())


class UpstreamClientError(GatewayError):
    """The upstream refused the request itself (a 4xx): its status and error object go to the client."""

    type = "invalid_request_error"


def to_gateway_error(exc: ProviderError, route: Route) -> GatewayError:
    if isinstance(exc, UpstreamRateLimited):
        return overloaded(exc.retry_after or 1)
    if isinstance(exc, UpstreamRejected) and exc.status in PASS_THROUGH:
        err = exc.error or {}
        # Upstreams leave `code` null (Anthropic) or make it a number (Gemini): ours is never null.
        code, param = err.get("code"), err.get("param")
        out = UpstreamClientError(
            str(err.get("message") or exc.message),
            param=param if isinstance(param, str) else None,
            code=str(code) if code not in (None, "") else "upstream_rejected",
        )
        out.status_code = exc.status or 400
        if isinstance(err.get("type"), str):
            out.type = err["type"]
        return out
    if isinstance(exc, UpstreamRejected):
        return UpstreamFailed(f"Upstream channel '{route.channel_name}' refused the request ({exc.status}).")
    return UpstreamFailed(f"Upstream provider is temporarily unavailable: {exc.message}")


def overloaded(retry_after: float) -> Overloaded:
    retry = max(1, math.ceil(retry_after))
    return Overloaded(OVERLOADED, headers={"retry-after": str(retry), "retry-after-ms": str(retry * 1000)})


def retryable(exc: ProviderError) -> bool:
    return not isinstance(exc, UpstreamRejected) or exc.status in CHANNEL_FAULTS


def attempt_entry(route: Route, outcome: str, *, status: int | None, error: str | None, ms: int) -> dict[str, Any]:
    return {
        "channel": route.channel_name,
        "channel_id": route.channel_id,
        "outcome": outcome,
        "status": status,
        "error": error,
        "latency_ms": ms,
    }


class Plan:
    __slots__ = (
        "_attempts",
        "_base",
        "_board",
        "_candidates",
        "_failures",
        "_max",
        "_retry_hint",
        "_started",
        "_trial",
        "last",
        "log",
    )

    def __init__(
        self,
        catalog: Catalog,
        board: CooldownBoard,
        model: str,
        log: list[dict[str, Any]],
        *,
        attempts: int,
        base: float,
    ) -> None:
        self._candidates = candidates(resolve(catalog, model))
        self._board = board
        self._max = attempts
        self._base = base
        self._attempts = 0
        self._failures: list[ProviderError] = []
        self._retry_hint: float | None = None
        self._trial = False
        self._started = 0.0
        self.log = log
        """The job's attempts log: one entry per channel tried or skipped."""
        self.last: Route | None = None
        """The channel tried last (the job row's channel)."""

    async def next(self) -> Route | None:
        """The next channel to try, or None when the request has run out of channels or attempts."""
        if self._attempts >= self._max:
            return None
        entries = self._board.entries
        for route in self._candidates:
            trial = False
            cooldown = entries.get(route.channel_id) if entries else None
            if cooldown is not None:
                remaining = cooldown.until - time.monotonic()
                if remaining > 0:
                    self._skip(route, f"cooling down: {cooldown.reason}", remaining)
                    continue
                if not await self._board.claim_trial(route.channel_id, route.policy):
                    self._skip(route, "half-open: another request is trying it", 1.0)
                    continue
                trial = True
            if self._attempts:
                await asyncio.sleep(backoff(self._attempts, self._base))
            self._attempts += 1
            self._trial = trial
            self.last = route
            self._started = time.perf_counter()
            return route
        return None

    def _skip(self, route: Route, why: str, retry_after: float) -> None:
        self.log.append(attempt_entry(route, "skipped", status=None, error=why, ms=0))
        self._hint(retry_after)

    def _hint(self, retry_after: float) -> None:
        if self._retry_hint is None or retry_after < self._retry_hint:
            self._retry_hint = retry_after

    def _ms(self) -> int:
        return round((time.perf_counter() - self._started) * 1000)

    def succeeded(self, route: Route) -> None:
        entry = attempt_entry(route, "ok", status=200, error=None, ms=self._ms())
        if self._trial:
            entry["trial"] = True
            self._board.report_recovery(route.channel_id)
        self.log.append(entry)

    def abandon(self, route: Route) -> None:
        """The attempt ended without a verdict (cancelled, or a bug): free a trial claim at once."""
        if self._trial:
            self._trial = False
            self._board.release_trial(route.channel_id)

    def failed(self, route: Route, exc: ProviderError) -> GatewayError | None:
        """Log the attempt; None to go on with the next channel, or the error to answer with now."""
        entry = attempt_entry(route, exc.outcome, status=exc.status, error=exc.message[:500], ms=self._ms())
        if self._trial:
            entry["trial"] = True
        self.log.append(entry)
        if not retryable(exc):
            if self._trial:
                self._board.report_recovery(route.channel_id)  # it answered: the channel itself is fine
            return to_gateway_error(exc, route)
        self._failures.append(exc)
        if isinstance(exc, UpstreamRateLimited):
            self._hint(exc.retry_after or route.policy.cooldown_seconds)
        report_failure(self._board, route, exc)
        return None

    def exhausted(self) -> GatewayError:
        """Every channel failed (500), or none could be used for now: cooling down or rate limited (503)."""
        if any(not isinstance(exc, UpstreamRateLimited) for exc in self._failures):
            tried = len(self._failures)
            also = f" ({tried} channels tried)" if tried > 1 else ""
            return UpstreamFailed(f"Upstream provider is temporarily unavailable: {self._failures[-1].message}{also}")
        return overloaded(self._retry_hint or 1)

    async def run(self, attempt: Callable[[Route], Awaitable[T]], give_up: GiveUp) -> tuple[Route, T]:
        """Try the channels in turn until one answers: `attempt(route)` raises ProviderError to move on
        (or to answer with the error now); `give_up` records the failed job when nothing is left."""
        while (route := await self.next()) is not None:
            try:
                result = await attempt(route)
            except ProviderError as exc:
                if (error := self.failed(route, exc)) is None:
                    continue
                raise give_up(route, error, exc.message) from exc
            except BaseException:
                self.abandon(route)
                raise
            self.succeeded(route)
            return route, result
        error = self.exhausted()
        raise give_up(self.last, error, error.message)


def report_failure(board: CooldownBoard, route: Route, exc: ProviderError) -> None:
    board.report_failure(route.channel_id, route.policy, exc.message, exc.status, exc.retry_after)


def new_plan(res: RoutingResources, model: str, log: list[dict[str, Any]]) -> Plan:
    settings = res.settings
    return Plan(
        res.catalog.current,
        res.cooldowns,
        model,
        log,
        attempts=settings.upstream_max_attempts,
        base=settings.upstream_retry_backoff,
    )
