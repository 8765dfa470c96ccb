"""What the webhook API does: account endpoints, events with their deliveries and attempts, and
redelivery. Everything is scoped to the caller's account; another account's objects read as unknown.
Functions take a session and never commit; the caller's unit of work does (and sends what was
deferred after the commit).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.db import utcnow
from app.core.errors import Conflict, InvalidRequest, NotFound
from app.core.ids import new_id
from app.core.queue import ActorName, defer
from app.core.ssrf import RefusedUrl, UrlGuard
from app.webhooks.delivery import update_delivery
from app.webhooks.models import (
    DeliveryState,
    EndpointStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from app.webhooks.schemas import MAX_ENDPOINTS, EndpointBody, delivery_public, event_public


async def check_url(guard: UrlGuard, url: str | None, param: str) -> None:
    """400 `invalid_webhook_url` (naming `param`) unless the SSRF guard lets `url` be called now."""
    if url is None:
        return
    try:
        await guard.resolve(url)
    except RefusedUrl as exc:
        raise InvalidRequest(f"'{param}' cannot be used: {exc}", param=param, code="invalid_webhook_url") from None


async def create_endpoint(
    session: AsyncSession, guard: UrlGuard, account_id: str, body: EndpointBody
) -> WebhookEndpoint:
    await check_url(guard, body.url, "url")
    count = await session.exec(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(col(WebhookEndpoint.account_id) == account_id, col(WebhookEndpoint.deleted_at).is_(None))
    )
    if count.one() >= MAX_ENDPOINTS:
        raise Conflict(f"An account may have at most {MAX_ENDPOINTS} webhook endpoints.", code="too_many_endpoints")
    assert body.url is not None
    endpoint = WebhookEndpoint(
        id=new_id("whe_"), account_id=account_id, url=body.url, events=body.events, description=body.description
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get_endpoint(session: AsyncSession, account_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id, populate_existing=True)
    if endpoint is None or endpoint.account_id != account_id or endpoint.deleted_at is not None:
        raise NotFound(
            f"No webhook endpoint found with id '{endpoint_id}'.", param="id", code="webhook_endpoint_not_found"
        )
    return endpoint


async def list_endpoints(session: AsyncSession, account_id: str) -> list[WebhookEndpoint]:
    stmt = (
        select(WebhookEndpoint)
        .where(col(WebhookEndpoint.account_id) == account_id, col(WebhookEndpoint.deleted_at).is_(None))
        .order_by(col(WebhookEndpoint.id))
    )
    return list((await session.exec(stmt)).all())


async def update_endpoint(
    session: AsyncSession, guard: UrlGuard, account_id: str, endpoint_id: str, body: EndpointBody
) -> WebhookEndpoint:
    """Change the named fields. Re-enabling clears the reason it was disabled; deliveries it missed
    meanwhile are not resent on their own (redeliver them)."""
    endpoint = await get_endpoint(session, account_id, endpoint_id)
    if "url" in body.given:
        await check_url(guard, body.url, "url")
        endpoint.url = body.url or endpoint.url
    if "events" in body.given:
        endpoint.events = body.events
    if "description" in body.given:
        endpoint.description = body.description
    if body.status is not None and body.status != endpoint.status:
        endpoint.status = body.status
        endpoint.disabled_reason = None if body.status == EndpointStatus.ENABLED else "disabled by the account"
    endpoint.updated_at = utcnow()
    session.add(endpoint)
    await session.flush()
    return endpoint


async def delete_endpoint(session: AsyncSession, account_id: str, endpoint_id: str) -> None:
    """Hide the endpoint (its deliveries keep their history; pending ones stop)."""
    endpoint = await get_endpoint(session, account_id, endpoint_id)
    endpoint.deleted_at = utcnow()
    session.add(endpoint)
    await session.flush()


async def get_event(session: AsyncSession, account_id: str, event_id: str) -> WebhookEvent:
    event = await session.get(WebhookEvent, event_id)
    if event is None or event.account_id != account_id:
        raise NotFound(f"No webhook event found with id '{event_id}'.", param="id", code="webhook_event_not_found")
    return event


async def list_events(
    session: AsyncSession,
    account_id: str,
    *,
    job_id: str | None = None,
    event_type: str | None = None,
    after: str | None = None,
    limit: int = 20,
    descending: bool = True,
) -> tuple[list[WebhookEvent], bool]:
    """One page of the account's events ordered by id (time-ordered), and whether more follow."""
    stmt = select(WebhookEvent).where(col(WebhookEvent.account_id) == account_id)
    if job_id:
        stmt = stmt.where(col(WebhookEvent.job_id) == job_id)
    if event_type:
        stmt = stmt.where(col(WebhookEvent.type) == event_type)
    if after:
        stmt = stmt.where(col(WebhookEvent.id) < after if descending else col(WebhookEvent.id) > after)
    stmt = stmt.order_by(col(WebhookEvent.id).desc() if descending else col(WebhookEvent.id).asc()).limit(limit + 1)
    rows = list((await session.exec(stmt)).all())
    return rows[:limit], len(rows) > limit


