"""A database outage: 503 `service_unavailable` with Retry-After (not 500), one WARNING per burst (no
traceback per request), and a web process that starts without its database, reports not-ready, and
becomes ready once the database answers, without a restart."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from app.accounts import service as accounts
from app.api.main import create_app
from app.cli.runner import migrate
from app.core.db import create_engine, create_sessionmaker, unit_of_work
from app.core.outage import is_database_outage, outages
from app.core.settings import Settings
from tests.support import apoll, free_port

CHAT = {"model": "local-chat", "messages": [{"role": "user", "content": "hi"}]}
A_KEY = {"Authorization": "Bearer sk-ht-" + "a" * 43}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno == level]


@pytest.fixture
def records() -> Iterator[Records]:
    # On the app's own logger, not the root: create_app replaces the root's handlers (caplog's too).
    handler = Records()
    logger = logging.getLogger("heytoken")
    logger.addHandler(handler)
    outages.reset()
    yield handler
    logger.removeHandler(handler)
    outages.reset()


def assert_unavailable(answer: Any) -> None:
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert error["type"] == "server_error" and error["code"] == "service_unavailable"
    assert int(answer.headers["retry-after"]) > 0


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path.as_posix()}"


async def test_starts_without_its_database_and_gets_ready_when_it_comes(
    settings: Settings, tmp_path: Path, records: Records
) -> None:
    later = tmp_path / "not-yet" / "heytoken.db"
    down = settings.model_copy(update={"database_url": sqlite_url(later), "catalog_refresh_seconds": 0.1})
    async with AsyncTestClient(app=create_app(down), timeout=30) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] != "ok" and ready.json()["checks"]["catalog"] != "ok"
        for _ in range(3):
            assert_unavailable(await client.post("/v1/chat/completions", headers=A_KEY, json=CHAT))
            assert_unavailable(await client.get("/v1/models", headers=A_KEY))

        # Built aside and moved in at once: a half-migrated file would be a real fault, not an outage.
        staging = tmp_path / "staging" / later.name
        staging.parent.mkdir()
        await asyncio.to_thread(migrate, down.model_copy(update={"database_url": sqlite_url(staging)}))
        staging.parent.rename(later.parent)

        async def ready_now() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await apoll(ready_now, timeout=10, message="/readyz 200 once the database answers")
        # The database answers: an unknown key is an unknown key again.
        assert (await client.get("/v1/models", headers=A_KEY)).status_code == 401
    assert records.at(logging.ERROR) == []
    assert not any(r.exc_info for r in records.records)
    warnings = [r for r in records.at(logging.WARNING) if r.getMessage().startswith("database.unavailable")]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


async def test_postgresql_on_a_closed_port_answers_503(settings: Settings, records: Records) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test"
    async with AsyncTestClient(app=create_app(settings.model_copy(update={"database_url": url})), timeout=30) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503
        assert_unavailable(await client.post("/v1/chat/completions", headers=A_KEY, json=CHAT))
        assert_unavailable(await client.get("/v1/models", headers=A_KEY))
    assert records.at(logging.ERROR) == []


async def test_an_outage_after_start_answers_503_on_every_route(
    settings: Settings, tmp_path: Path, records: Records
) -> None:
    """The key is cached, so the request gets past the key check and meets the outage in its route."""
    here = tmp_path / "db" / "heytoken.db"
    up = settings.model_copy(update={"database_url": sqlite_url(here), "key_cache_ttl_seconds": 600})
    here.parent.mkdir()
    await asyncio.to_thread(migrate, up)
    engine = create_engine(up)
    async with unit_of_work(create_sessionmaker(engine)) as session:
        account = await accounts.create_account(session, "outage")
        _, key = await accounts.create_key(session, account, name="k")
    await engine.dispose()
    headers = {"Authorization": f"Bearer {key}"}
    async with AsyncTestClient(app=create_app(up), timeout=30) as client:
        assert (await client.get("/v1/jobs/chatcmpl-nope", headers=headers)).status_code == 404
        here.parent.rename(tmp_path / "gone")
        await client.app.state.resources.engine.dispose()  # pooled connections would keep the old file open
        for path in ("/v1/jobs/chatcmpl-nope", "/v1/account", "/v1/videos"):
            assert_unavailable(await client.get(path, headers=headers))
    assert records.at(logging.ERROR) == []
    assert len([r for r in records.at(logging.WARNING) if "database.unavailable" in r.getMessage()]) == 1


def test_a_bug_is_not_an_outage() -> None:
    import sqlite3

    from sqlalchemy.exc import IntegrityError, ProgrammingError

    syntax = sqlite3.OperationalError("near 'selec': syntax error")
    assert not is_database_outage(syntax)
    assert not is_database_outage(IntegrityError("INSERT", {}, Exception("duplicate")))
    assert not is_database_outage(ProgrammingError("SELECT", {}, Exception("no such column")))
    assert not is_database_outage(OSError("disk full, in the object store"))
    assert is_database_outage(ConnectionRefusedError(111, "refused")) is False  # raised outside any driver


async def test_a_silent_postgresql_host_answers_503_not_a_hang(settings: Settings, records: Records) -> None:
    """A host that takes the connection and never speaks (a partition, a dead VM behind a live port)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{silent.getsockname()[1]}/test"
        stuck = settings.model_copy(update={"database_url": url, "database_connect_timeout_seconds": 0.2})
        # The client's own timeout (30 s) is below asyncpg's default connect timeout (60 s).
        async with AsyncTestClient(app=create_app(stuck), timeout=30) as client:
            assert_unavailable(await client.get("/v1/models", headers=A_KEY))
            assert (await client.get("/readyz")).status_code == 503
    assert records.at(logging.ERROR) == []


class Proxy:
    """A TCP forwarder to PostgreSQL on a port of its own, in a thread: the database "comes back" when
    it starts listening."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(5)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._pipe_both, "127.0.0.1", self.port)

    async def _pipe_both(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


async def test_postgresql_down_at_start_then_back(settings: Settings, database_url: str, records: Records) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("needs the suite on PostgreSQL (HEYTOKEN_TEST_DATABASE_URL)")
    real = make_url(database_url)
    proxy = Proxy((real.host or "127.0.0.1", real.port or 5432))
    via_proxy = real.set(port=proxy.port).render_as_string(hide_password=False)
    down = settings.model_copy(update={"database_url": via_proxy})
    try:
        async with AsyncTestClient(app=create_app(down), timeout=30) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 503
            assert_unavailable(await client.post("/v1/chat/completions", headers=A_KEY, json=CHAT))
            proxy.start()

            async def ready_now() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await apoll(ready_now, timeout=10, message="/readyz 200 once PostgreSQL answers")
            assert (await client.post("/v1/chat/completions", headers=A_KEY, json=CHAT)).status_code == 401
    finally:
        proxy.stop()
    assert records.at(logging.ERROR) == []
