"""The steps of a media job, as plain functions the worker's actors call with a job id.

    submit  QUEUED → SUBMITTED (task id)            or → STORING → COMPLETED (upstream answered at once)
    poll    SUBMITTED/RUNNING → RUNNING (progress)  or → STORING, FAILED, CANCELLED; re-sends itself
    store   STORING → COMPLETED (our copy of every file: key, bytes, sha256, content type)

A job whose upstream answers at once (the local provider, OpenAI images, Stability) is one step of two
transactions: the claim (one UPDATE … RETURNING) and the outcome (one UPDATE through storing to
completed, with its events). A poll that learns nothing new writes nothing beyond its claim.

Every step is idempotent under duplicate or late delivery: it re-reads the row, exits unless the job
is at its stage and its step is due (`next_poll_at`), then claims the step by a compare-and-set that
pushes `next_poll_at` ahead (a lease), so of two copies of a message only one does the work. While the
step's slow part runs, a heartbeat renews the lease (app/core/lease.py): a live worker keeps its step,
a dead one's is due again within `step_lease_seconds` and the reconciler hands it on. A step
never sleeps: waiting is a message sent with a delay. Upstream errors that may pass (5xx, 429,
timeouts) back off — honouring `Retry-After` and the upstream's minimum poll interval — while the
upstream's refusals fail the job with its reason. The deadline fails whatever is still unfinished.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.orm.attributes import set_committed_value

from app.channels.catalog import Route
from app.core.db import utcnow
from app.core.lease import heartbeat
from app.core.queue import ActorName, Send, defer, transaction
from app.core.settings import Settings
from app.core.upstream_errors import ProviderError, UpstreamRejected
from app.jobs import service
from app.jobs.deps import JobDeps
from app.jobs.models import TERMINAL_STAGES, Job, Stage, stage_of
from app.jobs.results import StepFailed, complete, discard_if_orphaned, media_request, store_outputs, submit_request
from app.providers.base import MediaProvider, Output, TaskState, TaskStatus

log = logging.getLogger("heytoken.jobs.pipeline")

CLOCK_SKEW = dt.timedelta(seconds=1)
"""A delayed message may arrive this much 'early' by our clock and still count as due."""


def _due(job: Job, now: dt.datetime) -> bool:
    return job.next_poll_at is None or job.next_poll_at <= now + CLOCK_SKEW


def _provider(deps: JobDeps, job: Job) -> tuple[Route, MediaProvider] | None:
    for route in deps.catalog.current.routes.get(job.model, []):
        if route.channel_id == job.channel_id:
            provider = deps.media.get((route.provider, job.kind))
            return (route, provider) if provider is not None else None
    return None


async def _provider_after_refresh(deps: JobDeps, job: Job) -> tuple[Route, MediaProvider] | None:
    """The web process admitted the job on a channel this worker's catalog does not know yet (added a
    moment ago, before our next background refresh): look again in a fresh catalog before failing."""
    await deps.catalog.refresh()
    return _provider(deps, job)


async def _begin(
    deps: JobDeps, job_id: str, stages: set[Stage], lease: Callable[[Job], float] | None = None
) -> Job | None:
    """Claim the step: the job at one of `stages`, due, not past its deadline. Commits the claim, a
    lease that `_leased` renews while the step works: `step_lease_seconds`, or `lease(job)` seconds
    when it depends on the row (a poll's lease is its interval: see `poll_job`)."""
    now = utcnow()
    async with transaction(deps.sessionmaker, deps.sender) as session:
        if lease is None:
            # The common case in one statement; a miss reads the row below to learn why.
            until = now + dt.timedelta(seconds=deps.settings.step_lease_seconds)
            job = await service.claim(session, job_id, stages, now=now, due_by=now + CLOCK_SKEW, until=until)
            if job is not None:
                return job
        job = await service.load_job(session, job_id)
        if job is None or job.stage is None or stage_of(job) not in stages or not _due(job, now):
            log.debug("job.step_skipped job=%s", job_id)
            return None
        if job.deadline_at is not None and job.deadline_at <= now:
            await service.fail(session, job, "timeout", "The job did not finish before its deadline.")
            return None
        seconds = deps.settings.step_lease_seconds if lease is None else lease(job)
        changes: dict[str, Any] = {"next_poll_at": now + dt.timedelta(seconds=seconds)}
        if job.started_at is None:
            changes["started_at"] = now  # the claim's own write: queue-to-start costs no extra round trip
        if not await service.update_job(session, job, **changes):
            return None
        return job


def backoff(settings: Settings, attempts: int, retry_after: float | None, floor: float) -> float:
    """Exponential from `job_poll_initial_seconds` (with jitter), capped; `Retry-After` wins when given."""
    delay = float(min(settings.job_poll_max_seconds, settings.job_poll_initial_seconds * 2**attempts))
    delay *= random.uniform(0.75, 1.0)
    if retry_after is not None:
        delay = min(max(retry_after, 0.0), 300.0)
    return max(delay, floor)


def poll_delay(settings: Settings, job: Job, floor: float) -> float:
    """Polls thin out as a task ages: a quarter of its age, between the initial and the max interval."""
    age = (utcnow() - job.created_at).total_seconds()
    delay = min(settings.job_poll_max_seconds, max(settings.job_poll_initial_seconds, age / 4))
    return max(delay, floor)


async def _retry_later(deps: JobDeps, job: Job, actor: ActorName, exc: Exception, floor: float) -> None:
    settings = deps.settings
    retry_after = exc.retry_after if isinstance(exc, ProviderError | StepFailed) else None
    delay = backoff(settings, job.attempts, retry_after, floor)
    async with transaction(deps.sessionmaker, deps.sender) as session:
        fresh = await service.load_job(session, job.id)
        if fresh is None or fresh.version != job.version:
            return
        if actor is not ActorName.JOB_POLL and fresh.attempts + 1 >= settings.job_max_attempts:
            message = f"Gave up after {fresh.attempts + 1} tries: {exc}"
            await service.fail(session, fresh, "upstream_unavailable", message)
            return
        due = utcnow() + dt.timedelta(seconds=delay)
        if await service.update_job(session, fresh, attempts=fresh.attempts + 1, next_poll_at=due):
            defer(actor, job.id, delay_seconds=delay)
    log.warning("job.step_retry job=%s step=%s delay=%.1fs error=%s", job.id, actor.value, delay, exc)


async def _fail_claimed(deps: JobDeps, job: Job, code: str, message: str) -> None:
    async with transaction(deps.sessionmaker, deps.sender) as session:
        fresh = await service.load_job(session, job.id)
        if fresh is not None and fresh.version == job.version:
            await service.fail(session, fresh, code, message)


def _rejected(exc: UpstreamRejected) -> tuple[str, str]:
    error = exc.error or {}
    code = error.get("code") if isinstance(error.get("code"), str) else None
    return code or "upstream_rejected", str(error.get("message") or exc.message)


async def submit_job(deps: JobDeps, job_id: str) -> None:
    """Step 1: hand the job to its upstream. Idempotent: only a QUEUED, due job is submitted, once per
    claim; a crash after the upstream accepted but before the commit can cause one extra submission."""
    job = await _begin(deps, job_id, {Stage.QUEUED})
    if job is None:
        return
    found = _provider(deps, job) or await _provider_after_refresh(deps, job)
    if found is None:
        await _fail_claimed(deps, job, "channel_unavailable", f"No channel serves '{job.model}' any more.")
        return
    route, provider = found
    try:
        async with _leased(deps, job):
            request = await submit_request(deps, job, route)
            submission = await provider.submit(route, request)
            assets = await store_outputs(deps, job, route, provider, None, submission.outputs)
    except UpstreamRejected as exc:
        await _fail_claimed(deps, job, *_rejected(exc))
        return
    except (ProviderError, StepFailed) as exc:
        await _retry_later(deps, job, ActorName.JOB_SUBMIT, exc, provider.min_poll_seconds(route))
        return
    async with transaction(deps.sessionmaker, deps.sender) as session:
        if submission.task_id is None:
            # The answer held the files, already stored: through storing to completed in one write.
            moved = await complete(deps, session, job, assets, via=Stage.STORING)
        else:
            delay = submission.poll_after
            if delay is None:
                delay = max(deps.settings.job_poll_initial_seconds, provider.min_poll_seconds(route))
            due = utcnow() + dt.timedelta(seconds=delay)
            moved = await service.transition(
                session, job, Stage.SUBMITTED, upstream_id=submission.task_id, attempts=0, next_poll_at=due
            )
            if moved:
                defer(ActorName.JOB_POLL, job.id, delay_seconds=delay)
    if not moved:
        await _lost(deps, job.id, assets)


async def _lost(deps: JobDeps, job_id: str, assets: list[dict[str, Any]]) -> None:
    """The step's final compare-and-set lost: another writer changed the job while the step worked.
    (The steps write through the row they claimed; its version is the check, so no re-read first.)"""
    if assets:
        async with deps.sessionmaker() as session:
            fresh = await service.load_job(session, job_id)
        await discard_if_orphaned(deps, fresh, assets)


async def poll_job(deps: JobDeps, job_id: str) -> None:
    """Step 2: ask the upstream how the task is doing; re-send itself with a delay until it ends.

    The claim's lease is the poll interval, so it is also when the next poll is due: a poll that
    learns nothing new (same stage, no more progress) writes nothing more and re-sends itself for
    then. Its heartbeat still renews the lease while a slow upstream answers."""
    job = await _begin(deps, job_id, {Stage.SUBMITTED, Stage.RUNNING}, lease=lambda row: _poll_lease(deps, row))
    if job is None:
        return
    found = _provider(deps, job)
    if found is None or job.upstream_id is None:
        await _fail_claimed(deps, job, "channel_unavailable", f"No channel serves '{job.model}' any more.")
        return
    route, provider = found
    floor = provider.min_poll_seconds(route)
    try:
        async with _leased(deps, job):
            status = await provider.poll(route, job.upstream_id, media_request(job, route))
    except UpstreamRejected as exc:
        await _fail_claimed(deps, job, *_rejected(exc))
        return
    except ProviderError as exc:
        await _retry_later(deps, job, ActorName.JOB_POLL, exc, floor)
        return
    if not _news(job, status):
        # The claim already set when the next poll is due (renewed, if the poll was slow).
        assert job.next_poll_at is not None
        delay = max(0.0, (job.next_poll_at - utcnow()).total_seconds())
        await _send(deps, Send(ActorName.JOB_POLL, job.id, max(1, int(delay * 1000)) if delay else None))
        return
    async with transaction(deps.sessionmaker, deps.sender) as session:
        await _apply_status(deps, session, job, status, floor)


async def _send(deps: JobDeps, message: Send) -> None:
    """Send outside a transaction (nothing to commit first), as `transaction` would after a commit."""
    try:
        await deps.sender.send([message])
    except Exception:
        # The job is due at its lease's end: the reconciler re-sends the step if this never arrives.
        log.warning("queue.send_failed job=%s", message.object_id, exc_info=True)


def _poll_lease(deps: JobDeps, job: Job) -> float:
    found = _provider(deps, job)
    return poll_delay(deps.settings, job, found[1].min_poll_seconds(found[0]) if found else 0.0)


def _news(job: Job, status: TaskStatus) -> bool:
    """Whether a poll's answer changes the row: another stage, more progress, a back-off to reset."""
    if status.state not in (TaskState.QUEUED, TaskState.RUNNING) or job.attempts:
        return True
    if status.state is TaskState.RUNNING and stage_of(job) is Stage.SUBMITTED:
        return True
    return min(99, status.progress or 0) > job.progress


async def _apply_status(deps: JobDeps, session: Any, job: Job, status: TaskStatus, floor: float) -> None:
    progress = max(job.progress, min(99, status.progress or 0))
    if status.state is TaskState.SUCCEEDED:
        result = {"outputs": [o.ref() for o in status.outputs]}
        if await service.transition(
            session, job, Stage.STORING, upstream_result=result, progress=99, attempts=0, next_poll_at=utcnow()
        ):
            defer(ActorName.JOB_STORE, job.id)
    elif status.state is TaskState.FAILED:
        await service.fail(
            session, job, status.error_code or "upstream_failed", status.error_message or "The upstream failed."
        )
    elif status.state is TaskState.CANCELLED:
        await service.transition(session, job, Stage.CANCELLED)
    else:
        delay = poll_delay(deps.settings, job, floor)
        due = utcnow() + dt.timedelta(seconds=delay)
        changes: dict[str, Any] = {"progress": progress, "attempts": 0, "next_poll_at": due}
        if status.state is TaskState.RUNNING and stage_of(job) is Stage.SUBMITTED:
            moved = await service.transition(session, job, Stage.RUNNING, **changes)
        else:
            moved = await service.update_job(session, job, **changes)
        if moved:
            defer(ActorName.JOB_POLL, job.id, delay_seconds=delay)


async def store_job(deps: JobDeps, job_id: str) -> None:
    """Step 3: copy every result file into our storage, then complete. Keys are derived from the job
    id, so a repeated store overwrites its own files: one object per file, whatever happens."""
    job = await _begin(deps, job_id, {Stage.STORING})
    if job is None:
        return
    found = _provider(deps, job)
    if found is None:
        await _fail_claimed(deps, job, "channel_unavailable", f"No channel serves '{job.model}' any more.")
        return
    route, provider = found
    outputs = [Output.from_ref(ref) for ref in (job.upstream_result or {}).get("outputs", [])]
    try:
        async with _leased(deps, job):
            assets = await store_outputs(deps, job, route, provider, job.upstream_id, outputs)
    except UpstreamRejected as exc:
        await _fail_claimed(deps, job, *_rejected(exc))
        return
    except (ProviderError, StepFailed) as exc:
        await _retry_later(deps, job, ActorName.JOB_STORE, exc, 0.0)
        return
    async with transaction(deps.sessionmaker, deps.sender) as session:
        moved = await complete(deps, session, job, assets)
    if not moved:
        await _lost(deps, job.id, assets)


def _leased(deps: JobDeps, job: Job) -> AbstractAsyncContextManager[None]:
    """Renew the claimed job's lease while the block runs (app/core/lease.py). Wraps only the upstream
    and storage work: the heartbeat has stopped before the step writes its outcome."""
    lease = deps.settings.step_lease_seconds

    async def renew() -> bool:
        until = utcnow() + dt.timedelta(seconds=lease)
        async with deps.sessionmaker() as session:
            renewed = await service.renew_lease(session, job, until)
            await session.commit()
        if renewed:
            set_committed_value(job, "next_poll_at", until)  # a poll with no news is due then
        return renewed

    return heartbeat(renew, lease)


async def cancel_upstream(deps: JobDeps, job_id: str) -> None:
    """Ask the upstream to stop a task whose job was cancelled. Idempotent (asking twice is harmless)."""
    async with deps.sessionmaker() as session:
        job = await service.load_job(session, job_id)
    if job is None or job.stage != Stage.CANCELLED.value or job.upstream_id is None:
        return
    found = _provider(deps, job)
    if found is not None:
        await found[1].cancel(found[0], job.upstream_id)


ACTOR_OF_STAGE = {
    Stage.QUEUED: ActorName.JOB_SUBMIT,
    Stage.SUBMITTED: ActorName.JOB_POLL,
    Stage.RUNNING: ActorName.JOB_POLL,
    Stage.STORING: ActorName.JOB_STORE,
}
assert set(ACTOR_OF_STAGE) | TERMINAL_STAGES == set(Stage)
