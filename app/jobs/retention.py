"""The job log's retention: chat and embedding rows (every `stage IS NULL` row, so realtime ones too)
older than `job_retention_days` are removed, a small batch per transaction, by a background loop in each
web process. Media jobs are not touched (they go with their files), nor is the ledger, nor the usage
rollups, so GET /v1/usage answers the same after a row is gone.

Why it stays cheap and never holds up the job log's writer: a batch is found through the partial
index on the job log's `created_at` (oldest first, no scan of what stays), each batch is its own short
transaction, and while full batches come back the loop goes on after a short pause rather than in one
long sweep (a process catching up on millions of rows gives the writer a turn between two batches).
Several web processes pruning at once share the work: on PostgreSQL each skips the rows another has
locked.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import utcnow
from app.core.outage import is_database_outage, outages
from app.core.tasks import Loop
from app.jobs.models import JOBS, LOG_ROW

log = logging.getLogger("heytoken.jobs.retention")

SQLITE_BATCH = 100
BACKLOG_PAUSE = 0.05
"""Seconds between two full batches: the other writers' turn."""


class JobLogRetention:
    def __init__(self, engine: AsyncEngine, *, days: int, batch: int, interval: float) -> None:
        self._engine = engine
        self._days = days
        # On SQLite the DELETE runs on the event loop (InlineConnection, app/core/adapters/sqlite.py):
        # ~8 µs of CPU a row, so a batch is held to what keeps every request's wait under a millisecond.
        self._batch = min(batch, SQLITE_BATCH) if engine.dialect.name == "sqlite" else batch
        self._interval = interval
        self._next = interval
        self.removed = 0
        self._loop = Loop("job-retention", self.step, lambda: self._next, on_error=self._failed)

    async def start(self) -> None:
        if self._days > 0:
            self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    def cutoff(self, now: dt.datetime | None = None) -> dt.datetime:
        return (now or utcnow()) - dt.timedelta(days=self._days)

    async def step(self) -> None:
        removed = await self.prune_batch()
        self._next = BACKLOG_PAUSE if removed >= self._batch else self._interval

    async def prune_batch(self, now: dt.datetime | None = None) -> int:
        """Remove at most one batch of rows created before the cutoff, oldest first; how many went."""
        created_at = JOBS.c.created_at
        oldest = (
            select(JOBS.c.id)
            .where(LOG_ROW, created_at < self.cutoff(now))
            .order_by(created_at)
            .limit(self._batch)
            # PostgreSQL: two processes pruning at once take different rows instead of queueing on the
            # same ones (SQLite has one writer at a time and no such clause).
            .with_for_update(skip_locked=True)
        )
        async with self._engine.begin() as conn:
            removed = (await conn.execute(delete(JOBS).where(JOBS.c.id.in_(oldest)))).rowcount or 0
        self.removed += removed
        return removed

    async def prune(self, now: dt.datetime | None = None) -> int:
        """Every expired row, batch after batch (the CLI, tests); how many went."""
        total = 0
        while removed := await self.prune_batch(now):
            total += removed
        return total

    def _failed(self, exc: Exception) -> None:
        self._next = self._interval
        if is_database_outage(exc):
            outages.warn("job_retention", exc)
        else:
            log.error("jobs.retention_failed", exc_info=exc)
