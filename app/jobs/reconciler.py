"""The reconciler: the database, not the broker, decides that a job is stuck.

Messages get lost (Redis restarted without persistence, a worker SIGKILLed holding prefetched or
delayed messages, a crash between commit and send). Every unfinished media job carries `next_poll_at`,
the time its next step is due; a job overdue by more than the grace period gets its step sent again,
and a job past its deadline fails with error.code `timeout`. Re-sent steps are safe because every step
is idempotent (app/jobs/pipeline.py). One pass runs per interval across all workers: a Redis lock,
under `redis_prefix`, elects the process that does it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlmodel import col, or_, select

from app.core.db import utcnow
from app.core.queue import defer, transaction
from app.jobs import service
from app.jobs.deps import JobDeps
from app.jobs.models import TERMINAL_STAGES, Job, Stage, stage_of
from app.jobs.pipeline import ACTOR_OF_STAGE

log = logging.getLogger("heytoken.jobs.reconciler")
BATCH = 500
OPEN_STAGES = [s.value for s in Stage if s not in TERMINAL_STAGES]


@dataclass(slots=True)
class Pass:
    resent: int = 0
    timed_out: int = 0


async def reconcile_once(deps: JobDeps) -> Pass:
    """One pass: re-send overdue steps, fail jobs past their deadline. Safe to run concurrently."""
    now = utcnow()
    overdue = now - dt.timedelta(seconds=deps.settings.reconcile_grace())
    done = Pass()
    async with transaction(deps.sessionmaker, deps.sender) as session:
        stmt = (
            select(Job)
            .where(col(Job.stage).in_(OPEN_STAGES))
            .where(or_(col(Job.next_poll_at) < overdue, col(Job.deadline_at) < now))
            .order_by(col(Job.next_poll_at))
            .limit(BATCH)
        )
        for job in (await session.exec(stmt)).all():
            if job.deadline_at is not None and job.deadline_at < now:
                if await service.fail(session, job, "timeout", "The job did not finish before its deadline."):
                    done.timed_out += 1
            elif job.next_poll_at is not None and job.next_poll_at < overdue:
                defer(ACTOR_OF_STAGE[stage_of(job)], job.id)
                done.resent += 1
    if done.resent or done.timed_out:
        log.info("jobs.reconciled resent=%d timed_out=%d", done.resent, done.timed_out)
    return done


async def run_reconciler(deps: JobDeps, redis: Redis, extra: Sequence[Callable[[], Awaitable[object]]] = ()) -> None:
    """Forever: every `reconcile_every()` (half a step lease by default), run one pass (and the
    `extra` passes, such as the webhook deliveries') if this process wins the lock."""
    interval = deps.settings.reconcile_every()
    key = f"{deps.settings.redis_prefix}jobs:reconciler"
    token = uuid.uuid4().hex
    while True:
        try:
            # The lock expires just before the next tick, so exactly one process runs each pass and
            # a dead holder never blocks the others for longer than one interval.
            if await redis.set(key, token, nx=True, px=max(1, int(interval * 900))):
                await reconcile_once(deps)
                for extra_pass in extra:
                    await extra_pass()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("jobs.reconcile_failed")
        await asyncio.sleep(interval)
