"""SQLite through InlineConnection: calls run on the event loop's thread, and a writer that finds the
write lock taken waits for it by sleeping on the loop (the loop keeps serving), then goes through."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event, exc, text

from app.core.adapters.sqlite import CHECKPOINT_EVERY, InlineConnection
from app.core.db import create_engine, driver_sql
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


async def test_commits_run_on_the_loop_and_the_log_is_checkpointed_on_aiosqlites_thread(tmp_path: Path) -> None:
    """Commits are inline too (issue #23), so SQLite's own checkpoint (run by the commit that passes
    1,000 pages of log) is off; every CHECKPOINT_EVERY commits of the engine's connections, one copies
    the log into the file on its thread. Without that the log would only grow."""
    engine = create_engine(_settings(tmp_path))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT)"))
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert isinstance(raw, InlineConnection)
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one() == 0
            threads: list[int] = []
            await raw.create_function("whose_thread", 0, lambda: threads.append(threading.get_ident()) or 1)
            taken = next(raw.commits)  # the engine's commits so far, plus this one number
            # A few hundred pages of log: under SQLite's own threshold, so only ours checkpoints them.
            for _ in range(CHECKPOINT_EVERY - taken % CHECKPOINT_EVERY or CHECKPOINT_EVERY):
                await conn.execute(text("INSERT INTO rows (body) VALUES (:body)"), {"body": "x" * 3000})
                await conn.commit()
            # The next writer after a checkpoint starts the log from its beginning again.
            await conn.execute(text("INSERT INTO rows (body) VALUES (whose_thread())"))
            await conn.commit()
        assert set(threads) == {threading.get_ident()}
        probe = sqlite3.connect(tmp_path / "heytoken.db")
        busy, log_frames, _ = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        probe.close()
        assert busy == 0 and log_frames < 20, f"{log_frames} frames in the log: it was never checkpointed"
    finally:
        await engine.dispose()


async def test_a_process_keeps_its_connections_under_a_workers_concurrency(tmp_path: Path) -> None:
    """A worker runs up to 8 steps at once (WORKER_THREADS): the pool keeps that many connections
    open instead of closing those above SQLAlchemy's default 5 and opening them again for later steps."""
    engine = create_engine(_settings(tmp_path))
    opened: list[object] = []
    event.listen(engine.sync_engine, "connect", lambda dbapi, record: opened.append(dbapi))
    try:

        async def step(gate: asyncio.Event) -> None:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                await gate.wait()

        for _ in range(3):
            gate = asyncio.Event()
            steps = [asyncio.create_task(step(gate)) for _ in range(8)]
            await asyncio.sleep(0.05)
            gate.set()
            await asyncio.gather(*steps)
        assert len(opened) == 8
    finally:
        await engine.dispose()


async def test_the_driver_level_sql_raises_sqlalchemys_classes(tmp_path: Path) -> None:
    """DriverSQL runs statements on aiosqlite directly; its errors still come as SQLAlchemy's classes
    (a refused row is an IntegrityError), with sqlite3's error underneath."""
    engine = create_engine(_settings(tmp_path))
    try:
        async with engine.begin() as conn:
            sql = driver_sql(engine.dialect)
            await sql.run(conn, "CREATE TABLE t (id INTEGER PRIMARY KEY)", ())
            await sql.run(conn, "INSERT INTO t VALUES (?)", (1,))
            with pytest.raises(exc.IntegrityError) as refused:
                await sql.run(conn, "INSERT INTO t VALUES (?)", [(2,), (1,)])
            assert isinstance(refused.value.orig, sqlite3.IntegrityError)
            with pytest.raises(exc.OperationalError):
                await sql.run(conn, "SELEC 1", ())
    finally:
        await engine.dispose()
