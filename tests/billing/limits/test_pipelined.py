"""The admission's pipelining Redis client (app/billing/limits/pipelined.py) against real Redis servers.

Tests that kill connections, flush scripts or restart the server run their own redis-server: the Redis
the rest of the suite shares must not see that.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import shutil
import ssl
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, NoScriptError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.api.resources import create_pipelined_redis, create_redis
from app.billing.limits.pipelined import Endpoint, PipelinedRedis, UnsupportedURL
from app.billing.limits.service import Gate, LimiterUnavailable
from app.core.settings import Settings
from tests.billing.limits.test_gate import job, principal
from tests.support import free_port, poll, write_self_signed


class PrivateRedis:
    """A redis-server of the test's own, on a TCP port and a Unix socket."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="htr"))  # short: a Unix socket path has ~100 bytes at most
        self.socket = self.dir / "redis.sock"
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, ready: bool = True) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.proc = subprocess.Popen(
            [
                *(binary, "--port", str(self.port), "--bind", "127.0.0.1", "--unixsocket", str(self.socket)),
                *("--save", "", "--appendonly", "no", "--dir", str(self.dir), *self.args),
            ],
            stdout=subprocess.DEVNULL,
        )
        if ready:
            self.wait_ready()

    def wait_ready(self, password: str | None = None) -> None:
        def pings() -> bool:
            try:
                return bool(SyncRedis(unix_socket_path=str(self.socket), password=password).ping())
            except RedisError:
                return False

        poll(pings, message="redis-server up")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def client(self) -> Redis:
        return Redis(unix_socket_path=str(self.socket))


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
async def shared(settings: Settings) -> AsyncIterator[PipelinedRedis]:
    client = PipelinedRedis.from_url(settings.redis_url, timeout=5, connect_timeout=2)
    yield client
    await client.aclose()


@dataclass
class Silent:
    """A server that accepts connections, reads nothing and never answers."""

    port: int
    accepted: list[asyncio.StreamWriter]


