"""The job log's write path in isolation: CPU µs per row and per flush of `JobRecorder` (job rows plus
their billing captures, as the gateway wires it), no server, no network.

    python -m bench.joblog [--database-url URL] [--rows N] [--batch B ...]

CPU is the whole process's (`time.process_time`: the event loop and aiosqlite's worker thread), so
the figures hold on a busy machine where wall-clock ones do not. A last round per batch size measures
the longest the event loop was held at a time during the flush (wall clock). Without `--database-url` it runs on
a fresh SQLite file; a PostgreSQL URL must name a database it may migrate and write into.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert

from app.billing.ledger import ACCOUNTS
from app.cli.runner import migrate
from app.core.db import create_engine
from app.core.ids import new_id
from app.core.settings import Settings
from app.jobs.capture import capture_records
from app.jobs.models import JobKind, JobStatus
from app.jobs.recorder import JobRecorder
from app.jobs.records import JobRecord


def chat_record(account_id: str, key_id: str, n: int) -> JobRecord:
    """What app/chat/service.py records for a billed, successful chat completion."""
    now = dt.datetime.now(dt.UTC)
    return JobRecord(
        id=new_id("chatcmpl-"),  # time-ordered, as the gateway's: appends to the indexes
        kind=JobKind.CHAT,
        status=JobStatus.COMPLETED,
        account_id=account_id,
        api_key_id=key_id,
        model="bench-chat",
        channel_id="ch_bench",
        stream=False,
        usage={"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42},
        latency_ms=3 + n % 7,
        ttft_ms=None,
        http_status=200,
        attempts_log=[{"channel": "ch_bench", "outcome": "ok", "status": 200, "ms": 3}],
        created_at=now,
        completed_at=now,
        prompt_tokens=12,
        completion_tokens=30,
        hold_amount=2_000,
        cost=1_250,
    )


async def run(settings: Settings, rows: int, batches: list[int], rounds: int) -> None:
    engine = create_engine(settings)
    account_id = f"acct_{uuid.uuid4().hex[:12]}"
    async with engine.begin() as conn:
        await conn.execute(insert(ACCOUNTS).values(id=account_id, name=account_id, balance=10**12))
    try:
        for batch in batches:
            recorder = JobRecorder(
                engine, flush_ms=60_000, batch_size=batch, max_pending=rows, on_write=capture_records
            )
            best = float("inf")
            for _ in range(rounds):
                for n in range(rows):
                    recorder.record(chat_record(account_id, "key_bench", n))
                started = time.process_time()
                await recorder.flush()
                best = min(best, time.process_time() - started)
                assert recorder.pending == 0
            flushes = -(-rows // batch)
            stall = await longest_stall(recorder, [chat_record(account_id, "key_bench", n) for n in range(rows)])
            print(
                f"batch {batch:4d}: {1e6 * best / rows:7.1f} µs CPU/row"
                f"  ({1e6 * best / flushes:8.1f} µs CPU/flush, best of {rounds});"
                f" the loop held at most {1e3 * stall:.2f} ms at a time"
            )
    finally:
        await engine.dispose()


async def longest_stall(recorder: JobRecorder, records: list[JobRecord]) -> float:
    """The longest the event loop went without running another task while `records` were flushed:
    what a request arriving during a flush waits before it is even read (wall clock, so noisier)."""
    longest, done = 0.0, False

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0)
            now = time.perf_counter()
            longest, last = max(longest, now - last), now

    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    for rec in records:
        recorder.record(rec)
    await recorder.flush()
    done = True
    await task
    return longest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--batch", type=int, action="append", default=[])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    var_dir = Path(tempfile.mkdtemp(prefix="heytoken-joblog-"))
    settings = Settings(_env_file=None, var_dir=var_dir, database_url=args.database_url)  # type: ignore[call-arg]
    migrate(settings)
    print(f"{settings.resolved_database_url().split(':')[0]}: {args.rows} rows per round")
    asyncio.run(run(settings, args.rows, args.batch or [1, 20, 500], args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
