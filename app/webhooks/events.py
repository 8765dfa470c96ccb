"""Webhook events of media jobs, created inside the transaction of the job change that causes them.

`record_job_event` is registered (`install`) as the hook of `app.jobs.events`, called by
`app.jobs.service` when a job is created (queued) and when a
transition changes its public status. A transition wins its compare-and-set exactly once, and public
statuses never repeat (queued → in_progress → completed | failed | cancelled), so each (job, type)
gets at most one event; the unique constraint on (job_id, type) makes that hold even against a bug.
The body is serialised once and its exact bytes stored: every attempt resends (and signs) them.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from sqlalchemy import bindparam, select
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.db import dialect_insert, to_unix, utcnow
from app.core.ids import new_id
from app.core.queue import ActorName, defer
from app.jobs.events import DEFAULT_EVENTS, ResultLinks, default_events, on_job_event
from app.jobs.models import Job, JobKind, JobStatus
from app.media.images import image_job_object
from app.media.videos import video_object
from app.webhooks.models import DeliveryState, EndpointStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent

log = logging.getLogger("heytoken.webhooks")
EVENTS = SQLModel.metadata.tables[WebhookEvent.__tablename__]
DELIVERIES = SQLModel.metadata.tables[WebhookDelivery.__tablename__]
ENDPOINTS = SQLModel.metadata.tables[WebhookEndpoint.__tablename__]
_encode = msgspec.json.Encoder().encode
# Two columns through the connection, not whole ORM objects, and built once: this runs at every status
# change of every job, on the submit path and in the worker (building it cost more than SQLite's work).
_ENABLED_ENDPOINTS = select(ENDPOINTS.c.id, ENDPOINTS.c.events).where(
    ENDPOINTS.c.account_id == bindparam("account_id", type_=ENDPOINTS.c.account_id.type),
    ENDPOINTS.c.status == EndpointStatus.ENABLED,
    ENDPOINTS.c.deleted_at.is_(None),
)


async def public_object(job: Job, links: ResultLinks | None) -> dict[str, Any]:
    """The object GET returns for this job: the event's `data`."""
    if job.kind == JobKind.VIDEO:
        return video_object(job)
    if links is None and job.status == JobStatus.COMPLETED:
        log.warning("webhooks.event_without_links job=%s: result links left out", job.id)
    return await image_job_object(job, links.store if links else None, links.ttl_seconds if links else 0)


async def _targets(session: AsyncSession, job: Job, event_type: str) -> list[tuple[str | None, str | None]]:
    """(endpoint id, url) of everyone who wants this event: the job's own URL (filtered by its
    `webhook_events`) and the account's enabled endpoints (filtered by theirs)."""
    targets: list[tuple[str | None, str | None]] = []
    if job.webhook_url and event_type in (job.webhook_events or default_events(job.kind)):
        targets.append((None, job.webhook_url))
    for endpoint_id, events in await _endpoints(session, job.account_id):
        if event_type in (events or DEFAULT_EVENTS):
            targets.append((endpoint_id, None))
    return targets


async def _endpoints(session: AsyncSession, account_id: str) -> list[tuple[str, list[str] | None]]:
    """The account's enabled endpoints, read once per transaction: a job that goes through two
    public statuses in one write (queued → in_progress → completed) asks once, not twice."""
    transaction = session.sync_session.get_transaction()
    key = ("webhook_endpoints", account_id)
    seen = session.info.get(key)
    cached: list[tuple[str, list[str] | None]] | None = seen[1] if seen and seen[0] is transaction else None
    if cached is None:
        rows = await (await session.connection()).execute(_ENABLED_ENDPOINTS, {"account_id": account_id})
        cached = [(row[0], row[1]) for row in rows]
        if transaction is not None:
            session.info[key] = (transaction, cached)
    return cached


async def record_job_event(
    session: AsyncSession, job: Job, status: JobStatus, links: ResultLinks | None = None
) -> str | None:
    """Create the `<kind>.<status>` event of `job` with one delivery per target, and defer the
    deliveries (sent once the caller commits). Nothing when no one wants the event, or when the job
    already has it (idempotent). Returns the event id, if one was created."""
    if job.kind not in (JobKind.VIDEO, JobKind.IMAGE):
        return None
    event_type = f"{job.kind}.{status.value}"
    targets = await _targets(session, job, event_type)
    if not targets:
        return None
    now = utcnow()
    event_id = new_id("evt_")
    envelope = {
        "id": event_id,
        "object": "event",
        "created_at": to_unix(now),
        "type": event_type,
        "data": await public_object(job, links),
    }
    conn = await session.connection()
    insert = dialect_insert(conn)
    inserted = await conn.execute(
        insert(EVENTS).on_conflict_do_nothing(index_elements=["job_id", "type"]).returning(EVENTS.c.id),
        {
            "id": event_id,
            "account_id": job.account_id,
            "job_id": job.id,
            "type": event_type,
            "payload": _encode(envelope),
            "created_at": now,
        },
    )
    if inserted.scalar_one_or_none() is None:
        log.warning("webhooks.duplicate_event job=%s type=%s", job.id, event_type)
        return None
    for endpoint_id, url in targets:
        delivery_id = new_id("whd_")
        await conn.execute(
            DELIVERIES.insert(),
            {
                "id": delivery_id,
                "event_id": event_id,
                "endpoint_id": endpoint_id,
                "url": url,
                "state": DeliveryState.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "version": 0,
            },
        )
        defer(ActorName.WEBHOOK_DELIVER, delivery_id)
    return event_id


def install() -> None:
    """Wire the webhook events to the jobs' transitions (at start-up: create_app, the worker's boot)."""
    on_job_event(record_job_event)
