"""The ledger: entries are only inserted, each under a unique idempotency key, and the account's cached
balance moves in the same transaction. A duplicate (a retry, a redelivered message, a second
reconciler) finds its key taken and moves nothing.

Functions take a connection or session and never commit: the caller's unit of work does.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from typing import Any

import sqlmodel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import Account
from app.billing.models import EntryKind, LedgerEntry
from app.core.db import DriverSQL, driver_sql, utcnow
from app.core.errors import InsufficientQuota, InvalidRequest
from app.core.money import format_usd

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
    sql = driver_sql(conn.dialect)
    inserted = await _insert_new(conn, sql, entries)
    posted: list[dict[str, Any]] = []
    for e in entries:
        # discard, not a lookup: a key twice in one batch went in once (the first), so counts once.
        if e["idempotency_key"] in inserted:
            inserted.discard(e["idempotency_key"])
            posted.append(e)
    deltas: dict[str, int] = defaultdict(int)
    for e in posted:
        deltas[e["account_id"]] += e["amount"]
    await _move_balances(conn, sql, deltas, guard)
    return posted


ENTRY_COLUMNS = ("account_id", "kind", "amount", "idempotency_key", "job_id", "model", "reason", "created_at")


@functools.lru_cache(maxsize=64)
def _insert_sql(sql: DriverSQL, rows: int) -> str:
    # "INSERT … ON CONFLICT DO NOTHING RETURNING idempotency_key" names exactly the rows that went in.
    key = sql.quote("idempotency_key")
    return (
        f"INSERT INTO {sql.quote(LEDGER.name)} ({sql.names(ENTRY_COLUMNS)}) {sql.values(len(ENTRY_COLUMNS), rows)}"
        f" ON CONFLICT ({key}) DO NOTHING RETURNING {key}"
    )


async def _insert_new(conn: AsyncConnection, sql: DriverSQL, entries: list[dict[str, Any]]) -> set[str]:
    """Insert the entries whose keys are free; returns those keys.

    Multi-row INSERTs, as SQLAlchemy's "insertmanyvalues" sent them (a statement per row would cost a
    round trip each, with aiosqlite a thread hop each), but with the values flattened into one tuple
    for the driver: the Core path's per-row, per-column parameter processing is skipped."""
    timestamp = sql.timestamp
    inserted: set[str] = set()
    async for chunk in sql.slices(entries, len(ENTRY_COLUMNS)):
        params: list[Any] = []
        for e in chunk:
            params += (
                e["account_id"],
                e["kind"],
                e["amount"],
                e["idempotency_key"],
                e["job_id"],
                e["model"],
                e["reason"],
                timestamp(e["created_at"]),
            )
        inserted.update(row[0] for row in await sql.run(conn, _insert_sql(sql, len(chunk)), tuple(params)))
    return inserted


async def _move_balances(conn: AsyncConnection, sql: DriverSQL, deltas: dict[str, int], guard: bool) -> None:
    # Sorted, so concurrent batches lock account rows in the same order (no deadlocks); executemany
    # runs them in that order.
    moves = [(delta, account_id) for account_id, delta in sorted(deltas.items()) if delta]
    if not moves:
        return
    if not guard:
        await sql.run(conn, _move_sql(sql), moves)
        return
    for delta, account_id in moves:
        if delta > 0:
            await sql.run(conn, _move_sql(sql), (delta, account_id))
        elif not await sql.run(conn, _move_sql(sql, guarded=True), (delta, account_id, -delta)):
            raise InsufficientQuota(
                f"Insufficient balance: this request may cost up to {format_usd(-delta)}. Top up your credits."
            )


@functools.lru_cache(maxsize=8)
def _move_sql(sql: DriverSQL, *, guarded: bool = False) -> str:
    """`balance += ?` for one account; guarded, only if the balance covers the (negative) delta, and
    then it returns the account's id when it moved it."""
    balance = sql.quote("balance")
    stmt = f"UPDATE {sql.quote(ACCOUNTS.name)} SET {balance} = {balance} + {sql.param(1)}"
    stmt += f" WHERE {sql.quote('id')} = {sql.param(2)}"
    return f"{stmt} AND {balance} >= {sql.param(3)} RETURNING {sql.quote('id')}" if guarded else stmt


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