@pytest.fixture
async def silent() -> AsyncIterator[Silent]:
    accepted: list[asyncio.StreamWriter] = []

    async def keep(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(keep, "127.0.0.1", 0)
    yield Silent(server.sockets[0].getsockname()[1], accepted)
    for writer in accepted:
        writer.close()
    server.close()
    await server.wait_closed()


def key() -> str:
    return f"ht:test:pipelined:{uuid.uuid4().hex}"


# -- replies ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("connections", [1, 3])
async def test_concurrent_calls_and_batches_each_get_their_own_replies(settings: Settings, connections: int) -> None:
    client = PipelinedRedis.from_url(settings.redis_url, timeout=5, connect_timeout=2, connections=connections)
    try:

        async def batch(n: int) -> list[Any]:
            return await client.execute_many([("ECHO", f"b{n}:{i}") for i in range(n)])

        calls = [client.execute("ECHO", f"m{i}") if i % 50 else batch(i // 50 + 1) for i in range(2000)]
        replies = await asyncio.gather(*calls)
        for i, reply in enumerate(replies):
            n = i // 50 + 1
            assert reply == (f"m{i}".encode() if i % 50 else [f"b{n}:{j}".encode() for j in range(n)])
        ids = {await client.execute("CLIENT", "ID") for _ in range(connections * 2)}
        assert len(ids) == connections  # persistent connections, every call pipelined on them
    finally:
        await client.aclose()


async def test_replies_are_the_values_redis_py_returns(settings: Settings, shared: PipelinedRedis) -> None:
    script = "return {1, 'two', {3, 'four'}, redis.status_reply('OK'), false, -5, 2.9, ARGV[1]}"
    redis = create_redis(settings)
    try:
        expected = await redis.execute_command("EVAL", script, 0, "é")  # type: ignore[no-untyped-call]
    finally:
        await redis.aclose()
    assert await shared.execute("EVAL", script, 0, "é") == expected
    assert expected == [1, b"two", [3, b"four"], b"OK", None, -5, 2, "é".encode()]
    assert await shared.execute("EVAL", script, 0, "é".encode()) == expected


async def test_error_replies_raise_what_redis_py_raises(settings: Settings, shared: PipelinedRedis) -> None:
    name = key()
    redis = create_redis(settings)
    try:
        await redis.set(name, "not a number", ex=60)
        for command in [("INCR", name), ("EVALSHA", "0" * 40, 0), ("EVAL", "return redis.error_reply('MY bad')", 0)]:
            with pytest.raises(ResponseError) as by_redis_py:
                await redis.execute_command(*command)  # type: ignore[no-untyped-call]
            with pytest.raises(ResponseError) as by_pipelined:
                await shared.execute(*command)
            assert type(by_pipelined.value) is type(by_redis_py.value)
            assert str(by_pipelined.value) == str(by_redis_py.value)
    finally:
        await redis.aclose()
    with pytest.raises(NoScriptError):
        await shared.execute("EVALSHA", "0" * 40, 0)
    assert await shared.execute("GET", name) == b"not a number"  # the connection carries on


async def test_a_batch_returns_error_replies_in_place(settings: Settings, shared: PipelinedRedis) -> None:
    name, text = key(), key()
    commands: list[tuple[Any, ...]] = [
        ("SET", name, 1, "EX", 60),
        ("SET", text, "x", "EX", 60),
        ("INCR", text),
        ("EVALSHA", "0" * 40, 0),
        ("INCR", name),
    ]
    replies = await shared.execute_many(commands)
    assert replies[:2] == [b"OK", b"OK"] and replies[4] == 2
    assert type(replies[2]) is ResponseError and "not an integer" in str(replies[2])
    assert type(replies[3]) is NoScriptError
    redis = create_redis(settings)
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            by_redis_py = await pipe.execute(raise_on_error=False)
    finally:
        await redis.aclose()
    # (redis-py's pipeline turns SET's OK into True: a reply callback, which EVALSHA has none of)
    assert [(type(r), str(r)) for r in by_redis_py[2:]] == [(type(r), str(r)) for r in [*replies[2:4], 2]]
    assert await shared.execute_many([]) == []


async def test_a_write_over_the_high_water_mark_waits_and_every_call_completes(shared: PipelinedRedis) -> None:
    name = key()
    big = [("SET", f"{name}:{i}", "v" * 4096, "EX", 60) for i in range(2000)]  # 8 MB in one write
    small = [shared.execute("ECHO", str(i)) for i in range(200)]
    replies, *echoes = await asyncio.gather(shared.execute_many(big), *small, shared.execute_many(big[:3]))
    assert replies == [b"OK"] * 2000
    assert echoes[:-1] == [str(i).encode() for i in range(200)] and echoes[-1] == [b"OK"] * 3


# -- failures ---------------------------------------------------------------------------------------
async def test_a_killed_connection_fails_its_calls_and_the_next_call_reconnects(private_redis: PrivateRedis) -> None:
    client = PipelinedRedis.from_url(private_redis.url, timeout=5, connect_timeout=2)
    admin = private_redis.client()
    try:
        first_id = await client.execute("CLIENT", "ID")
        blocked = asyncio.ensure_future(client.execute("BLPOP", key(), 0))  # never answered on its own
        queued = asyncio.ensure_future(client.execute("ECHO", "behind the BLPOP"))
        deadline = asyncio.get_running_loop().time() + 5
        while b"cmd=blpop" not in await admin.execute_command("CLIENT", "LIST", "TYPE", "normal"):  # type: ignore[no-untyped-call]
            assert asyncio.get_running_loop().time() < deadline, "the BLPOP never reached Redis"
        assert await admin.execute_command("CLIENT", "KILL", "TYPE", "normal") == 1  # type: ignore[no-untyped-call]
        for call in (blocked, queued):
            with pytest.raises(RedisConnectionError):
                await asyncio.wait_for(call, 5)
        assert await client.execute("ECHO", "again") == b"again"
        assert await client.execute("CLIENT", "ID") != first_id
    finally:
        await client.aclose()
        await admin.aclose()


async def test_a_redis_that_never_answers_fails_the_calls_within_the_timeout(silent: Silent) -> None:
    client = PipelinedRedis.from_url(f"redis://127.0.0.1:{silent.port}/0", timeout=0.5, connect_timeout=2)
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        calls = asyncio.gather(client.execute("PING"), client.execute_many([("PING",)] * 2), return_exceptions=True)
        results = await asyncio.wait_for(calls, 5)
        elapsed = loop.time() - started
        assert all(type(r) is RedisTimeoutError for r in results), results
        assert 0.4 <= elapsed < 1.5  # 0.5 s of silence (+ a loaded machine's scheduling)
        with pytest.raises(RedisTimeoutError):
            await client.execute("PING")
        assert len(silent.accepted) == 2  # the timed-out connection was dropped: its replies could not be matched
    finally:
        await client.aclose()


async def test_a_handshake_never_answered_times_out_even_when_nobody_waits_any_more(silent: Silent) -> None:
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    client = PipelinedRedis.from_url(f"redis://:pw@127.0.0.1:{silent.port}/0", timeout=5, connect_timeout=0.3)
    try:
        started = loop.time()
        with pytest.raises(RedisTimeoutError):
            await asyncio.wait_for(client.execute("PING"), 5)  # AUTH is never answered
        assert loop.time() - started < 1.5
        abandoned = asyncio.ensure_future(client.execute("PING"))
        deadline = loop.time() + 5
        while len(silent.accepted) < 2:
            assert loop.time() < deadline, "no second connection"
            await asyncio.sleep(0.01)
        connecting = client._connecting[0]
        assert connecting is not None
        abandoned.cancel()
        await asyncio.wait([connecting], timeout=5)
        assert connecting.done() and not connecting.cancelled()
        del connecting, abandoned  # their last references: a failed task nobody read would log now
        gc.collect()
        assert unhandled == []
    finally:
        loop.set_exception_handler(None)
        await client.aclose()


async def test_a_closed_client_refuses_calls(shared: PipelinedRedis) -> None:
    assert await shared.execute("PING") == b"PONG"
    await shared.aclose()
    with pytest.raises(RedisConnectionError):
        await shared.execute("PING")


# -- URLs -------------------------------------------------------------------------------------------
def test_urls_are_read_as_redis_py_reads_them() -> None:
    ep = Endpoint.from_url("redis://al%40ce:s%3Acret@redis.internal:6380/3", timeout=5, connect_timeout=2)
    assert (ep.host, ep.port, ep.username, ep.password, ep.db, ep.tls, ep.path) == (
        "redis.internal",
        6380,
        "al@ce",
        "s:cret",
        3,
        None,
        None,
    )
    assert (ep.timeout, ep.connect_timeout) == (5, 2)
    ep = Endpoint.from_url("redis://h?socket_timeout=0.25&socket_connect_timeout=1", timeout=5, connect_timeout=2)
    assert (ep.host, ep.port, ep.db, ep.timeout, ep.connect_timeout) == ("h", 6379, 0, 0.25, 1)
    ep = Endpoint.from_url("unix:///run/redis.sock?db=2&password=pw", timeout=5, connect_timeout=2)
    assert (ep.path, ep.db, ep.password) == ("/run/redis.sock", 2, "pw")
    ep = Endpoint.from_url("rediss://h:6390/1", timeout=5, connect_timeout=2)
    assert ep.tls is not None and ep.tls.verify_mode == ssl.CERT_REQUIRED and ep.tls.check_hostname
    ep = Endpoint.from_url("rediss://h/0?ssl_cert_reqs=none", timeout=5, connect_timeout=2)
    assert ep.tls is not None and ep.tls.verify_mode == ssl.CERT_NONE
    for url in ["redis://h/0?protocol=3", "redis://h/0?health_check_interval=5", "redis://h/0?client_name=x"]:
        with pytest.raises(UnsupportedURL):
            Endpoint.from_url(url, timeout=5, connect_timeout=2)


async def test_auth_select_and_unix_sockets() -> None:
    server = PrivateRedis("--user", "alice", "on", ">s3cret", "~*", "&*", "+@all", "--requirepass", "defaultpw")
    server.start(ready=False)
    try:
        server.wait_ready(password="defaultpw")
        name = key()
        for url in [
            f"redis://alice:s3cret@127.0.0.1:{server.port}/2",
            f"redis://:defaultpw@127.0.0.1:{server.port}/2",
            f"unix://alice:s3cret@{server.socket}?db=2",
        ]:
            client = PipelinedRedis.from_url(url, timeout=5, connect_timeout=2)
            try:
                assert await client.execute("INCR", name) >= 1
            finally:
                await client.aclose()
        check = SyncRedis(unix_socket_path=str(server.socket), password="defaultpw", db=2)
        assert check.get(name) == b"3"
        for url in [f"redis://alice:wrong@127.0.0.1:{server.port}/0", f"redis://127.0.0.1:{server.port}/0"]:
            client = PipelinedRedis.from_url(url, timeout=5, connect_timeout=2)
            try:
                with pytest.raises(AuthenticationError):  # WRONGPASS on connect, NOAUTH without a password
                    await client.execute("INCR", name)
            finally:
                await client.aclose()
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


async def test_tls_with_the_certificate_checked() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="htr"))
    cert, private_key = write_self_signed(workdir, "127.0.0.1")
    tls_port = free_port()
    server = PrivateRedis(
        "--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(private_key),
        "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
    )  # fmt: skip
    server.start()
    try:
        client = PipelinedRedis.from_url(
            f"rediss://127.0.0.1:{tls_port}/1?ssl_ca_certs={cert}", timeout=5, connect_timeout=2
        )
        try:
            assert await client.execute("ECHO", "over tls") == b"over tls"
        finally:
            await client.aclose()
        unknown_ca = PipelinedRedis.from_url(f"rediss://127.0.0.1:{tls_port}/1", timeout=5, connect_timeout=2)
        try:
            with pytest.raises(RedisConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
                await unknown_ca.execute("ECHO", "over tls")
        finally:
            await unknown_ca.aclose()
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


# -- through the Gate -------------------------------------------------------------------------------
async def test_the_gate_reloads_scripts_flushed_from_redis(settings: Settings, private_redis: PrivateRedis) -> None:
    settings = settings.model_copy(update={"redis_url": private_redis.url})
    redis, client, admin = create_redis(settings), create_pipelined_redis(settings), private_redis.client()
    assert client is not None
    try:
        gate = Gate(redis, settings, client)
        who = principal(rpm=0, tpm=100_000)
        first = await gate.admit(who, job(), tokens=5000)
        await admin.script_flush()
        second = await gate.admit(who, job(), tokens=5000)
        await admin.script_flush()
        await gate.settle_many([(first, 18, 0, "apply"), (second, 20, 0, "apply")])
        headers = dict(await gate.admit_read(who))
        assert headers[b"x-ratelimit-remaining-tokens"] == str(100_000 - 38).encode()
        assert await admin.script_exists(gate._admit.sha, gate._settle.sha) == [True, True]
    finally:
        await client.aclose()
        await redis.aclose()
        await admin.aclose()


async def test_after_a_redis_restart_the_gate_reconnects_and_reloads_its_script(
    settings: Settings, private_redis: PrivateRedis
) -> None:
    settings = settings.model_copy(update={"redis_url": private_redis.url})
    redis, client = create_redis(settings), create_pipelined_redis(settings)
    assert client is not None
    try:
        gate = Gate(redis, settings, client)
        await gate.admit(principal(), job())
        private_redis.stop()
        with pytest.raises(LimiterUnavailable):
            await gate.admit(principal(), job())
        private_redis.start()
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            try:
                admission = await gate.admit(principal(), job())
                break
            except LimiterUnavailable:
                assert asyncio.get_running_loop().time() < deadline, "no admission after the restart"
        assert admission.enforced and admission.headers
    finally:
        await client.aclose()
        await redis.aclose()


async def test_a_silent_redis_is_a_503_within_the_timeout(settings: Settings, silent: Silent) -> None:
    quiet = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{silent.port}/0"})
    client = PipelinedRedis.from_url(quiet.redis_url, timeout=0.5, connect_timeout=2)
    redis = create_redis(quiet)
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        with pytest.raises(LimiterUnavailable):
            await Gate(redis, quiet, client).admit(principal(), job())
        assert loop.time() - started < 1.5
    finally:
        await client.aclose()
        await redis.aclose()


async def test_an_unreachable_redis_is_a_quick_503_and_fails_open_when_told(settings: Settings) -> None:
    dead = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    client = create_pipelined_redis(dead)
    assert client is not None
    redis = create_redis(dead)
    try:
        with pytest.raises(RedisConnectionError):
            await client.execute("PING")
        with pytest.raises(LimiterUnavailable):
            await asyncio.wait_for(Gate(redis, dead, client).admit(principal(), job()), timeout=5)
        opened = Gate(redis, dead.model_copy(update={"limits_fail_open": True}), client)
        assert (await opened.admit(principal(), job())).enforced is False
        with pytest.raises(LimiterUnavailable):
            await opened.admit(principal(), job(), hold=10)
    finally:
        await client.aclose()
        await redis.aclose()


async def test_a_url_it_does_not_speak_leaves_the_gate_on_redis_py(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    odd = settings.model_copy(update={"redis_url": settings.redis_url + "?health_check_interval=30"})
    with caplog.at_level(logging.WARNING, logger="heytoken.app"):
        assert create_pipelined_redis(odd) is None
    assert "limits.pipelined_redis_off" in caplog.text and "health_check_interval" in caplog.text
    assert create_pipelined_redis(settings.model_copy(update={"redis_pipeline_connections": 0})) is None
    redis = create_redis(odd)
    try:
        assert (await Gate(redis, odd, None).admit(principal(), job())).enforced
    finally:
        await redis.aclose()
