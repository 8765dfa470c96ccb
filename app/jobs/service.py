"""Media jobs: create, read, list, cancel, delete — and `transition`, the one way a job changes stage.

Functions take a session and never commit; the caller's `app.core.queue.transaction` commits and then sends
what was deferred.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import logging
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.auth import Principal
from app.channels.catalog import Route
from app.channels.models import ProviderType
from app.channels.names import CHAT_MODELS, EMBEDDING_MODELS, IMAGE_MODEL, VIDEO_MODEL
from app.core.db import utcnow
from app.core.errors import Conflict, InvalidRequest, NotFound
from app.core.ids import new_id
from app.core.queue import ActorName, defer, defer_credit
from app.jobs import billing as job_billing
from app.jobs.events import ResultLinks, emit
from app.jobs.models import (
    JOBS,
    MEDIA_ROW,
    STAGE_TRANSITIONS,
    STATUS_OF,
    TERMINAL_STAGES,
    Job,
    JobKind,
    JobStatus,
    Stage,
    stage_of,
)

log = logging.getLogger("heytoken.jobs")

ID_PREFIX = {JobKind.VIDEO: "video_", JobKind.IMAGE: "img_"}
MEDIA_KINDS = (JobKind.IMAGE.value, JobKind.VIDEO.value)


class InvalidTransition(Exception):
    """A stage change the table does not allow: a bug in the caller, not a race."""


async def _compare_and_set(session: AsyncSession, job: Job, values: dict[str, Any]) -> bool:
    values = {**values, "version": job.version + 1}
    params = {f"set_{name}": value for name, value in values.items()}
    params.update(cas_id=job.id, cas_version=job.version)
    result = await (await session.connection()).execute(_cas_statement(tuple(sorted(values))), params)
    if result.rowcount != 1:
        return False
    for name, value in values.items():
        set_committed_value(job, name, value)
    return True


@functools.cache
def _cas_statement(columns: tuple[str, ...]) -> Any:
    """The compare-and-set that writes these columns, built once with its values as parameters (each
    step writes one of a few column sets; building the statement and its cache key anew cost more than
    SQLite's work on it). On the table, not the entity: the ORM's bulk-update path (its options, its
    cache key over the entity) cost more still, and the session's copy is set by the caller anyway."""
    return (
        update(JOBS)
        .where(
            JOBS.c.id == bindparam("cas_id", type_=JOBS.c.id.type),
            JOBS.c.version == bindparam("cas_version", type_=JOBS.c.version.type),
        )
        .values({name: bindparam(f"set_{name}", type_=JOBS.c[name].type) for name in columns})
    )


async def update_job(session: AsyncSession, job: Job, **changes: Any) -> bool:
    """Compare-and-set write without a stage change (progress, lease, attempts). False when another
    writer got there first: the caller's view is stale and it should stop."""
    return await _compare_and_set(session, job, changes)


async def claim(
    session: AsyncSession, job_id: str, stages: set[Stage], *, now: dt.datetime, due_by: dt.datetime, until: dt.datetime
) -> Job | None:
    """Claim a job's step in one statement: if the job is at one of `stages`, due by `due_by` and not
    past its deadline, push its lease to `until`, set `started_at` the first time, and return the row
    as written. None when any of that does not hold: the caller reads the row to learn why. (Reading
    first and then writing, as the callers did, cost a round trip more on every step; issue #23.)"""
    params = {"job_id": job_id, "due_by": due_by, "now": now, "until": until}
    result = await session.exec(
        _claim_statement(frozenset(stages)), params=params, execution_options={"populate_existing": True}
    )
    job: Job | None = result.scalars().first()
    return job


@functools.cache
def _claim_statement(stages: frozenset[Stage]) -> Any:
    """The claim for these stages, built once with its values as parameters: building it (an UPDATE …
    RETURNING every column, loaded as an entity) and its cache key cost ~0.5 ms of the worker's CPU per
    step, more than SQLite's work on it (issue #23)."""
    when = JOBS.c.next_poll_at.type
    stmt = (
        update(JOBS)
        .where(
            JOBS.c.id == bindparam("job_id", type_=JOBS.c.id.type),
            # Each stage a parameter with its value: an IN list's expanding parameter is rendered
            # anew at every execution (~0.1 ms of the claim's CPU under a profiler).
            or_(
                *(
                    JOBS.c.stage == bindparam(f"stage_{stage.value}", stage.value, type_=JOBS.c.stage.type)
                    for stage in sorted(stages)
                )
            ),
            or_(JOBS.c.next_poll_at.is_(None), JOBS.c.next_poll_at <= bindparam("due_by", type_=when)),
            or_(JOBS.c.deadline_at.is_(None), JOBS.c.deadline_at > bindparam("now", type_=when)),
        )
        .values(
            next_poll_at=bindparam("until", type_=when),
            started_at=func.coalesce(JOBS.c.started_at, bindparam("now", type_=when)),
            version=JOBS.c.version + 1,
        )
        .returning(*JOBS.c)
    )
    # An ORM entity from the RETURNING row (sqlmodel's exec has no overload for from_statement).
    return select(Job).from_statement(stmt)


async def renew_lease(session: AsyncSession, job: Job, until: dt.datetime) -> bool:
    """Push the lease of a claimed step to `until` if the job is still at the claimed version. The
    version stays: the step's final compare-and-set must still match (app/core/lease.py)."""
    stmt = update(JOBS).where(JOBS.c.id == job.id, JOBS.c.version == job.version).values(next_poll_at=until)
    result = await (await session.connection()).execute(stmt)
    return bool(result.rowcount == 1)


async def transition(
    session: AsyncSession,
    job: Job,
    to: Stage,
    *,
    via: Stage | None = None,
    links: ResultLinks | None = None,
    unheld: bool = False,
    **changes: Any,
) -> bool:
    """Move `job` to stage `to` (and its public status), with `changes`, as one compare-and-set on
    `version`. Returns False, changing nothing, when another writer changed the job first.

    This is the single place a job changes state, so whatever must happen exactly once per transition
    belongs here, in the same transaction: billing's capture/release and the webhook event (with its
    deliveries) happen in `_after_transition`. `links` lets the event of a completed image job carry
    signed links to its results.

    `via` passes through a stage in the same write (QUEUED → STORING → COMPLETED when the upstream
    answered with the files, already stored): each step is checked and makes its events as if taken
    on its own. `unheld`: the caller read the row at the version it compares and it holds nothing,
    so billing has nothing to settle (a statement saved on every free job).
    """
    current = stage_of(job)
    path = [current, to] if via is None else [current, via, to]
    for source, target in itertools.pairwise(path):
        if target not in STAGE_TRANSITIONS[source]:
            raise InvalidTransition(f"job {job.id}: {source} → {target} is not allowed")
    values: dict[str, Any] = {"stage": to.value, "status": STATUS_OF[to].value, **changes}
    if to in TERMINAL_STAGES:
        values.setdefault("completed_at", utcnow())
        values["next_poll_at"] = None
    before = {name: getattr(job, name) for name in values} if via is not None else {}
    if not await _compare_and_set(session, job, values):
        return False
    log.info("job.transition job=%s kind=%s from=%s to=%s", job.id, job.kind, current.value, to.value)
    if via is not None:
        # The passing stage's event shows the job as it was there: its old fields at the new stage.
        after = {name: getattr(job, name) for name in values}
        _show(job, {**before, "stage": via.value, "status": STATUS_OF[via].value})
        await _after_transition(session, job, current, via, None, unheld)
        _show(job, after)
        current = via
    await _after_transition(session, job, current, to, links, unheld)
    return True


def _show(job: Job, values: dict[str, Any]) -> None:
    for name, value in values.items():
        set_committed_value(job, name, value)


async def _after_transition(
    session: AsyncSession, job: Job, old: Stage, new: Stage, links: ResultLinks | None, unheld: bool = False
) -> None:
    """Same-transaction side effects of a transition that won its compare-and-set: a change of public
    status makes its webhook event; a finished job captures its hold, a failed, cancelled or timed-out
    one releases it (once: billing's own compare-and-set on `billing_state`), and the Redis mirror
    follows after the commit."""
    if STATUS_OF[old] is not STATUS_OF[new]:
        await emit(session, job, STATUS_OF[new], links)
    if new not in TERMINAL_STAGES or unheld:
        return
    cost = job_billing.CAPTURE_HOLD if new is Stage.COMPLETED else None
    account_id, credit = await job_billing.settle(await session.connection(), job.id, cost=cost)
    if account_id is not None and credit:
        defer_credit(account_id, credit)


async def fail(session: AsyncSession, job: Job, code: str, message: str) -> bool:
    return await transition(session, job, Stage.FAILED, error_code=code[:100], error_message=message[:2000])


def new_media_job(
    *,
    kind: JobKind,
    principal: Principal,
    model: str,
    channel_id: str,
    prompt: str,
    params: dict[str, Any],
    metadata: dict[str, str] | None,
    webhook_url: str | None,
    webhook_events: list[str] | None,
    deadline_seconds: float,
    job_id: str | None = None,
) -> Job:
    now = utcnow()
    return Job(
        id=job_id or new_job_id(kind),
        kind=kind.value,
        status=JobStatus.QUEUED.value,
        stage=Stage.QUEUED.value,
        account_id=principal.account_id,
        api_key_id=principal.key_id,
        model=model,
        channel_id=channel_id,
        prompt=prompt,
        params=params,
        user_metadata=metadata,
        webhook_url=webhook_url,
        webhook_events=webhook_events,
        created_at=now,
        next_poll_at=now,
        deadline_at=now + dt.timedelta(seconds=deadline_seconds),
    )


def new_job_id(kind: JobKind) -> str:
    return new_id(ID_PREFIX[kind])


_INSERT_JOB = insert(JOBS)


async def create_media_job(session: AsyncSession, job: Job) -> Job:
    """Insert the job, its `*.queued` webhook event if anyone wants it, and defer its submit step
    (everything deferred is sent once the caller's transaction commits)."""
    # Through the table, not `session.add` + flush: the unit of work's bookkeeping for one new row was
    # ~1.5 ms of the web process's CPU per job, the biggest piece of a submission (issue #23). The
    # entity stays outside the session, as after a flush and commit with nothing left to change.
    await (await session.connection()).execute(
        _INSERT_JOB, {column.name: getattr(job, column.key) for column in JOBS.c}
    )
    await emit(session, job, JobStatus.QUEUED)
    defer(ActorName.JOB_SUBMIT, job.id)
    return job


async def load_job(session: AsyncSession, job_id: str) -> Job | None:
    """The row as it is in the database now (never a stale copy from the session)."""
    return await session.get(Job, job_id, populate_existing=True)


async def get_media_job(session: AsyncSession, principal: Principal, kind: JobKind, job_id: str) -> Job:
    """The caller's own job of this kind; anything else (another account's, deleted) reads as unknown."""
    job = await load_job(session, job_id)
    if job is None or job.kind != kind.value or job.account_id != principal.account_id or job.deleted_at:
        noun = "video" if kind is JobKind.VIDEO else "image generation"
        raise NotFound(f"No {noun} found with id '{job_id}'.", param="id", code=f"{kind.value}_not_found")
    return job


async def list_media_jobs(
    session: AsyncSession,
    principal: Principal,
    kind: JobKind,
    *,
    after: str | None,
    limit: int,
    descending: bool,
    status: str | None = None,
    model: str | None = None,
) -> tuple[list[Job], bool]:
    """One page of the caller's jobs ordered by id (ids are time-ordered ULIDs), and whether more follow."""
    stmt = select(Job).where(
        MEDIA_ROW,  # what the partial index covers (ix_jobs_media_kind_account_id)
        col(Job.account_id) == principal.account_id,
        col(Job.kind) == kind.value,
        col(Job.deleted_at).is_(None),
    )
    if status:
        stmt = stmt.where(col(Job.status) == status)
    if model:
        stmt = stmt.where(col(Job.model) == model)
    if after:
        stmt = stmt.where(col(Job.id) < after if descending else col(Job.id) > after)
    stmt = stmt.order_by(col(Job.id).desc() if descending else col(Job.id).asc()).limit(limit + 1)
    rows = list((await session.exec(stmt)).all())
    return rows[:limit], len(rows) > limit


async def cancel_job(session: AsyncSession, job: Job, *, not_cancellable: str) -> Job:
    """Cancel an unfinished job (409 `not_cancellable` once it is terminal). An upstream task already
    started is asked to stop by a worker after the commit."""
    for _ in range(5):
        if stage_of(job) in TERMINAL_STAGES:
            raise Conflict(
                f"Job '{job.id}' is {job.status} and can no longer be cancelled.", param="id", code=not_cancellable
            )
        if await transition(session, job, Stage.CANCELLED):
            if job.upstream_id:
                defer(ActorName.JOB_CANCEL_UPSTREAM, job.id)
            return job
        # A worker moved the job meanwhile: look again.
        refreshed = await load_job(session, job.id)
        assert refreshed is not None
        job = refreshed
    raise Conflict(f"Job '{job.id}' is changing too fast to cancel; try again.", param="id", code="job_busy")


def stored_keys(job: Job) -> list[str]:
    keys = [str(a["key"]) for a in job.assets or [] if a.get("key")]
    reference = (job.params or {}).get("input_reference_key")
    if isinstance(reference, str):
        keys.append(reference)
    return keys


async def mark_deleted(session: AsyncSession, job: Job, *, not_deletable: str) -> None:
    """Mark a terminal job deleted (its files are removed by the caller). 409 while it is unfinished."""
    if stage_of(job) not in TERMINAL_STAGES:
        raise Conflict(
            f"Job '{job.id}' is {job.status}; only finished jobs can be deleted (cancel it first).",
            param="id",
            code=not_deletable,
        )
    if not await update_job(session, job, deleted_at=utcnow(), assets=[]):
        raise Conflict(f"Job '{job.id}' changed meanwhile; try again.", param="id", code="job_busy")


def check_capability(route: Route, kind: JobKind) -> None:
    """400 for a local model that cannot make this kind of media (remote upstreams judge for themselves)."""
    if route.provider != ProviderType.LOCAL:
        return
    model = route.upstream_model
    other = {"image": VIDEO_MODEL, "video": IMAGE_MODEL}[kind.value]
    if model in CHAT_MODELS or model in EMBEDDING_MODELS or model == other:
        noun = "image generation" if kind is JobKind.IMAGE else "video generation"
        raise InvalidRequest(f"The model '{model}' does not support {noun}.", param="model", code="model_not_supported")
