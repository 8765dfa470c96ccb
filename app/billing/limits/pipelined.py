"""A small pipelining Redis client for the admission's hot path: one EVALSHA per request, one batch per
settlement flush. Everything else keeps using redis-py.

redis-py's asyncio client checks a connection out of its pool, runs each command through its retry
helper and wraps each write's drain in `asyncio.wait_for`, a Task per command on Python 3.11: about 7%
of the gateway's CPU under load. Here one persistent connection (or a few) carries every call: a call
is one future, the calls of a loop iteration leave in one write, hiredis parses the replies in order
as they arrive, and one watchdog timer per connection bounds the waits. Failures are redis-py's own
exceptions (ConnectionError, TimeoutError, ResponseError, NoScriptError), so callers handle them as
before.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Any

import hiredis
from redis.asyncio.connection import RedisSSLContext, SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, InvalidResponse, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.core.adapters import redis_error_reply  # error replies become redis-py's exceptions

_WATCH_TICKS = 10
"""Watchdog checks per timeout: a silent Redis fails the calls between 0.9 and 1.0 timeout."""

# The options of redis-py's URLs that mean the same here; any other keeps the Gate on redis-py.
_URL_OPTIONS = frozenset(
    {"host", "port", "path", "db", "username", "password", "socket_timeout", "socket_connect_timeout", "protocol"}
)
_TLS_URL_OPTIONS = frozenset(
    {"ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname"}
    | {"ssl_password"}
)


class UnsupportedURL(ValueError):
    """A Redis URL this client does not speak; the caller keeps redis-py."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None
    """A Unix socket instead of host and port."""
    tls: ssl.SSLContext | None = None
    username: str | None = None
    password: str | None = None
    db: int = 0
    timeout: float = 5.0
    connect_timeout: float = 2.0

    @classmethod
    def from_url(cls, url: str, *, timeout: float, connect_timeout: float) -> Endpoint:
        """Read a redis://, rediss:// or unix:// URL as redis-py does (options in the URL win)."""
        try:
            options: dict[str, Any] = dict(parse_url(url))
        except ValueError as exc:
            raise UnsupportedURL(str(exc)) from exc
        kind = options.pop("connection_class", None)
        unknown = set(options) - _URL_OPTIONS - (_TLS_URL_OPTIONS if kind is SSLConnection else set())
        if unknown:
            raise UnsupportedURL(f"option(s) {', '.join(sorted(unknown))}")
        if options.get("protocol", 2) != 2:
            raise UnsupportedURL("RESP3 (protocol=3)")
        tls = None
        if kind is SSLConnection:
            # redis-py's own context and defaults (certificates and host name checked).
            tls = RedisSSLContext(
                keyfile=options.get("ssl_keyfile"),
                certfile=options.get("ssl_certfile"),
                cert_reqs=options.get("ssl_cert_reqs", "required"),
                ca_certs=options.get("ssl_ca_certs"),
                ca_path=options.get("ssl_ca_path"),
                check_hostname=options.get("ssl_check_hostname", True),
                password=options.get("ssl_password"),
            ).get()
        elif kind is UnixDomainSocketConnection and not options.get("path"):
            raise UnsupportedURL("a unix:// URL without a path")
        return cls(
            host=options.get("host") or "127.0.0.1",
            port=int(options.get("port") or 6379),
            path=options.get("path") if kind is UnixDomainSocketConnection else None,
            tls=tls,
            username=options.get("username"),
            password=options.get("password"),
            db=int(options.get("db") or 0),
            timeout=float(options.get("socket_timeout") or timeout),
            connect_timeout=float(options.get("socket_connect_timeout") or connect_timeout),
        )

    def __str__(self) -> str:
        return f"unix://{self.path}" if self.path else f"{self.host}:{self.port}"


class _Batch:
    """Collects a batch's replies, in order, error replies included."""

    __slots__ = ("future", "replies", "size")

    def __init__(self, future: asyncio.Future[list[Any]], size: int) -> None:
        self.future = future
        self.replies: list[Any] = []
        self.size = size


