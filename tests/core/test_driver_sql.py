"""Multi-row statements go in slices of a power of two of rows, so a batch of any size uses one of a
few statement texts: each text is a prepared statement in every pooled connection's cache, and one
per batch size held ~6 MB in a web process on PostgreSQL (issue #23)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg
from sqlalchemy.dialects.sqlite.aiosqlite import dialect as aiosqlite

from app.core.db import DriverSQL

WIDTH = 8  # the ledger's columns


async def slice_sizes(sql: DriverSQL, rows: list[int], width: int | None) -> list[list[int]]:
    return [list(part) async for part in sql.slices(rows, width)]


@pytest.mark.parametrize("dialect", [aiosqlite(), asyncpg()], ids=["sqlite", "postgresql"])
async def test_a_batch_of_any_size_uses_a_few_statement_texts(dialect: Any) -> None:
    sql = DriverSQL(dialect)
    sizes_seen: set[int] = set()
    for n in range(0, 301):
        rows = list(range(n))
        parts = await slice_sizes(sql, rows, WIDTH)
        assert [row for part in parts for row in part] == rows  # every row once, in order
        for part in parts:
            assert len(part) & (len(part) - 1) == 0 and len(part) * WIDTH <= sql.max_parameters
        sizes_seen |= {len(part) for part in parts}
    # 1, 2, 4, … up to the slice's cap: 16 on SQLite (rows per turn of the loop), 256 here on PostgreSQL.
    assert sizes_seen == {1 << k for k in range(len(sizes_seen))}
    assert len(sizes_seen) == (5 if sql.sqlite else 9)


async def test_executemany_keeps_the_batch_whole() -> None:
    """Without a width (executemany: one statement text whatever the count) PostgreSQL takes a batch in one."""
    sql = DriverSQL(asyncpg())
    assert [len(part) for part in await slice_sizes(sql, list(range(37)), None)] == [37]
