"""Database engine and session factories, and the column types every table shares.

The engine is made by `create_engine(settings)` at start-up (web lifespan, worker boot, CLI command),
never at import. One unit of work = one session = one commit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import importlib
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import msgspec
from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, event, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.settings import Settings

SessionMaker = async_sessionmaker[AsyncSession]


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class _JSON(TypeDecorator[Any]):
    """JSON, stored as JSONB on PostgreSQL. The PostgreSQL dialect is imported only by an engine that
    uses it: on SQLite it cost the web process ~1.5 MB and ~37 ms of start-up for nothing."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return super().load_dialect_impl(dialect)


JSONType = _JSON()
# SQLite autoincrements only a column declared exactly INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def to_unix(value: dt.datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


_json_encode = msgspec.json.Encoder().encode


def dialect_insert(conn: AsyncConnection) -> Callable[..., Any]:
    """The `insert` of the connection's dialect (PostgreSQL's or SQLite's), for `on_conflict_do_nothing`.
    Imported on first use, so a process on SQLite never loads PostgreSQL's dialect."""
    name = "postgresql" if conn.dialect.name == "postgresql" else "sqlite"
    return cast(Callable[..., Any], importlib.import_module(f"sqlalchemy.dialects.{name}").insert)


def json_dumps(value: Any) -> str:
    """JSON columns are written by msgspec: several times faster than the json module SQLAlchemy uses by
    default, on every job row of the job log. Compact output; SQLite and PostgreSQL read it the same."""
    return _json_encode(value).decode()


json_loads = msgspec.json.decode
JSON_CODEC: dict[str, Any] = {"json_serializer": json_dumps, "json_deserializer": json_loads}


T = TypeVar("T")


