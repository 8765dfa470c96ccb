"""Telling a database outage from a bug, and logging an outage once per burst.

A database that is down, restarting or refusing connections is not a fault of the request: the answer
is 503 with Retry-After (the client may retry), and the log gets one WARNING line per burst, not an
ERROR traceback per request (which would bury everything else while the outage lasts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc

log = logging.getLogger("heytoken.database")

_DRIVER_MODULES = ("sqlalchemy.", "asyncpg", "aiosqlite", "sqlite3", "app.core.db")
# asyncpg's exceptions by name, so that a process on SQLite never imports asyncpg to test for them.
# 08xxx connection errors, 53xxx out of resources (too many connections), 57xxx operator intervention
# (admin shutdown, crash, cannot connect now, statement timeout), and a connection that went away.
_ASYNCPG_OUTAGES = frozenset(
    {
        "PostgresConnectionError",
        "InsufficientResourcesError",
        "OperatorInterventionError",
        "ConnectionDoesNotExistError",
    }
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (SQLAlchemy's `.orig`) and what caused it, a few levels deep."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 8:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        for nxt in (getattr(item, "orig", None), item.__cause__, item.__context__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def _raised_in_driver(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith(_DRIVER_MODULES):
            return True
        tb = tb.tb_next
    return False


_OUTAGE_CLASSES = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
"""DB-API's own words for "the database, not the statement" (and SQLAlchemy's pool running dry)."""
# sqlite3 raises OperationalError for syntax errors too, so SQLite's faults go by their result code:
# CANTOPEN, BUSY, LOCKED, NOMEM, READONLY, IOERR, FULL, PROTOCOL.
_SQLITE_OUTAGES = frozenset({14, 5, 6, 7, 8, 10, 13, 15})


def _from_sqlite3(exc: BaseException | None) -> bool:
    # By module, as asyncpg's by name: a process on PostgreSQL never imports sqlite3 to test for its errors.
    return type(exc).__module__ == "sqlite3"


def _is_outage(exc: BaseException) -> bool:
    if _from_sqlite3(exc):
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_OUTAGES
    if isinstance(exc, sa_exc.DBAPIError) and _from_sqlite3(exc.orig):
        return exc.connection_invalidated  # else the sqlite3 error (next in the chain) decides
    if isinstance(exc, _OUTAGE_CLASSES):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if any(cls.__module__.startswith("asyncpg") and cls.__name__ in _ASYNCPG_OUTAGES for cls in type(exc).__mro__):
        return True
    # A refused or timed-out connect surfaces as a bare OSError (asyncpg's connect is not wrapped by
    # SQLAlchemy); the same class from the object store or an upstream is not the database's.
    return isinstance(exc, OSError) and _raised_in_driver(exc)


def is_database_outage(exc: BaseException) -> bool:
    """True when `exc` says the database cannot be reached or cannot serve now (not a refused row)."""
    if isinstance(exc, sa_exc.IntegrityError):
        return False
    return any(_is_outage(item) for item in _chain(exc))


class BurstLog:
    """One WARNING per burst: the first failure after `quiet_seconds` without one starts a burst and is
    logged; the rest are counted, and a burst that goes on is reminded of every `repeat_seconds`."""

    def __init__(self, quiet_seconds: float = 30.0, repeat_seconds: float = 300.0) -> None:
        self.quiet_seconds = quiet_seconds
        self.repeat_seconds = repeat_seconds
        self._last_failure = -float("inf")
        self._last_line = -float("inf")
        self._unlogged = 0

    def reset(self) -> None:
        self._last_failure = self._last_line = -float("inf")
        self._unlogged = 0

    def warn(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        new_burst = now - self._last_failure >= self.quiet_seconds
        self._last_failure = now
        if not new_burst and now - self._last_line < self.repeat_seconds:
            self._unlogged += 1
            return
        self._last_line = now
        unlogged, self._unlogged = self._unlogged, 0
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        log.warning(
            "database.unavailable %s error=%s: %s (%s)",
            what,
            type(exc).__name__,
            first,
            "new outage" if new_burst else f"still down, {unlogged} more failures",
        )


outages = BurstLog()
"""The process's outage log: every place that meets a database outage reports it here."""
