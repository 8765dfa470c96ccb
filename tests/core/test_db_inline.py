"""SQLite through InlineConnection: calls run on the event loop's thread, and a writer that finds the
write lock taken waits for it by sleeping on the loop (the loop keeps serving), then goes through."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from app.core.adapters import InlineConnection
from app.core.db import create_engine
from app.core.settings import Settings


def _settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, var_dir=tmp_path, database_url="")  # type: ignore[call-arg]


async def test_statements_run_on_the_loop_thread(tmp_path: Path) -> None:
    engine = create_engine(_settings(tmp_path))
    try:
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert isinstance(raw, InlineConnection)
            seen: list[int] = []
            await raw.create_function("whose_thread", 0, lambda: seen.append(threading.get_ident()) or 1)
            await conn.execute(text("SELECT whose_thread()"))
        assert seen == [threading.get_ident()]
    finally:
        await engine.dispose()


async def test_a_writer_waits_for_the_lock_without_blocking_the_loop(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)"))
            await conn.execute(text("INSERT INTO counter VALUES (1, 0)"))
        # Another process's writer, as far as SQLite can tell: its own connection holds the write lock.
        holder = sqlite3.connect(settings.var_dir / "heytoken.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE counter SET n = n + 10 WHERE id = 1")

        async def write() -> None:
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))

        writer = asyncio.create_task(write())
        ticks = 0
        deadline = time.monotonic() + 5
        while ticks < 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
            ticks += 1
        assert ticks == 20, "the event loop was blocked while the writer waited"
        assert not writer.done(), "the writer went through while another connection held the lock"

        holder.execute("COMMIT")
        holder.close()
        await asyncio.wait_for(writer, timeout=5)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT n FROM counter"))).scalar_one() == 11
    finally:
        await engine.dispose()


async def test_other_operational_errors_are_not_retried(tmp_path: Path) -> None:
    engine = create_engine(_settings(tmp_path))
    try:
        async with engine.connect() as conn:
            started = time.monotonic()
            with pytest.raises(Exception, match="no such table"):
                await conn.execute(text("SELECT * FROM missing"))
            assert time.monotonic() - started < 1
    finally:
        await engine.dispose()
