"""The job log's pending records in Redis, so that any web process answers GET /v1/jobs/{id} at once.

Off by default (`job_log_preview`): with one web process the recorder's own pending records answer
(app/jobs/pending.py). With several behind a load balancer, the GET may reach a process that did not
serve the request, and its row is written only at the next flush. Then each record is also put in
Redis, off the hot path: a background task sends everything recorded since its last round trip in one
pipeline, and deletes the entries of rows the database has taken in the same queue (so a delete never
overtakes its set). Best effort: with Redis unreachable a batch is dropped (the row still comes).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, cast

import msgspec
from redis.asyncio import Redis

from app.core.db import utcnow
from app.core.tasks import Loop
from app.jobs.records import JOB_COLUMNS, JobRecord

log = logging.getLogger("heytoken.jobs.preview")

TTL_MS = 600_000
"""An entry outlives its row's write by far (it is deleted then); the TTL only bounds a lost delete."""


class PreviewRow(msgspec.Struct, array_like=True, omit_defaults=True):
    """The columns GET /v1/jobs/{id} shows (app.jobs.recorder.JOB_COLUMNS), compact."""

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
    created_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    hold_amount: int | None = None
    cost: int | None = None
    billing_state: str | None = None
    cache_status: str | None = None
    cache_saved: int | None = None


def row_of(rec: JobRecord) -> PreviewRow:
    row = PreviewRow(*(getattr(rec, name) for name in JOB_COLUMNS))
    row.completed_at = row.completed_at or utcnow()  # as the job log will write it
    return row


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(PreviewRow).decode


class JobPreview:
    def __init__(self, redis: Redis, key: Callable[[str], str]) -> None:
        self._redis = redis
        self._key = key
        self._queue: list[tuple[str, bytes | None]] = []
        # Woken by every put; a failed send was warned about in `send` (its entries are dropped).
        self._loop = Loop("job-preview", self.send, None, on_error=lambda exc: None)
        self._warned_at = -float("inf")

    def put(self, rec: JobRecord) -> None:
        """No I/O: queued for the next pipeline."""
        self._queue.append((rec.id, _encode(row_of(rec))))
        self._loop.wake()

    def forget(self, job_ids: list[str]) -> None:
        """The rows of these jobs are written: their entries go (after any set still queued)."""
        self._queue.extend((job_id, None) for job_id in job_ids)
        self._loop.wake()

    async def find(self, job_id: str) -> PreviewRow | None:
        try:
            raw = await self._redis.get(self._key(job_id))
        except Exception as exc:  # the database still has the row, or soon will
            self._warn("find", exc)
            return None
        return None if raw is None else _decode(cast(bytes, raw))

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def send(self) -> None:
        """One pipeline with everything queued, in order."""
        batch, self._queue = self._queue, []
        if not batch:
            return
        pipe = self._redis.pipeline(transaction=False)
        for job_id, value in batch:
            if value is None:
                pipe.delete(self._key(job_id))
            else:
                pipe.set(self._key(job_id), value, px=TTL_MS)
        try:
            await pipe.execute()
        except Exception as exc:
            self._warn(f"send entries={len(batch)} (dropped)", exc)
            raise

    def _warn(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at >= 60:
            self._warned_at = now
            log.warning("jobs.preview_failed %s error=%s", what, type(exc).__name__)