class _Connection(asyncio.Protocol):
    """One Redis connection: calls wait for their replies in a FIFO, in the order they were written."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self._reader = hiredis.Reader(protocolError=InvalidResponse, replyError=redis_error_reply)
        self._waiters: deque[asyncio.Future[Any] | _Batch] = deque()
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        """Packed calls waiting for the end of the loop iteration."""
        self._quiet_since = 0.0
        """Since when the oldest waiting call has heard nothing: its send time or the last bytes read."""
        self._watchdog: asyncio.TimerHandle | None = None
        self.drained: asyncio.Future[None] | None = None
        """Set while the transport's write buffer is over its high-water mark."""
        self.error: RedisError | None = None
        """Why the connection is unusable (then a new one is opened)."""

    # -- calls --------------------------------------------------------------------------------------
    def call(self, packed: bytes) -> asyncio.Future[Any]:
        future = self._loop.create_future()
        self._send(packed, future)
        return future

    def call_many(self, packed: bytes, size: int) -> asyncio.Future[list[Any]]:
        future: asyncio.Future[list[Any]] = self._loop.create_future()
        self._send(packed, _Batch(future, size))
        return future

    def _send(self, packed: bytes, waiter: asyncio.Future[Any] | _Batch) -> None:
        # The calls of one loop iteration leave in one write at its end: one syscall for many admissions
        # and fewer, fuller reads on both sides (measured: half the client's CPU per call at 32 callers).
        if not self._out:
            self._loop.call_soon(self._flush)
        if not self._waiters:
            self._quiet_since = self._loop.time()
        self._out.append(packed)
        self._waiters.append(waiter)

    def _flush(self) -> None:
        out = self._out
        self._out = []
        if out and self.error is None:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))  # type: ignore[union-attr]

    # -- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._watchdog = self._loop.call_later(self._timeout / _WATCH_TICKS, self._watch)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        waiters = self._waiters
        reader.feed(data)
        self._quiet_since = self._loop.time()
        while True:
            try:
                reply = reader.gets()
            except InvalidResponse as exc:
                self.fail(RedisConnectionError(f"Protocol error from Redis: {exc}"))
                return
            if reply is False:  # an incomplete reply (RESP2 has no booleans)
                return
            if not waiters:
                self.fail(RedisConnectionError("Redis sent a reply nobody asked for."))
                return
            waiter = waiters[0]
            if type(waiter) is _Batch:
                waiter.replies.append(reply)
                if len(waiter.replies) < waiter.size:
                    continue
                waiters.popleft()
                if not waiter.future.done():
                    waiter.future.set_result(waiter.replies)
            else:
                waiters.popleft()
                if not waiter.done():  # type: ignore[union-attr]
                    waiter.set_result(reply)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"Connection to Redis lost: {exc}" if exc else "Connection closed by Redis."))

    def pause_writing(self) -> None:
        self.drained = self._loop.create_future()

    def resume_writing(self) -> None:
        if self.drained is not None:
            if not self.drained.done():
                self.drained.set_result(None)
            self.drained = None

    # -- failure ------------------------------------------------------------------------------------
    def _watch(self) -> None:
        # One timer per connection instead of one per call; replies come in order, so only the oldest
        # waiting call's silence matters.
        tick = self._timeout / _WATCH_TICKS
        if self._waiters and self._loop.time() - self._quiet_since > self._timeout - tick:
            self.fail(RedisTimeoutError(f"Redis did not answer within {self._timeout:g}s."))
            return
        self._watchdog = self._loop.call_later(tick, self._watch)

    def fail(self, error: RedisError) -> None:
        """Close the connection and fail every waiting call: their replies can no longer be matched."""
        if self.error is not None:
            return
        self.error = error
        self._out = []
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._transport is not None:
            self._transport.abort()
        while self._waiters:
            waiter = self._waiters.popleft()
            future = waiter.future if type(waiter) is _Batch else waiter
            if not future.done():  # type: ignore[union-attr]
                future.set_exception(error)  # type: ignore[union-attr]
        if self.drained is not None and not self.drained.done():
            self.drained.set_exception(error)
            self.drained.exception()  # a writer may not be waiting: retrieved, so never logged


