"""Writes the job rows of synchronous requests (chat, embeddings) off the hot path, in batches.

A request hands its finished record to `record()` (no I/O, no await); a background task inserts the
pending records every `job_log_flush_ms` or as soon as `job_log_batch_size` are waiting. On shutdown
the pending records are flushed. A failing batch is retried; a row the database refuses on its own
(say, its account was deleted meanwhile) is dropped alone, with a log line, not the whole batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from app.db import utcnow
from app.jobs.models import Job

JOBS = SQLModel.metadata.tables[Job.__tablename__]

log = logging.getLogger("heytoken.jobs.recorder")


@dataclass(slots=True)
class JobRecord:
    id: str
    kind: str
    status: str
    account_id: str
    api_key_id: str | None
    model: str
    channel_id: str | None = None
    stream: bool = False
    usage: dict[str, Any] | None = None
    latency_ms: int | None = None
    ttft_ms: int | None = None
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts_log: list[dict[str, Any]] | None = None
    created_at: dt.datetime = field(default_factory=utcnow)
    completed_at: dt.datetime | None = None

    def as_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "account_id": self.account_id,
            "api_key_id": self.api_key_id,
            "model": self.model,
            "channel_id": self.channel_id,
            "stream": self.stream,
            "usage": self.usage,
            "latency_ms": self.latency_ms,
            "ttft_ms": self.ttft_ms,
            "http_status": self.http_status,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "attempts_log": self.attempts_log,
            "created_at": self.created_at,
            "completed_at": self.completed_at or utcnow(),
        }


class JobRecorder:
    RETRIES = 5

    def __init__(self, engine: AsyncEngine, *, flush_ms: int, batch_size: int, max_pending: int) -> None:
        self._engine = engine
        self._interval = flush_ms / 1000
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._pending: list[JobRecord] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.observer: Callable[[JobRecord], None] | None = None
        """Sees every record as it is handed in (the metrics); must not block."""

    def record(self, rec: JobRecord) -> None:
        if self.observer is not None:
            self.observer(rec)
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.error("jobs.recorder.overflow dropped=%d pending=%d", self.dropped, len(self._pending))
            return
        self._pending.append(rec)
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="job-recorder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._batch_size]
            del self._pending[: len(batch)]
            await self._write(batch)

    async def _write(self, batch: list[JobRecord]) -> None:
        rows = [rec.as_row() for rec in batch]
        for attempt in range(self.RETRIES):
            try:
                await self._insert(rows)
                return
            except IntegrityError:
                await self._insert_one_by_one(rows)
                return
            except Exception:
                if attempt == self.RETRIES - 1:
                    log.exception("jobs.recorder.batch_lost rows=%d", len(rows))
                    return
                log.warning("jobs.recorder.batch_retry attempt=%d rows=%d", attempt + 1, len(rows), exc_info=True)
                await asyncio.sleep(0.2 * 2**attempt)

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(JOBS), rows)

    async def _insert_one_by_one(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            try:
                await self._insert([row])
            except IntegrityError as exc:
                log.error("jobs.recorder.row_refused id=%s error=%s", row["id"], exc.orig)
