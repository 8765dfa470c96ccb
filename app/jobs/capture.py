"""Billing of synchronous requests (chat, embeddings), wired into the job recorder: the capture is
committed with the job row, then the Redis hold is settled."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.billing import ledger
from app.billing.limits.service import Gate
from app.billing.models import HOUSE_ACCOUNT_ID, EntryKind
from app.jobs.recorder import SettleHook
from app.jobs.records import JobRecord


async def capture_records(conn: AsyncConnection, records: list[JobRecord]) -> None:
    await ledger.post_entries(conn, captures(records))


def captures(records: list[JobRecord]) -> list[dict[str, Any]]:
    """One capture per request that cost something, keyed by its job id (so never twice); it never
    exceeds the hold. What the upstream's usage cost beyond the hold is a `loss` of the house."""
    entries = []
    for rec in records:
        at = rec.completed_at or rec.created_at
        if rec.cost:
            entries.append(
                ledger.entry(
                    rec.account_id,
                    EntryKind.CAPTURE,
                    -rec.cost,
                    f"{rec.id}:capture",
                    job_id=rec.id,
                    model=rec.model,
                    at=at,
                )
            )
        if rec.overrun > 0:
            entries.append(
                ledger.entry(
                    HOUSE_ACCOUNT_ID,
                    EntryKind.LOSS,
                    -rec.overrun,
                    f"{rec.id}:loss",
                    job_id=rec.id,
                    model=rec.model,
                    at=at,
                    reason=f"usage beyond the hold of {rec.hold_amount} (account {rec.account_id})",
                )
            )
    return entries


def settler(gate: Gate) -> SettleHook:
    async def settle(records: list[JobRecord]) -> None:
        await gate.settle_many(
            [(rec.admission, _tokens_used(rec), rec.cost or 0, "apply") for rec in records if rec.admission is not None]
        )

    return settle


CACHED = frozenset({"hit", "coalesced"})


def _tokens_used(rec: JobRecord) -> int:
    """What the request counts against its key's tokens per minute: nothing when served from the cache
    (no upstream read or wrote a token for it)."""
    if rec.cache_status in CACHED:
        return 0
    return (rec.prompt_tokens or 0) + (rec.completion_tokens or 0)