class PipelinedRedis:
    """Persistent connections (round robin) that pipeline every concurrent call; a lost or timed-out
    connection fails its waiting calls with a RedisError and the next call opens a new one."""

    def __init__(self, endpoint: Endpoint, connections: int = 1) -> None:
        self.endpoint = endpoint
        self._slots: list[_Connection | None] = [None] * max(1, connections)
        self._connecting: list[asyncio.Task[_Connection] | None] = [None] * len(self._slots)
        self._next = 0
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, timeout: float, connect_timeout: float, connections: int = 1) -> PipelinedRedis:
        return cls(Endpoint.from_url(url, timeout=timeout, connect_timeout=connect_timeout), connections)

    async def execute(self, *args: Any) -> Any:
        """One command; an error reply raises (as redis-py's execute_command)."""
        packed = _pack(args)
        slots = self._slots
        index = self._next = (self._next + 1) % len(slots)
        conn = slots[index]
        if conn is None or conn.error is not None or conn.drained is not None:
            conn = await self._ready(index)
        reply = await conn.call(packed)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def execute_many(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """A batch in one write; every reply in order, error replies in place as exceptions (as a
        redis-py pipeline's `execute(raise_on_error=False)`)."""
        if not commands:
            return []
        packed = b"".join([_pack(command) for command in commands])
        index = self._next = (self._next + 1) % len(self._slots)
        conn = await self._ready(index)
        return await conn.call_many(packed, len(commands))

    async def _ready(self, index: int) -> _Connection:
        """The slot's connection, opened if needed, once its write buffer is below the high-water mark."""
        while True:
            if self._closed:
                raise RedisConnectionError("The Redis client is closed.")
            conn = self._slots[index]
            if conn is not None and conn.error is None:
                if conn.drained is None:
                    return conn
                await conn.drained
                continue
            task = self._connecting[index]
            if task is None:
                task = self._connecting[index] = asyncio.create_task(self._connect(index))
                # Its callers may all have given up (cancelled) before it fails: never "never retrieved".
                task.add_done_callback(_retrieve)
            # Shielded: a caller giving up does not cancel the connection the others are waiting for.
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.cancelled():  # by aclose, not by our caller
                    raise RedisConnectionError("The Redis client is closed.") from None
                raise

    async def _connect(self, index: int) -> _Connection:
        ep = self.endpoint
        loop = asyncio.get_running_loop()
        conn: _Connection | None = None
        try:
            async with asyncio.timeout(ep.connect_timeout):
                if ep.path is not None:
                    _, conn = await loop.create_unix_connection(lambda: _Connection(loop, ep.timeout), ep.path)
                else:
                    _, conn = await loop.create_connection(
                        lambda: _Connection(loop, ep.timeout), ep.host, ep.port, ssl=ep.tls
                    )
                for command in self._handshake():
                    reply = await conn.call(_pack(command))
                    if isinstance(reply, Exception):
                        raise reply
        except BaseException as exc:
            if conn is not None:
                conn.fail(RedisConnectionError("Connection set-up failed."))
            if isinstance(exc, TimeoutError):
                raise RedisTimeoutError(f"Timeout connecting to Redis at {ep}.") from exc
            if isinstance(exc, OSError):
                raise RedisConnectionError(f"Error connecting to Redis at {ep}: {exc}") from exc
            raise
        finally:
            self._connecting[index] = None
        if self._closed:
            conn.fail(RedisConnectionError("The Redis client is closed."))
        self._slots[index] = conn
        return conn

    def _handshake(self) -> list[tuple[Any, ...]]:
        ep = self.endpoint
        commands: list[tuple[Any, ...]] = []
        if ep.password is not None:
            commands.append(("AUTH", ep.username, ep.password) if ep.username else ("AUTH", ep.password))
        if ep.db:
            commands.append(("SELECT", ep.db))
        return commands

    async def aclose(self) -> None:
        self._closed = True
        for task in self._connecting:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(task for task in self._connecting if task is not None), return_exceptions=True)
        for conn in self._slots:
            if conn is not None:
                conn.fail(RedisConnectionError("The Redis client is closed."))
        self._slots = [None] * len(self._slots)


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _pack(args: tuple[Any, ...]) -> bytes:
    try:
        packed: bytes = hiredis.pack_command(args)
    except TypeError as exc:  # hiredis packs str, bytes, int and float only
        raise DataError(exc) from exc
    return packed