class DriverSQL:
    """SQL text handed to the driver as it is (`run`) with plain tuples of values, for the job log's hot
    path: SQLAlchemy's Core path costs tens of µs of Python per row (a dict per row, then per-row,
    per-column parameter processing); this costs what the driver costs.

    The price: values must arrive in the form the columns' types would have bound them, which this
    class knows for the two drivers the app runs on. On SQLite (aiosqlite) a UTCDateTime is the UTC
    wall time as SQLAlchemy's DATETIME string; on PostgreSQL (asyncpg) the aware datetime itself. JSON
    goes through the engine's own serializer on both (SQLAlchemy's asyncpg dialect registers a jsonb
    codec that takes the serialized text), and None becomes JSON 'null', not SQL NULL, as SQLAlchemy's
    JSON type (none_as_null=False) stores it. Booleans go as they are: sqlite3 binds them as 0/1.
    """

    DRIVERS = frozenset({("sqlite", "aiosqlite"), ("postgresql", "asyncpg")})

    def __init__(self, dialect: Dialect) -> None:
        if (dialect.name, dialect.driver) not in self.DRIVERS:
            name = f"{dialect.name}+{dialect.driver}"
            raise ValueError(f"unsupported database driver {name}: use sqlite+aiosqlite or postgresql+asyncpg")
        self.sqlite = dialect.name == "sqlite"
        self.quote: Callable[[str], str] = dialect.identifier_preparer.quote
        self._dialect = dialect
        # What a JSON column's bind processor calls: the serializer every engine is made with
        # (JSON_CODEC), passed explicitly rather than read back from the dialect.
        self.json: Callable[[Any], str] = json_dumps
        self.timestamp: Callable[[dt.datetime | None], Any] = _sqlite_timestamp if self.sqlite else _utc_or_none

    INLINE_ROWS = 16
    """Rows per statement where statements run on the event loop (SQLite: InlineConnection): a batch
    goes in slices with a turn of the loop between two, so no request waits behind a whole batch."""

    async def slices(self, rows: Sequence[T], width: int | None = None) -> AsyncIterator[Sequence[T]]:
        """`rows` in the slices to send one statement each: a multi-row statement of `width` values a
        row stays under the driver's parameter limit; on SQLite a slice is at most INLINE_ROWS and the
        loop serves others between two (a PostgreSQL statement's round trip yields anyway). Without
        `width` (executemany) there is no parameter limit.

        A multi-row slice has a power of two of rows (37 rows: 32, 4, 1), so its statement's text is
        one of a few: each text is a prepared statement in every pooled connection's cache (asyncpg's
        and SQLAlchemy's, 100 each), and one text per batch size held ~6 MB in a web process on
        PostgreSQL after a minute of load (issue #23, bench/RESULTS.md)."""
        # The largest power of two of rows under the parameter limit.
        step = max(1, len(rows)) if width is None else 1 << ((self.max_parameters // width).bit_length() - 1)
        if self.sqlite:
            step = min(step, self.INLINE_ROWS)
        start = 0
        while start < len(rows):
            if start:
                await asyncio.sleep(0)
            size = min(step, len(rows) - start)
            if width is not None:
                size = 1 << (size.bit_length() - 1)
            yield rows[start : start + size]
            start += size

    @property
    def max_parameters(self) -> int:
        """Per statement; read late, as the SQLite dialect lowers it on connecting to an old library."""
        return self._dialect.insertmanyvalues_max_parameters

    def names(self, columns: Sequence[str]) -> str:
        return ", ".join(self.quote(name) for name in columns)

    def param(self, n: int) -> str:
        """The placeholder of the statement's `n`th value (from 1)."""
        return "?" if self.sqlite else f"${n}"

    def params(self, count: int, first: int = 1) -> str:
        return ", ".join(self.param(n) for n in range(first, first + count))

    def values(self, width: int, rows: int) -> str:
        """`VALUES (…), (…)` for a multi-row insert of `rows` rows of `width` values."""
        return "VALUES " + ", ".join(f"({self.params(width, 1 + i * width)})" for i in range(rows))

    def insert(self, table: str, columns: Sequence[str]) -> str:
        """A one-row INSERT, for executemany."""
        return f"INSERT INTO {self.quote(table)} ({self.names(columns)}) {self.values(len(columns), 1)}"

    async def run(
        self, conn: AsyncConnection, statement: str, params: tuple[Any, ...] | list[tuple[Any, ...]]
    ) -> list[Any]:
        """Execute `statement` in `conn`'s transaction with one tuple of values, or once per tuple of a
        list (executemany); returns the rows it returned (RETURNING), as tuples."""
        if isinstance(params, list) and len(params) == 1:
            params = params[0]
        if self.sqlite:
            return await _run_on_aiosqlite(conn, statement, params)
        result = await conn.exec_driver_sql(statement, params)
        return list(result.all()) if result.returns_rows else []


async def _run_on_aiosqlite(
    conn: AsyncConnection, statement: str, params: tuple[Any, ...] | list[tuple[Any, ...]]
) -> list[Any]:
    # Straight on the aiosqlite connection: SQLAlchemy's adapter makes three or four calls per statement
    # (cursor, execute, fetch, close), this makes one (two for executemany) — each a hop to aiosqlite's
    # thread and back on a plain aiosqlite connection, and still a greenlet switch and the adapter's
    # Python on an InlineConnection. The transaction is the same: sqlite3 opens it implicitly before the
    # first write, whoever sends it, and SQLAlchemy's commit or rollback ends it. (asyncpg needs no such
    # thing: it runs in the event loop, and its adapter must see the statements to open the transaction.)
    driver: Any = (await conn.get_raw_connection()).driver_connection  # an aiosqlite.Connection
    try:
        if isinstance(params, list):
            cursor = await driver.executemany(statement, params)
            await cursor.close()
            return []
        return list(await driver.execute_fetchall(statement, params))
    except conn.dialect.loaded_dbapi.Error as exc:  # sqlite3.Error, from the driver: never imported here
        # As SQLAlchemy would raise it: callers tell a refused row (IntegrityError) from the rest by class.
        raise DBAPIError.instance(statement, params, exc, conn.dialect.loaded_dbapi.Error) from exc


@functools.cache
def driver_sql(dialect: Dialect) -> DriverSQL:
    """One per engine's dialect (the statements built from it are cached against it too)."""
    return DriverSQL(dialect)


_UTC_BIND = UTCDateTime().process_bind_param
_SQLITE_DATETIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"
"""SQLAlchemy's SQLite DATETIME storage format, as a tuple format: a dict per value costs more."""


def _utc(value: dt.datetime) -> dt.datetime:
    # UTCDateTime's own conversion (it refuses naive datetimes), skipped for those already in UTC.
    return value if value.tzinfo is dt.UTC else cast(dt.datetime, _UTC_BIND(value, None))


def _utc_or_none(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _utc(value)


def _sqlite_timestamp(value: dt.datetime | None) -> str | None:
    """What SQLAlchemy binds for a UTCDateTime on SQLite: the UTC wall time, six fractional digits."""
    if value is None:
        return None
    v = _utc(value)
    return _SQLITE_DATETIME % (v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond)


SQLITE_POOL_SIZE = 20
"""Connections a process keeps open to its SQLite file: more than it uses at once (a worker's steps, one
per thread; the web process's sessions), so none is closed and opened again under load."""


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.resolved_database_url()
    if url.startswith("sqlite"):
        from app.core.adapters.sqlite import BUSY_SECONDS, connect_inline  # not loaded on PostgreSQL

        settings.var_dir.mkdir(parents=True, exist_ok=True)
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            # SQLAlchemy's default pool keeps 5 connections and closes any above that when it comes
            # back: a worker running 8 steps at once opened a connection (a thread, sqlite3.connect,
            # four PRAGMAs, one of them taking the write lock) for most steps at 200 jobs/s. An idle
            # SQLite connection is a file handle and the pages it has read.
            engine = create_async_engine(
                url,
                async_creator=functools.partial(connect_inline, database, itertools.count(1)),
                pool_size=SQLITE_POOL_SIZE,
                **JSON_CODEC,
            )
            _tune_sqlite(engine, busy_timeout_ms=0)
        else:
            engine = create_async_engine(url, connect_args={"timeout": 30}, **JSON_CODEC)
            _tune_sqlite(engine, busy_timeout_ms=BUSY_SECONDS * 1000)
        return engine
    # asyncpg waits 60 s for a connection by default: a database host that vanished without a reset
    # (a partition, a dead VM) would hold every request that long instead of answering 503.
    connect_args = {"timeout": settings.database_connect_timeout_seconds}
    return create_async_engine(
        url, pool_size=10, max_overflow=20, pool_pre_ping=True, connect_args=connect_args, **JSON_CODEC
    )


def _tune_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    # WAL lets readers run beside the one writer. A writer that finds the lock taken (web, worker, CLI
    # all write) waits for it: in SQLite's own busy handler on aiosqlite's thread, or, on an inline
    # connection, by sleeping on the event loop between tries (busy_timeout 0, see InlineConnection).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> SessionMaker:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def unit_of_work(sessionmaker: SessionMaker) -> AsyncIterator[AsyncSession]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
