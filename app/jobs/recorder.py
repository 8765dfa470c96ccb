"""Writes the job rows of synchronous requests (chat, embeddings) off the hot path, in batches.

A request hands its finished record to `record()` (no I/O, no await); a background task inserts the
pending records every `job_log_flush_ms` or as soon as `job_log_batch_size` are waiting. `on_write`
runs in the same transaction (the billing captures), then the rows are added to the usage rollups
(app/jobs/rollups.py), last, so the rollup rows' locks are held the shortest; `after_write` runs after
the commit (the Redis settlements). On shutdown the pending records are flushed. A batch that fails
(database down) goes back to the front of the queue and is retried with backoff, never dropped; a row
the database refuses on its own (say, its account was deleted meanwhile) is dropped alone, with a log
line.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.db import driver_sql
from app.core.outage import outages
from app.core.tasks import Loop
from app.jobs import rollups
from app.jobs.models import JOBS
from app.jobs.records import JOB_COLUMNS, JobRecord

if TYPE_CHECKING:
    from app.jobs.preview import JobPreview

log = logging.getLogger("heytoken.jobs.recorder")


WriteHook = Callable[[AsyncConnection, list[JobRecord]], Awaitable[None]]
SettleHook = Callable[[list[JobRecord]], Awaitable[None]]


class JobRecorder:
    MAX_BACKOFF = 5.0

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        flush_ms: int,
        batch_size: int,
        max_pending: int,
        on_write: WriteHook | None = None,
        after_write: SettleHook | None = None,
    ) -> None:
        self._engine = engine
        self._sql = driver_sql(engine.dialect)
        self._insert_jobs = self._sql.insert(JOBS.name, JOB_COLUMNS)
        self._add_rollups = rollups.upsert_sql(self._sql)
        self._interval = flush_ms / 1000
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._on_write = on_write
        self._after_write = after_write
        self._pending: list[JobRecord] = []
        self._by_id: dict[str, JobRecord] = {}
        """The pending records by id: GET /v1/jobs/{id} answers from here until the row is written."""
        self._backoff = 0.0
        # Every flush interval (longer while the database is failing), or at once when a batch is full.
        self._loop = Loop("job-recorder", self.flush, lambda: self._interval + self._backoff)
        self.dropped = 0
        self.observer: Callable[[JobRecord], None] | None = None
        """Sees every record as it is handed in (the metrics); must not block."""
        self.preview: JobPreview | None = None
        """Shares the pending records with the other web processes (app/jobs/preview.py), if set."""

    def record(self, rec: JobRecord) -> None:
        if self.observer is not None:
            self.observer(rec)
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.error("jobs.recorder.overflow dropped=%d pending=%d", self.dropped, len(self._pending))
            return
        self._pending.append(rec)
        self._by_id[rec.id] = rec
        if self.preview is not None:
            self.preview.put(rec)
        if len(self._pending) >= self._batch_size:
            self._loop.wake()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def find(self, job_id: str) -> JobRecord | None:
        """The record of `job_id` while its row is not written yet (this process's requests only)."""
        return self._by_id.get(job_id)

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self.flush()

    async def flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._batch_size]
            del self._pending[: len(batch)]
            unwritten = await self._write(batch)
            # Written (or refused for good): from now on the row answers, or nothing does.
            done = batch[: len(batch) - len(unwritten)]
            for rec in done:
                self._by_id.pop(rec.id, None)
            if self.preview is not None and done:
                self.preview.forget([rec.id for rec in done])
            if unwritten:
                # Back to the front, in order: a database outage delays rows, it does not lose them.
                self._pending[:0] = unwritten
                self._backoff = min(self.MAX_BACKOFF, max(0.2, self._backoff * 2))
                return
            self._backoff = 0.0

    async def _write(self, batch: list[JobRecord]) -> list[JobRecord]:
        """Write a batch; what comes back is still to be written (the database did not answer)."""
        try:
            await self._insert(batch)
        except Exception as exc:
            if not isinstance(exc, IntegrityError) and not await self._database_answers():
                outages.warn(f"job_log rows={len(batch)} (will retry)", exc)
                return batch
            # The database answers but refused the batch: one row it will never take must not hold up
            # the others forever, so each goes alone and a refused one is dropped with a log line.
            written: list[JobRecord] = []
            for i, rec in enumerate(batch):
                try:
                    await self._insert([rec])
                except Exception as row_exc:
                    if not isinstance(row_exc, IntegrityError) and not await self._database_answers():
                        await self._settle(written)
                        return batch[i:]
                    log.error("jobs.recorder.row_refused id=%s error=%s", rec.id, getattr(row_exc, "orig", row_exc))
                else:
                    written.append(rec)
            batch = written
        await self._settle(batch)
        return []

    async def _settle(self, batch: list[JobRecord]) -> None:
        if self._after_write is not None and batch:
            try:
                await self._after_write(batch)
            except Exception:
                log.exception("jobs.recorder.after_write_failed rows=%d", len(batch))

    async def _database_answers(self) -> bool:
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def _insert(self, batch: list[JobRecord]) -> None:
        # Plain tuples straight to the driver's executemany: the Core path (`conn.execute(insert(JOBS),
        # dicts)`) spent more CPU per row on SQLAlchemy's parameter processing than the database took.
        # On SQLite in slices, the loop served between two: a batch of 50 in one piece held the loop
        # ~3 ms, and every request that arrived meanwhile waited that long (DriverSQL.slices).
        sql = self._sql
        async with self._engine.begin() as conn:
            async for part in sql.slices(batch):
                await sql.run(conn, self._insert_jobs, [rec.values(sql) for rec in part])
            if self._on_write is not None:
                await self._on_write(conn, batch)
            await rollups.add(conn, sql, self._add_rollups, batch)
