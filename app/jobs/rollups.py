"""Usage rollups: the job log summed by account × UTC day × model × latency bucket, added to by the job
recorder in the transaction that writes the rows (so a row and its share of the rollup commit together),
and never touched by retention. GET /v1/usage reads them (app/jobs/usage.py).

The latency buckets are a log-scale histogram: bucket `b` holds latencies in [GROWTH^b − 1, GROWTH^(b+1) − 1)
ms, so a percentile read from the counts is within about GROWTH/2 − ½ (±7 %) of the true one, in at most
~100 buckets up to ten minutes. Every column is a sum, so writers in several processes add to the same
row with one upsert each and never read it first.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db import DriverSQL
from app.jobs.models import USAGE_ROLLUPS
from app.jobs.records import JobRecord

GROWTH = 1.15
NO_LATENCY = -1
_LOG_GROWTH = math.log(GROWTH)
KEY = ("account_id", "day", "model", "bucket")
SUMS = ("requests", "prompt_tokens", "completion_tokens", "cost")


def bucket_of(latency_ms: int | None) -> int:
    if latency_ms is None or latency_ms < 0:
        return NO_LATENCY
    return int(math.log1p(latency_ms) / _LOG_GROWTH)


def bucket_value(bucket: int) -> float:
    """The latency a bucket stands for: the geometric middle of its range (ms)."""
    return math.sqrt(GROWTH**bucket * GROWTH ** (bucket + 1)) - 1


def day_of(rec: JobRecord) -> str:
    # The UTC day, as the SQL of /v1/usage reads it from the row (created_at is UTC already when it
    # comes from utcnow; an aware datetime in another zone is converted).
    at = rec.created_at
    if at.tzinfo is not dt.UTC and at.utcoffset():
        at = at.astimezone(dt.UTC)
    return f"{at.year:04d}-{at.month:02d}-{at.day:02d}"


def summed(records: Iterable[JobRecord]) -> list[tuple[Any, ...]]:
    """One row of sums per key, in key order (concurrent writers take the rows' locks in one order)."""
    sums: dict[tuple[str, str, str, int], list[int]] = {}
    for rec in records:
        key = (rec.account_id, day_of(rec), rec.model, bucket_of(rec.latency_ms))
        row = sums.get(key)
        if row is None:
            row = sums[key] = [0, 0, 0, 0]
        row[0] += 1
        row[1] += rec.prompt_tokens or 0
        row[2] += rec.completion_tokens or 0
        row[3] += rec.cost or 0
    return [(*key, *sums[key]) for key in sorted(sums)]


def upsert_sql(sql: DriverSQL) -> str:
    table = sql.quote(USAGE_ROLLUPS.name)
    adds = ", ".join(f"{sql.quote(c)} = {table}.{sql.quote(c)} + excluded.{sql.quote(c)}" for c in SUMS)
    return (
        f"INSERT INTO {table} ({sql.names((*KEY, *SUMS))}) {sql.values(len(KEY) + len(SUMS), 1)}"
        f" ON CONFLICT ({sql.names(KEY)}) DO UPDATE SET {adds}"
    )


async def add(conn: AsyncConnection, sql: DriverSQL, statement: str, records: Sequence[JobRecord]) -> None:
    """Add `records` to the rollups, in `conn`'s transaction."""
    rows = summed(records)
    if rows:
        await sql.run(conn, statement, rows)


def percentiles(counts: dict[int, int], wanted: Sequence[float]) -> dict[float, float | None]:
    """Latency percentiles (ms) from bucket counts; buckets of unknown latency are left out."""
    known = sorted((b, n) for b, n in counts.items() if b != NO_LATENCY and n > 0)
    total = sum(n for _, n in known)
    out: dict[float, float | None] = {}
    for p in wanted:
        if not total:
            out[p] = None
            continue
        rank, seen = max(1, math.ceil(p / 100 * total)), 0
        for bucket, n in known:
            seen += n
            if seen >= rank:
                out[p] = round(bucket_value(bucket), 1)
                break
    return out
