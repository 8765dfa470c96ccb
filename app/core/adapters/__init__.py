"""The one package that reaches into private internals of a library, each for a measured benefit.

Everything else in app/, workers/ and storage/ uses public APIs only (tests/test_private_apis.py
greps for reach-ins elsewhere). Each reach-in below says what it relies on and the figure that pays
for it; `check_internals()` names what the installed libraries must still have, and
tests/core/test_adapters.py fails loudly, listing it, when a new release lost any of it (the
versions are pinned in constraints.txt, so that shows on an upgrade, not in production).

1. `sqlite.InlineConnection` (aiosqlite `_execute`, `_running`, `_connection`, `_thread`): SQLite statements
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

import functools
import inspect
from collections.abc import Callable
from typing import Any

import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio.connection import Connection as RedisConnection
from redis.exceptions import DataError
from redis.utils import HIREDIS_AVAILABLE

# -- 1. SQLite on the event loop: in .sqlite, imported by an engine on SQLite only (sqlite3 and aiosqlite
# are 0.9 MB resident that a process on PostgreSQL has no use for).

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
    import sqlite3

    import aiosqlite

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
