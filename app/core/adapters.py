"""The one module that reaches into private internals of a library, each for a measured benefit.

Everything else in app/, workers/ and storage/ uses public APIs only (tests/test_private_apis.py
greps for reach-ins elsewhere). Each reach-in below says what it relies on and the figure that pays
for it; `check_internals()` names what the installed libraries must still have, and
tests/core/test_adapters.py fails loudly, listing it, when a new release lost any of it (the
versions are pinned in constraints.txt, so that shows on an upgrade, not in production).

1. `InlineConnection` (aiosqlite `_execute`, `_running`, `_connection`, `_thread`): SQLite statements
   run on the event loop thread. Select + update + commit through SQLAlchemy: 1,441 → 540 µs of CPU
   per transaction; the jobs bench: worker CPU per job 29 → 23 ms, web 4.9 → 3.5 ms per submission,
   queue-to-start p50 5.5 → 2.6 s (commit b9322d9).
2. `redis_error_reply` (redis-py's private `redis._parsers.base.BaseParser.parse_error`): the
   pipelining admission client (app/billing/limits/pipelined.py) raises redis-py's own exceptions
   for error replies (NoScriptError drives the script reload). That client took the web process's
   Redis code from 13-22 % to 4-7 % of the samples; CPU per chat request, median 1.77 → 1.35 ms
   (commit 727eff0).
3. `hiredis_packing` (overrides redis-py's asyncio `Connection.pack_command`): redis-py packs in
   Python on asyncio even with hiredis installed; hiredis packing took the admission from ~400 to
   ~230 µs of CPU per admit (commit 2c0ba64).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiosqlite
import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio.connection import Connection as RedisConnection
from redis.exceptions import DataError
from redis.utils import HIREDIS_AVAILABLE

log = logging.getLogger("heytoken.db")

# -- 1. SQLite on the event loop -------------------------------------------------------------------

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


# -- 2. redis-py's exceptions for the pipelining client's error replies ------------------------------

redis_error_reply: Callable[[str], Exception] = BaseParser.parse_error
"""An error reply's text → the redis-py exception it means (ResponseError, NoScriptError, …)."""


# -- 3. hiredis packing on redis-py's asyncio connections --------------------------------------------


def hiredis_packing(cls: type[Any]) -> type[Any]:
    """redis-py's asyncio connections pack commands in Python even when hiredis is installed (only its
    sync client uses hiredis to pack); this subclass packs the way that sync client does. Measured: the
    pure-Python packing was the biggest piece of the admission's CPU (EVALSHA with 24 arguments)."""
    if not HIREDIS_AVAILABLE:
        return cls

    def pack_command(self: Any, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            pass
        # hiredis takes str, bytes, int and float only; redis-py also sends bytearray and memoryview.
        args = tuple(bytes(arg) if isinstance(arg, bytearray | memoryview) else arg for arg in args)
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            raise DataError(exc) from exc

    return type(f"HiredisPacking{cls.__name__}", (cls,), {"pack_command": pack_command})


# -- what the installed libraries must still have ----------------------------------------------------


def check_internals() -> list[str]:
    """What this module relies on and the installed libraries no longer have (empty: all there)."""
    missing: list[str] = []
    execute = getattr(aiosqlite.Connection, "_execute", None)
    if not inspect.iscoroutinefunction(execute):
        missing.append("aiosqlite.Connection._execute (a coroutine method)")
    else:
        params = list(inspect.signature(execute).parameters)
        if params[:2] != ["self", "fn"]:
            missing.append(f"aiosqlite.Connection._execute(self, fn, *args, **kwargs), found {params}")
    probe = aiosqlite.Connection(functools.partial(sqlite3.connect, ":memory:"), iter_chunk_size=64)
    for name in ("_running", "_connection", "_thread"):
        if not hasattr(probe, name):
            missing.append(f"aiosqlite.Connection().{name}")
    if not callable(getattr(BaseParser, "parse_error", None)):
        missing.append("redis._parsers.base.BaseParser.parse_error")
    pack = getattr(RedisConnection, "pack_command", None)
    if not callable(pack) or list(inspect.signature(pack).parameters) != ["self", "args"]:
        missing.append("redis.asyncio.connection.Connection.pack_command(self, *args)")
    return missing