async def render_events(session: AsyncSession, events: list[WebhookEvent]) -> list[dict[str, Any]]:
    """The public events, each with its deliveries and every attempt (three queries in all)."""
    if not events:
        return []
    deliveries = list(
        (
            await session.exec(
                select(WebhookDelivery)
                .where(col(WebhookDelivery.event_id).in_([e.id for e in events]))
                .order_by(col(WebhookDelivery.id))
            )
        ).all()
    )
    attempts: dict[str, list[WebhookAttempt]] = defaultdict(list)
    if deliveries:
        stmt = (
            select(WebhookAttempt)
            .where(col(WebhookAttempt.delivery_id).in_([d.id for d in deliveries]))
            .order_by(col(WebhookAttempt.id))
        )
        for attempt in (await session.exec(stmt)).all():
            attempts[attempt.delivery_id].append(attempt)
    endpoint_ids = {d.endpoint_id for d in deliveries if d.endpoint_id}
    urls: dict[str | None, str] = {}
    if endpoint_ids:
        rows = await session.exec(select(WebhookEndpoint).where(col(WebhookEndpoint.id).in_(endpoint_ids)))
        urls = {e.id: e.url for e in rows.all()}
    by_event: dict[str, list[WebhookDelivery]] = defaultdict(list)
    for delivery in deliveries:
        by_event[delivery.event_id].append(delivery)
    return [
        event_public(
            event,
            [delivery_public(d, d.url or urls.get(d.endpoint_id), attempts[d.id]) for d in by_event[event.id]],
            by_event[event.id],
        )
        for event in events
    ]


async def redeliver(session: AsyncSession, account_id: str, event_id: str, endpoint_id: str | None) -> WebhookEvent:
    """Start the event's deliveries over (all of them, or the one to `endpoint_id`): pending again,
    due now, attempts counted afresh (the attempt log keeps the old ones). Same `webhook-id`, so a
    receiver that already has the event can tell. Endpoints that are disabled or deleted are
    skipped; 409 when nothing is left to send to."""
    event = await get_event(session, account_id, event_id)
    stmt = select(WebhookDelivery).where(col(WebhookDelivery.event_id) == event.id)
    if endpoint_id is not None:
        stmt = stmt.where(col(WebhookDelivery.endpoint_id) == endpoint_id)
    deliveries = list((await session.exec(stmt)).all())
    if endpoint_id is not None and not deliveries:
        raise NotFound(
            f"Event '{event_id}' was not sent to endpoint '{endpoint_id}'.", param="endpoint_id",
            code="webhook_endpoint_not_found",
        )  # fmt: skip
    restarted = 0
    for delivery in deliveries:
        if delivery.endpoint_id is not None:
            endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
            if endpoint is None or endpoint.deleted_at is not None or endpoint.status != EndpointStatus.ENABLED:
                continue
        await session.refresh(delivery)
        if await update_delivery(session, delivery.id, delivery.version, state=DeliveryState.PENDING, attempts=0,
                      next_attempt_at=utcnow(), delivered_at=None):  # fmt: skip
            defer(ActorName.WEBHOOK_DELIVER, delivery.id)
            restarted += 1
    if not restarted:
        raise Conflict(
            "This event has no enabled endpoint to send to (enable the endpoint first).",
            code="webhook_endpoint_disabled",
        )
    return event
