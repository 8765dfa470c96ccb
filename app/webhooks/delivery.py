"""Delivering webhook events: one attempt per message, then a delayed message for the next one.

    deliver(delivery_id)   claim (lease) → check the URL (SSRF guard) → sign → POST → record
                           2xx delivered · 410 disabled · otherwise the next attempt per the
                           schedule (Retry-After of a 429/5xx honoured, clamped), or failed

Idempotent like the job steps: a message re-reads the delivery, exits unless it is pending and due,
then claims it by a compare-and-set that pushes `next_attempt_at` a short lease ahead, renewed by a
heartbeat while the POST runs (app/core/lease.py), so of two copies of a message only one sends, and
an attempt lost with a dead worker is due again within `step_lease_seconds`. A worker dying after the receiver's 2xx but
before the commit means one more delivery of the same `webhook-id`: at least once, never lost. The
attempt never sleeps: the wait is a message sent with a delay; the reconciler re-sends messages lost
with a worker or Redis.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.db import SessionMaker, utcnow
from app.core.lease import heartbeat
from app.core.queue import ActorName, Sender, defer, transaction
from app.core.settings import Settings
from app.core.ssrf import RefusedUrl, UrlGuard
from app.webhooks import signing
from app.webhooks.models import (
    DeliveryState,
    EndpointStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("heytoken.webhooks")

USER_AGENT = "HeyToken-Webhooks/1.0"
READ_LIMIT = 64 * 1024
"""Bytes of a receiver's answer read at most (then the connection is dropped)."""
STORED_LIMIT = 4096
"""Bytes of it kept in the attempt log: enough to see an error page, not enough to bloat the table."""
JITTER = 0.1
CLOCK_SKEW = dt.timedelta(seconds=1)
RECONCILE_BATCH = 500


@dataclass(slots=True)
class WebhookDeps:
    """What a delivery needs, opened once per worker process (workers/middleware.py)."""

    settings: Settings
    sessionmaker: SessionMaker
    sender: Sender
    http: httpx.AsyncClient
    guard: UrlGuard


@dataclass(frozen=True, slots=True)
class Claim:
    delivery_id: str
    version: int
    endpoint_id: str | None
    url: str
    event_id: str
    payload: bytes
    secrets: list[str]


@dataclass(slots=True)
class Outcome:
    status: int | None = None
    error: str | None = None
    address: str | None = None
    body: bytes = b""
    retry_after: float | None = None
    latency_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def next_delay(schedule: list[float], attempts: int, retry_after: float | None) -> float | None:
    """Seconds until attempt `attempts + 1`, after `attempts` failed ones; None when the schedule is
    spent. A receiver's Retry-After is honoured within [base, 2 × base] (Svix's clamp): it may slow
    the schedule down, never speed it up or stall it."""
    if attempts < 1 or attempts > len(schedule):
        return None
    base = schedule[attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        return min(max(retry_after, base), 2 * base)
    return base


def _retry_after(response: httpx.Response) -> float | None:
    if response.status_code != 429 and response.status_code < 500:
        return None
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


async def update_delivery(session: AsyncSession, delivery_id: str, version: int, **values: object) -> bool:
    """Compare-and-set write of a delivery at `version`; False when another writer got there first."""
    result = await session.exec(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.version) == version)
        .values(**values, version=version + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)


