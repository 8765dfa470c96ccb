"""The ledger: entries are only inserted, each under a unique idempotency key, and the account's cached
balance moves in the same transaction. A duplicate (a retry, a redelivered message, a second
reconciler) finds its key taken and moves nothing.

Functions take a connection or session and never commit: the caller's unit of work does.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import sqlmodel
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import Account
from app.billing.models import EntryKind, LedgerEntry
from app.billing.money import format_usd
from app.db import utcnow
from app.errors import InsufficientQuota, InvalidRequest

LEDGER = SQLModel.metadata.tables[LedgerEntry.__tablename__]
ACCOUNTS = SQLModel.metadata.tables[Account.__tablename__]


def entry(
    account_id: str,
    kind: EntryKind,
    amount: int,
    key: str,
    *,
    job_id: str | None = None,
    model: str | None = None,
    reason: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "kind": kind.value,
        "amount": amount,
        "idempotency_key": key,
        "job_id": job_id,
        "model": model,
        "reason": reason,
        "created_at": at or utcnow(),
    }


async def post_entries(
    conn: AsyncConnection, entries: list[dict[str, Any]], *, guard: bool = False
) -> list[dict[str, Any]]:
    """Insert the entries whose keys are new and move the balances by exactly those; returns them.
    With `guard`, a debit the balance cannot cover raises InsufficientQuota (the caller rolls back)."""
    if not entries:
        return []
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(LEDGER)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(LEDGER.c.idempotency_key)
    )
    # "INSERT … ON CONFLICT DO NOTHING RETURNING idempotency_key" names exactly the rows that went in.
    # All rows in one call: SQLAlchemy's "insertmanyvalues" sends them as multi-row INSERTs (one
    # statement per ~thousands of rows), where a statement per row cost a database round trip each
    # (with aiosqlite, a thread hop each) on every job-log batch.
    result = await conn.execute(stmt, entries)
    inserted: set[str] = set(result.scalars().all())
    posted = [e for e in entries if e["idempotency_key"] in inserted]
    deltas: dict[str, int] = defaultdict(int)
    for e in posted:
        deltas[e["account_id"]] += e["amount"]
    # Sorted, so concurrent batches lock account rows in the same order (no deadlocks).
    for account_id in sorted(deltas):
        delta = deltas[account_id]
        if not delta:
            continue
        stmt = update(ACCOUNTS).where(ACCOUNTS.c.id == account_id).values(balance=ACCOUNTS.c.balance + delta)
        if guard and delta < 0:
            stmt = stmt.where(ACCOUNTS.c.balance >= -delta)
        result = await conn.execute(stmt)
        if guard and delta < 0 and result.rowcount != 1:
            raise InsufficientQuota(
                f"Insufficient balance: this request may cost up to {format_usd(-delta)}. Top up your credits."
            )
    return posted


async def post(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Post one entry in the session's transaction; False if its key was already used."""
    return bool(await post_entries(await session.connection(), [row]))


async def balance(session: AsyncSession, account_id: str) -> int:
    account = await session.get(Account, account_id)
    if account is None:
        raise InvalidRequest(f"No account {account_id!r}.", param="account")
    await session.refresh(account)
    return account.balance


async def ledger_sum(session: AsyncSession, account_id: str) -> int:
    conn = await session.connection()
    total = (
        await conn.execute(select(func.coalesce(func.sum(LEDGER.c.amount), 0)).where(LEDGER.c.account_id == account_id))
    ).scalar_one()
    return int(total)


async def verify(session: AsyncSession) -> list[tuple[str, int, int]]:
    """Accounts whose cached balance differs from the sum of their ledger: (id, cached, sum)."""
    conn = await session.connection()
    sums = (
        select(LEDGER.c.account_id, func.sum(LEDGER.c.amount).label("total")).group_by(LEDGER.c.account_id).subquery()
    )
    rows = await conn.execute(
        select(ACCOUNTS.c.id, ACCOUNTS.c.balance, func.coalesce(sums.c.total, 0)).select_from(
            ACCOUNTS.outerjoin(sums, sums.c.account_id == ACCOUNTS.c.id)
        )
    )
    return [(r[0], int(r[1]), int(r[2])) for r in rows if int(r[1]) != int(r[2])]


async def entries_for_job(session: AsyncSession, job_id: str) -> list[LedgerEntry]:
    stmt = sqlmodel.select(LedgerEntry).where(LedgerEntry.job_id == job_id).order_by(sqlmodel.col(LedgerEntry.id))
    return list((await session.exec(stmt)).all())
