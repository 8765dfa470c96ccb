"""Billing of asynchronous jobs (images, videos): the hold is a ledger entry written in the
transaction that creates the job; capture and release happen exactly once, decided by a
compare-and-set on the job's `billing_state` (held → captured | released), so overlapping workers,
duplicate messages and the reconciler can never capture or release twice.

After the commit, the caller moves the Redis mirror by the amount returned (`Gate.credit`).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.billing import ledger
from app.billing.models import HOUSE_ACCOUNT_ID, EntryKind
from app.jobs.models import JOBS

HELD, CAPTURED, RELEASED = "held", "captured", "released"


async def hold(conn: AsyncConnection, *, account_id: str, job_id: str, amount: int, model: str | None) -> None:
    """Hold `amount` for the (already flushed) job; raises InsufficientQuota if the balance cannot cover
    it. A free job (amount 0) holds nothing."""
    if amount <= 0:
        return
    await ledger.post_entries(
        conn,
        [ledger.entry(account_id, EntryKind.HOLD, -amount, f"{job_id}:hold", job_id=job_id, model=model)],
        guard=True,
    )
    await conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(hold_amount=amount, billing_state=HELD))


CAPTURE_HOLD = -1
"""`settle(cost=CAPTURE_HOLD)`: the job's price was fixed when it was created, capture exactly the hold."""


async def settle(conn: AsyncConnection, job_id: str, *, cost: int | None) -> tuple[str | None, int]:
    """Capture `cost` and release the rest (`cost=None`: release everything; `CAPTURE_HOLD`: capture the
    hold). Returns (account id, amount to credit the Redis mirror); (None, 0) when the job holds
    nothing or was already settled."""
    state = RELEASED if cost is None or cost == 0 else CAPTURED
    captured = JOBS.c.hold_amount if cost == CAPTURE_HOLD else (cost or 0)
    result = await conn.execute(
        update(JOBS)
        .where(JOBS.c.id == job_id, JOBS.c.billing_state == HELD)
        .values(billing_state=state, cost=captured)
        .returning(JOBS.c.account_id, JOBS.c.hold_amount, JOBS.c.model)
    )
    row = result.first()
    if row is None:
        return None, 0
    account_id, held, model = row[0], int(row[1] or 0), row[2]
    if cost == CAPTURE_HOLD:
        cost = held
    entries = [ledger.entry(account_id, EntryKind.RELEASE, held, f"{job_id}:release", job_id=job_id, model=model)]
    charged = min(cost or 0, held)
    if charged:
        entries.append(
            ledger.entry(account_id, EntryKind.CAPTURE, -charged, f"{job_id}:capture", job_id=job_id, model=model)
        )
    if cost and cost > held:
        # The account is charged at most what it held; the rest is the house's loss.
        await conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(cost=charged))
        entries.append(
            ledger.entry(
                HOUSE_ACCOUNT_ID,
                EntryKind.LOSS,
                held - cost,
                f"{job_id}:loss",
                job_id=job_id,
                model=model,
                reason=f"usage beyond the hold of {held} (account {account_id})",
            )
        )
    await ledger.post_entries(conn, entries)
    return account_id, held - charged