async def _claim(deps: WebhookDeps, delivery_id: str) -> Claim | None:
    """Take the delivery for one attempt, if it is pending and due. Commits the claim."""
    settings = deps.settings
    async with transaction(deps.sessionmaker, deps.sender) as session:
        delivery = await session.get(WebhookDelivery, delivery_id, populate_existing=True)
        now = utcnow()
        if delivery is None or delivery.state != DeliveryState.PENDING:
            return None
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + CLOCK_SKEW:
            return None
        url = delivery.url
        if delivery.endpoint_id is not None:
            endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
            if endpoint is None or endpoint.deleted_at is not None or endpoint.status != EndpointStatus.ENABLED:
                reason = "its endpoint was deleted" if endpoint is None or endpoint.deleted_at else "endpoint disabled"
                await update_delivery(
                    session, delivery.id, delivery.version, state=DeliveryState.DISABLED, next_attempt_at=None,
                    last_error=reason,
                )  # fmt: skip
                return None
            url = endpoint.url
        event = await session.get(WebhookEvent, delivery.event_id)
        if event is None or url is None:
            return None
        secrets = await signing.signing_secrets(session, event.account_id, settings.resolved_secret_key())
        lease = now + dt.timedelta(seconds=settings.step_lease_seconds)
        if not await update_delivery(session, delivery.id, delivery.version, next_attempt_at=lease):
            return None
        return Claim(delivery.id, delivery.version + 1, delivery.endpoint_id, url, event.id, event.payload, secrets)


async def attempt(deps: WebhookDeps, claim: Claim) -> Outcome:
    """One POST, within `webhook_timeout_seconds` all told: check the URL and resolve it once, then
    connect to the checked address (the name goes in Host and TLS SNI). Never raises."""
    # Imported here: the web process imports this module (app.webhooks.service) but never delivers,
    # and httpx would cost every web process ~6 MB.
    import httpx

    outcome = Outcome()
    started = time.monotonic()
    try:
        async with asyncio.timeout(deps.settings.webhook_timeout_seconds):
            destination = await deps.guard.resolve(claim.url)
            outcome.address = destination.address
            timestamp = int(time.time())
            headers = {
                "host": destination.url.host_header,
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                "accept-encoding": "identity",
                "webhook-id": claim.event_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signing.signature(claim.secrets, claim.event_id, timestamp, claim.payload),
            }
            request = deps.http.build_request(
                "POST",
                destination.url.url_at(destination.address),
                content=claim.payload,
                headers=headers,
                extensions={"sni_hostname": destination.url.host},
            )
            response = await deps.http.send(request, stream=True)
            try:
                outcome.status = response.status_code
                outcome.retry_after = _retry_after(response)
                async for chunk in response.aiter_raw():
                    outcome.body += chunk
                    if len(outcome.body) >= READ_LIMIT:
                        break
            finally:
                await response.aclose()
    except RefusedUrl as exc:
        outcome.error = f"refused before connecting: {exc}"
    except TimeoutError:
        outcome.error = f"no complete answer within {deps.settings.webhook_timeout_seconds:g} s"
    except httpx.HTTPError as exc:
        # httpx-aiohttp re-raises aiohttp's error as httpx's; the original names what happened.
        cause = exc.__cause__ or exc
        outcome.error = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
    except Exception as exc:
        # Counted as a failed attempt, so even a bug cannot make a delivery retry outside its schedule.
        log.exception("webhook.attempt_crashed event=%s", claim.event_id)
        outcome.error = f"internal error ({type(exc).__name__})"
    if outcome.status is not None and 300 <= outcome.status < 400:
        outcome.error = "redirects are not followed"
    outcome.latency_ms = int((time.monotonic() - started) * 1000)
    return outcome


