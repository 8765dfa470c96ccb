"""The job scenario: submit video jobs to the local provider and watch a worker run them.

Written against the OpenAI Videos API (POST /v1/videos, GET /v1/videos/{id}); it is skipped, with the
reason, while the gateway has no videos API, no local video model or no worker line in the Procfile.
The jobs are watched in the jobs table, not polled through the API (which would load the web process
under test): queue-to-start is `started_at` − `created_at` when that column exists, else the time a
job is first seen out of `queued` (read every 10 ms). Completed per second per worker process comes
from `completed_at` − `created_at` over the whole batch. One unmeasured job runs first, so the batch
measures a running worker, not its start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.loadgen import percentiles

TERMINAL = {"completed", "failed", "cancelled"}
WATCH_INTERVAL = 0.01
FINISH_WATCH_INTERVAL = 0.2
"""How often the table is read when `started_at` gives the start times and the reads only learn which
jobs ended: read every 10 ms, the batch's growing set of rows cost this driver, which shares the web
process's core, a good part of that core at 200 jobs/s (and the web's delay counts in queue-to-start)."""


@dataclass
class JobsOutcome:
    skipped: str | None = None
    submitted: int = 0
    submit_errors: int = 0
    submit_rate: float = 0.0
    submit_latency_ms: dict[str, float] | None = None
    completed: int = 0
    failed: int = 0
    unfinished: int = 0
    queue_to_start_ms: dict[str, float] | None = None
    queue_to_start_note: str = ""
    completed_per_s_per_worker: float | None = None
    workers: int = 1

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def find_video_model(base: str, headers: dict[str, str]) -> tuple[str | None, str | None]:
    """(model, None) or (None, why the scenario cannot run)."""
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{base}/v1/models") as response:
            models = [m["id"] for m in (await response.json()).get("data", [])]
        video_models = [m for m in models if "video" in m or m.startswith(("sora", "local-vid"))]
        async with session.get(f"{base}/v1/videos/video_probe_missing") as response:
            if response.status == 404:
                body = await response.json(content_type=None)
                if "Unknown path" in str(body.get("error", {}).get("message", "")):
                    return None, "the gateway has no videos API yet (issue 3 is not merged)"
        if not video_models:
            return None, f"no video model in GET /v1/models ({', '.join(models)})"
        return video_models[0], None


async def run_jobs(
    base: str,
    headers: dict[str, str],
    model: str,
    count: int,
    rate: float,
    poll_seconds: float,
    database_url: str,
    account_id: str,
    workers: int = 1,
    on_batch_start: Callable[[], None] | None = None,
) -> JobsOutcome:
    """Submit `count` jobs at `rate` through the API; watch them in the jobs table (no polling load on
    the web process): when each left `queued`, when it finished."""
    from sqlalchemy import MetaData, Table, select
    from sqlalchemy.ext.asyncio import create_async_engine

    outcome = JobsOutcome(workers=workers)
    ids: list[str] = []
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        jobs = await conn.run_sync(lambda c: Table("jobs", MetaData(), autoload_with=c))
    has_started_at = "started_at" in jobs.c
    started_seen: dict[str, float] = {}  # job id → wall clock when first seen out of `queued`
    finished: dict[str, str] = {}
    submitting = True
    batch: set[str] = set()
    latencies: list[float] = []

    async def watch() -> None:
        stmt = select(jobs.c.id, jobs.c.status).where(
            jobs.c.account_id == account_id, jobs.c.kind == "video", jobs.c.status != "queued"
        )
        while submitting or len(finished) < len(ids):
            async with engine.connect() as conn:
                rows = (await conn.execute(stmt)).all()
            now = time.time()
            for job_id, status in rows:
                if job_id not in batch:
                    continue  # the warm-up job
                started_seen.setdefault(job_id, now)
                if status in TERMINAL:
                    finished[job_id] = status
            await asyncio.sleep(FINISH_WATCH_INTERVAL if has_started_at else WATCH_INTERVAL)

    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

        async def submit(i: int) -> None:
            body = {"model": model, "prompt": f"bench job {i}", "seconds": "4"}
            sent = time.perf_counter()
            try:
                async with session.post(f"{base}/v1/videos", json=body) as response:
                    data = await response.json(content_type=None)
                    latencies.append((time.perf_counter() - sent) * 1000)
                    if response.status == 200 and isinstance(data, dict) and "id" in data:
                        ids.append(data["id"])
                        batch.add(data["id"])
                    else:
                        outcome.submit_errors += 1
            except aiohttp.ClientError:
                outcome.submit_errors += 1

        await warm_up(session, base, model, poll_seconds)
        if on_batch_start is not None:
            on_batch_start()
        watcher = asyncio.create_task(watch())
        started = time.perf_counter()
        tasks = []
        for i in range(count):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(submit(i)))
        await asyncio.gather(*tasks)
        outcome.submit_rate = count / (time.perf_counter() - started)
        outcome.submit_latency_ms = percentiles(latencies)
        outcome.submitted = len(ids)
        submitting = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watcher, timeout=poll_seconds)

    mine = set(ids)
    outcome.completed = sum(1 for j, st in finished.items() if j in mine and st == "completed")
    outcome.failed = sum(1 for j, st in finished.items() if j in mine and st != "completed")
    outcome.unfinished = len(mine) - outcome.completed - outcome.failed
    columns = [jobs.c.id, jobs.c.created_at, jobs.c.completed_at]
    if has_started_at:
        columns.append(jobs.c.started_at)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(*columns).where(jobs.c.id.in_(ids)))).all() if ids else []
    await engine.dispose()

    waits = []
    for row in rows:
        created = _utc(row.created_at)
        if has_started_at and row.started_at is not None:
            waits.append((_utc(row.started_at) - created).total_seconds() * 1000)
        elif row.id in started_seen:
            waits.append((started_seen[row.id] - created.timestamp()) * 1000)
    outcome.queue_to_start_ms = percentiles(waits)
    outcome.queue_to_start_note = (
        "(from the jobs table's started_at)"
        if has_started_at
        else f"(first seen out of 'queued' in the jobs table, read every {WATCH_INTERVAL * 1000:.0f} ms: "
        "the jobs table records no start time)"
    )
    done = [r for r in rows if r.completed_at is not None]
    if done:
        span = (max(_utc(r.completed_at) for r in done) - min(_utc(r.created_at) for r in done)).total_seconds()
        if span > 0:
            outcome.completed_per_s_per_worker = len(done) / span / outcome.workers
    return outcome


async def warm_up(session: aiohttp.ClientSession, base: str, model: str, wait_seconds: float) -> None:
    """One job, submitted and awaited (through the API) before the batch: the worker is up and warm."""
    async with session.post(f"{base}/v1/videos", json={"model": model, "prompt": "warm-up", "seconds": "4"}) as r:
        job_id = (await r.json(content_type=None)).get("id")
    deadline = time.perf_counter() + wait_seconds
    while job_id and time.perf_counter() < deadline:
        async with session.get(f"{base}/v1/videos/{job_id}") as response:
            if (await response.json(content_type=None)).get("status") in TERMINAL:
                return
        await asyncio.sleep(0.05)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
