"""SQLite on the event loop: the first of the adapters' measured reach-ins (see the package's docstring),
imported by an engine on SQLite only."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiosqlite

log = logging.getLogger("heytoken.db")

CHECKPOINT_EVERY = 100
"""Commits of a process's connections to one database file between two checkpoints (a commit of a job
step writes a few pages; SQLite's own default is every 1,000 pages of log)."""
BUSY_SECONDS = 30
"""How long a statement waits for another connection's write lock before it fails."""
_BUSY_CODES = frozenset({5, 261})  # SQLITE_BUSY, SQLITE_BUSY_RECOVERY; never SQLITE_BUSY_SNAPSHOT (517)
_BUSY_FIRST_PAUSE = 0.0005
_BUSY_MAX_PAUSE = 0.02


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run on the event loop's thread, not on its own.

    aiosqlite hands every call (cursor, execute, fetch, close, commit: SQLAlchemy's adapter makes four
    or five per statement) to its thread and back through the event loop's self-pipe: about 70 µs of
    CPU a hop, where the SQLite work of a small statement is 5-20 µs. In a profile of the job worker,
    those hops were ~40 % of the samples. So the calls run here, at once. What the thread gave in return
    was that a writer waiting for another process's write lock did not block the loop; here the lock is
    tried without waiting (busy_timeout 0) and the wait is an `asyncio.sleep` between tries, so the
    loop never blocks on a lock. What still runs on the loop is SQLite's own work, which on this
    embedded default is small statements on a local file (WAL, synchronous=NORMAL: no fsync per
    commit), commits included since issue #23 (the hop of each commit to the thread and back was ~10 %
    of a job step's CPU). The checkpoint, which copies the log into the file and syncs it (~10 ms),
    still runs on the thread: SQLite's own, run by whichever commit passes 1,000 pages of log, is off,
    and every CHECKPOINT_EVERY commits of the process's connections to the file, one runs there.

    A retried call is safe: a statement refused with SQLITE_BUSY did nothing (sqlite3 opens a write
    transaction at its first write, so the refusal comes before anything is written), and a COMMIT
    refused with it leaves the transaction open to commit again (SQLite's documented behaviour).
    SQLITE_BUSY_SNAPSHOT (a read snapshot gone stale) is not retried: it can never succeed.

    Overrides aiosqlite's private `_execute` (aiosqlite is pinned in constraints.txt; on SQLite the whole
    test suite runs through this class). The thread still opens and closes the sqlite3 connection, so it
    is made with check_same_thread=False."""

    commits: Iterator[int]
    """Numbers the commits of every connection to this database in this process (shared by the
    engine's connections, see `connect_inline`), so the log is checkpointed every CHECKPOINT_EVERY
    commits of the process, not of each of its pooled connections."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        pause = _BUSY_FIRST_PAUSE
        deadline: float | None = None
        while True:
            try:
                result = fn(*args, **kwargs)
                if fn == self._connection.commit and next(self.commits) % CHECKPOINT_EVERY == 0:
                    await self._checkpoint()
                return result
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", None) not in _BUSY_CODES:
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + BUSY_SECONDS
                elif now >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, _BUSY_MAX_PAUSE)

    async def _checkpoint(self) -> None:
        """Copy the write-ahead log into the database file, on aiosqlite's thread: the disk work
        (and its sync) never holds the event loop. PASSIVE: it takes no lock and waits for no one;
        what a reader still needs stays for the next one."""
        assert self._connection is not None
        try:
            await super()._execute(_checkpoint_passive, self._connection)  # type: ignore[no-untyped-call]
        except sqlite3.Error:
            log.warning("sqlite.checkpoint_failed", exc_info=True)


async def connect_inline(database: str, commits: Iterator[int] | None = None) -> InlineConnection:
    """A connection to `database`; `commits` numbers the commits of all the connections given it (one
    per engine; one of its own when not given), for the checkpoint."""
    connection = InlineConnection(
        functools.partial(sqlite3.connect, database, timeout=0, check_same_thread=False), iter_chunk_size=64
    )
    connection.commits = itertools.count(1) if commits is None else commits
    connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connections
    await connection
    # Commits run on the loop (InlineConnection): SQLite's own checkpoint, which a commit runs once
    # the log passes 1,000 pages, would run there too. This connection checkpoints on its thread instead.
    await (await connection.execute("PRAGMA wal_autocheckpoint=0")).close()
    return connection


def _checkpoint_passive(connection: sqlite3.Connection) -> None:
    # Read to the end: a statement left with rows to read would make the next commit fail ("SQL
    # statements in progress").
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