async def _disable_endpoint(session: AsyncSession, endpoint_id: str, reason: str) -> None:
    await session.exec(
        update(WebhookEndpoint)
        .where(col(WebhookEndpoint.id) == endpoint_id, col(WebhookEndpoint.status) == EndpointStatus.ENABLED)
        .values(status=EndpointStatus.DISABLED, disabled_reason=reason, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def _record(deps: WebhookDeps, claim: Claim, outcome: Outcome) -> str:
    """Log the attempt and move the delivery on; returns its new state."""
    async with transaction(deps.sessionmaker, deps.sender) as session:
        now = utcnow()
        error = (outcome.error or "")[:500] or None
        session.add(
            WebhookAttempt(
                delivery_id=claim.delivery_id,
                attempted_at=now,
                address=outcome.address,
                status_code=outcome.status,
                latency_ms=outcome.latency_ms,
                error=error,
                response_body=outcome.body[:STORED_LIMIT].decode("utf-8", "replace") if outcome.body else None,
            )
        )
        delivery = await session.get(WebhookDelivery, claim.delivery_id, populate_existing=True)
        if delivery is None or delivery.version != claim.version:
            # Redelivered or taken over meanwhile: the attempt is logged; the newer owner decides.
            return "superseded"
        attempts = delivery.attempts + 1

        async def move(**values: object) -> bool:
            common = {"attempts": attempts, "last_status": outcome.status, "last_error": error}
            return await update_delivery(session, claim.delivery_id, claim.version, **{**common, **values})

        if outcome.ok:
            await move(state=DeliveryState.DELIVERED, next_attempt_at=None, delivered_at=now)
            return DeliveryState.DELIVERED
        if outcome.status == 410:
            reason = f"the receiver answered 410 Gone ({now:%Y-%m-%d %H:%M:%S} UTC)"
            if delivery.endpoint_id is not None:
                await _disable_endpoint(session, delivery.endpoint_id, reason)
            await move(state=DeliveryState.DISABLED, next_attempt_at=None, last_error=reason)
            return DeliveryState.DISABLED
        delay = next_delay(deps.settings.webhook_retry_schedule, attempts, outcome.retry_after)
        if delay is None:
            await move(state=DeliveryState.FAILED, next_attempt_at=None)
            return DeliveryState.FAILED
        if await move(next_attempt_at=now + dt.timedelta(seconds=delay)):
            defer(ActorName.WEBHOOK_DELIVER, claim.delivery_id, delay_seconds=delay)
        return DeliveryState.PENDING


async def _renew(deps: WebhookDeps, claim: Claim) -> bool:
    """Push the claimed attempt's lease ahead, leaving its version (the final write's check) alone."""
    until = utcnow() + dt.timedelta(seconds=deps.settings.step_lease_seconds)
    async with deps.sessionmaker() as session:
        result = await session.exec(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id) == claim.delivery_id, col(WebhookDelivery.version) == claim.version)
            .values(next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    return bool(result.rowcount == 1)


async def deliver(deps: WebhookDeps, delivery_id: str) -> None:
    """Make one attempt at a pending, due delivery and schedule what follows. Idempotent."""
    claim = await _claim(deps, delivery_id)
    if claim is None:
        log.debug("webhook.skipped delivery=%s", delivery_id)
        return
    async with heartbeat(lambda: _renew(deps, claim), deps.settings.step_lease_seconds):
        outcome = await attempt(deps, claim)
    state = await _record(deps, claim, outcome)
    log.info(
        "webhook.attempt delivery=%s event=%s status=%s error=%s state=%s",
        delivery_id, claim.event_id, outcome.status, outcome.error, state,
    )  # fmt: skip


async def reconcile_deliveries(deps: WebhookDeps) -> int:
    """Re-send the message of every pending delivery overdue by more than the grace period (its
    message was lost with a worker or Redis). Returns how many."""
    overdue = utcnow() - dt.timedelta(seconds=deps.settings.reconcile_grace())
    async with transaction(deps.sessionmaker, deps.sender) as session:
        stmt = (
            select(WebhookDelivery.id)
            .where(col(WebhookDelivery.state) == DeliveryState.PENDING, col(WebhookDelivery.next_attempt_at) < overdue)
            .order_by(col(WebhookDelivery.next_attempt_at))
            .limit(RECONCILE_BATCH)
        )
        ids = list((await session.exec(stmt)).all())
        for delivery_id in ids:
            defer(ActorName.WEBHOOK_DELIVER, delivery_id)
    if ids:
        log.info("webhooks.reconciled resent=%d", len(ids))
    return len(ids)
