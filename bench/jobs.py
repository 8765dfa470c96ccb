"""The job scenario: submit video jobs to the local provider and watch a worker run them.

Written against the OpenAI Videos API (POST /v1/videos, GET /v1/videos/{id}); it is skipped, with the
reason, while the gateway has no videos API, no local video model or no worker line in the Procfile.
Queue-to-start comes from the jobs table (`started_at` − `created_at`) when that column exists.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

TERMINAL = {"completed", "failed", "cancelled"}


@dataclass
class JobsOutcome:
    skipped: str | None = None
    submitted: int = 0
    submit_errors: int = 0
    submit_rate: float = 0.0
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
    base: str, headers: dict[str, str], model: str, count: int, rate: float, poll_seconds: float
) -> tuple[list[str], JobsOutcome]:
    outcome = JobsOutcome()
    ids: list[str] = []
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

        async def submit(i: int) -> None:
            body = {"model": model, "prompt": f"bench job {i}", "seconds": "4"}
            try:
                async with session.post(f"{base}/v1/videos", json=body) as response:
                    data = await response.json(content_type=None)
                    if response.status == 200 and isinstance(data, dict) and "id" in data:
                        ids.append(data["id"])
                    else:
                        outcome.submit_errors += 1
            except aiohttp.ClientError:
                outcome.submit_errors += 1

        started = time.perf_counter()
        tasks = []
        for i in range(count):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(submit(i)))
        await asyncio.gather(*tasks)
        outcome.submitted = len(ids)
        outcome.submit_rate = count / (time.perf_counter() - started)

        pending = set(ids)
        statuses: dict[str, str] = {}
        deadline = time.perf_counter() + poll_seconds

        async def poll(video_id: str) -> None:
            async with session.get(f"{base}/v1/videos/{video_id}") as response:
                data = await response.json(content_type=None)
                status = str(data.get("status", "")) if isinstance(data, dict) else ""
                if status in TERMINAL:
                    statuses[video_id] = status
                    pending.discard(video_id)

        while pending and time.perf_counter() < deadline:
            await asyncio.gather(*(poll(v) for v in list(pending)[:500]), return_exceptions=True)
            if pending:
                await asyncio.sleep(0.2)
        outcome.completed = sum(1 for s in statuses.values() if s == "completed")
        outcome.failed = sum(1 for s in statuses.values() if s != "completed")
        outcome.unfinished = len(pending)
    return ids, outcome


def timings_from_db(database_url: str, ids: list[str], outcome: JobsOutcome) -> None:
    """Queue-to-start and throughput from the jobs table, if it records when a job started."""
    from sqlalchemy import MetaData, Table, select
    from sqlalchemy.ext.asyncio import create_async_engine

    async def read() -> list[Any] | None:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                jobs = await conn.run_sync(lambda c: Table("jobs", MetaData(), autoload_with=c))
                if "started_at" not in jobs.c:
                    outcome.queue_to_start_note = (
                        f"the jobs table has no started_at column ({', '.join(jobs.c.keys())})"
                    )
                    return None
                stmt = select(jobs.c.created_at, jobs.c.started_at, jobs.c.completed_at).where(jobs.c.id.in_(ids))
                return list((await conn.execute(stmt)).all())
        finally:
            await engine.dispose()

    rows = asyncio.run(read()) if ids else None
    if not rows:
        return
    waits = sorted((r.started_at - r.created_at).total_seconds() * 1000 for r in rows if r.started_at and r.created_at)
    if waits:
        n = len(waits)
        outcome.queue_to_start_ms = {"p50": waits[n // 2], "p99": waits[min(n - 1, int(0.99 * n))], "max": waits[-1]}
    done = [r for r in rows if r.completed_at]
    if done:
        span = (max(r.completed_at for r in done) - min(r.created_at for r in done)).total_seconds()
        if span > 0:
            outcome.completed_per_s_per_worker = len(done) / span / outcome.workers
