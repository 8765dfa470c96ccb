"""Fixtures for the whole suite.

Isolation: each test run gets its own database (a SQLite file, or — with HEYTOKEN_TEST_DATABASE_URL set
to a PostgreSQL URL — a fresh database created next to the given one and dropped afterwards) and its
own Redis key prefix, so several runs can share one PostgreSQL and one Redis. Tests make their own
accounts, keys and channels with unique names and never assume an empty table.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import threading
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from openai import AsyncOpenAI
from openai._base_client import AsyncHttpxClientWrapper
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy.engine import make_url

from app.accounts import service as accounts
from app.api.main import create_app
from app.billing import service as billing
from app.channels import service as channels
from app.cli.runner import migrate
from app.core.db import SessionMaker, create_engine, create_sessionmaker, unit_of_work
from app.core.settings import Settings
from app.webhooks.events import install as install_job_events
from tests import stall_probe
from tests.fakes.upstream import MockUpstream
from tests.fakes.vendors import AnthropicUpstream, GeminiUpstream, ScriptedAnswers
from tests.support import LiveServer, WorkerProcess

stall_probe.install()


def pytest_sessionfinish(session: pytest.Session) -> None:
    stall_probe.report_foreign()


_SDK_CLIENTS: list[weakref.ref[Any]] = []
"""Every AsyncOpenAI and redis.asyncio.Redis made on the tests' own thread (see _close_sdk_clients)."""


def _track(cls: Any) -> None:
    real_init = cls.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        # The tests' thread only: an in-process app's clients live on its portal thread's loop and are
        # closed by its lifespan.
        if threading.current_thread() is threading.main_thread():
            _SDK_CLIENTS.append(weakref.ref(self))

    cls.__init__ = init


_track(AsyncOpenAI)
_track(AsyncRedis)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every async test closes what it left open (below). Not an autouse fixture: an async fixture cannot
    # be set up for a sync test that runs an event loop of its own (Playwright's sync API, the console's
    # browser tests), and a sync test makes no asyncio client.
    for item in items:
        if inspect.iscoroutinefunction(getattr(item, "function", None)):
            item.fixturenames.append("_close_sdk_clients")


@pytest.fixture
async def _close_sdk_clients() -> AsyncIterator[None]:
    """Close, on the test's own event loop, every AsyncOpenAI and redis.asyncio client the test made and
    left open (redis-py's Connection.__del__ does the same as the SDK's below: it closes its transport from
    whichever thread collects it, a loop running there; that is what the stalled run's probe recorded).

    An SDK client left to the garbage collector is a hazard for every later test: the collection may run
    in any thread, often one running an event loop of its own (the in-process app's portal thread, a mock
    server's). There the unclosed transports' __del__ closes their sockets, freeing those fd numbers, and
    the SDK's __del__ schedules aclose() on that thread's loop; the aclose then aborts the transports,
    which remove "their" fd from the session loop's selector, by then the fd of a new connection of a
    running test, from the wrong thread. That connection's read interest is gone: its response sits in
    the socket unread and the request waits out its client timeout (captured by tests/stall_probe.py:
    transport reading, no selector key and no epoll interest for its fd, 1327 bytes in Recv-Q, the fd's
    last close 3 s earlier in the portal thread by _SelectorTransport.__del__)."""
    made = len(_SDK_CLIENTS)
    yield
    mine, _SDK_CLIENTS[made:] = _SDK_CLIENTS[made:], []
    for ref in mine:
        made_here = ref()
        if isinstance(made_here, AsyncRedis):
            with contextlib.suppress(Exception):  # one made under another (closed) loop cannot be closed here
                await made_here.aclose()
        # Only the SDK's own HTTP client: one passed in (the in-process test client) belongs to its fixture.
        elif (
            made_here is not None
            and isinstance(made_here._client, AsyncHttpxClientWrapper)
            and not made_here.is_closed()
        ):
            await made_here.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test that talked to a live gateway shows the end of its log, with where every task of the
    server was waiting at the failure (tests/support.py LiveServer.dump)."""
    report = yield
    waited = stall_probe.reports_of(item.nodeid)  # a fixture's request (setup) too
    if report.failed:
        for text in waited:
            report.sections.append(
                ("client side of a request that waited for its response (tests/stall_probe.py)", text)
            )
    if report.failed and call.when == "call":
        for process in _processes(getattr(item, "funcargs", {}).values()):
            if isinstance(process, LiveServer):
                report.sections.append((f"live gateway log, port {process.port}", process.dump()))
            else:
                report.sections.append((f"worker log, {process.log_path.name}", process.dump()))
    return report


def _processes(values: Any) -> list[LiveServer | WorkerProcess]:
    """The gateway and worker processes among a test's fixtures, and inside them (a stack of both)."""
    found: list[LiveServer | WorkerProcess] = []
    for value in values:
        for candidate in (value, *getattr(value, "__dict__", {}).values()):
            if isinstance(candidate, LiveServer | WorkerProcess) and candidate not in found:
                found.append(candidate)
    return found


install_job_events()  # the wiring that create_app and the worker's boot do (app/jobs/events.py)
RUN_ID = uuid.uuid4().hex[:10]
ADMIN_TOKEN = "admin-test-token"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("HEYTOKEN_TEST_DATABASE_URL")
    if not given:
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'heytoken.db'}"
        return
    import asyncpg

    base = make_url(given)
    name = f"ht_test_{RUN_ID}"
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Settings:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        var_dir=tmp_path_factory.mktemp("var"),
        database_url=database_url,
        redis_prefix=f"ht-test-{RUN_ID}:",
        secret_key="test-secret-key-not-for-production",  # type: ignore[arg-type]
        key_cache_ttl_seconds=0.5,
        # Every in-process request comes from one address ("testclient"); tests of the throttle make their own.
        invalid_key_limit=10_000,
        catalog_refresh_seconds=0.1,
        cooldown_sync_seconds=0.1,
        job_log_flush_ms=10,
        local_provider=True,
        admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
        log_level="WARNING",
        # Webhook receivers in the tests listen on 127.0.0.1 over plain http.
        webhook_allow_http=True,
        webhook_trusted_networks=["127.0.0.1/32"],
        # Tests write rows dated months or centuries back; the servers of the session must not prune
        # them under a test's feet (tests/jobs/test_retention.py prunes with its own JobLogRetention).
        job_retention_days=0,
    )
    migrate(settings)
    return settings


@pytest.fixture(scope="session", autouse=True)
def _clean_redis(settings: Settings) -> Iterator[None]:
    yield
    client = Redis.from_url(settings.redis_url)
    keys = list(client.scan_iter(match=f"{settings.redis_prefix}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
async def sessionmaker(settings: Settings) -> AsyncIterator[SessionMaker]:
    engine = create_engine(settings)
    yield create_sessionmaker(engine)
    await engine.dispose()


@dataclass
class Tenant:
    account_id: str
    account_name: str
    key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="session")
def make_tenant(sessionmaker: SessionMaker) -> Callable[..., Awaitable[Tenant]]:
    async def make(*, unlimited: bool = False) -> Tenant:
        """A fresh account and key; `unlimited` switches the key's rate limits off (load-style tests)."""
        async with unit_of_work(sessionmaker) as session:
            account = await accounts.create_account(session, _unique("acct"))
            api_key, plaintext = await accounts.create_key(session, account, name="test")
            if unlimited:
                api_key.rpm = api_key.rph = api_key.tpm = api_key.max_streams = 0
                session.add(api_key)
        return Tenant(account.id, account.name, plaintext, api_key.id)

    return make


@pytest.fixture
async def tenant(make_tenant: Callable[..., Awaitable[Tenant]]) -> Tenant:
    return await make_tenant()


@pytest.fixture
async def unlimited_tenant(make_tenant: Callable[..., Awaitable[Tenant]]) -> Tenant:
    return await make_tenant(unlimited=True)


@pytest.fixture(scope="session")
def upstream() -> Iterator[MockUpstream]:
    server = MockUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def mock_upstream(upstream: MockUpstream) -> Iterator[MockUpstream]:
    upstream.reset()
    yield upstream
    upstream.reset()


@pytest.fixture(scope="session")
def upstream_b() -> Iterator[MockUpstream]:
    """A second OpenAI-compatible upstream, for failover between two channels."""
    server = MockUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def mock_upstream_b(upstream_b: MockUpstream) -> Iterator[MockUpstream]:
    upstream_b.reset()
    yield upstream_b
    upstream_b.reset()


@pytest.fixture(scope="session")
def vendor_servers() -> Iterator[dict[str, ScriptedAnswers]]:
    """Mock OpenAI-compatible, Anthropic and Gemini upstreams answering the same scenario."""
    servers = {"openai": ScriptedAnswers(), "anthropic": AnthropicUpstream(), "gemini": GeminiUpstream()}
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def vendors(vendor_servers: dict[str, ScriptedAnswers]) -> Iterator[dict[str, ScriptedAnswers]]:
    for server in vendor_servers.values():
        server.reset()
    yield vendor_servers
    for server in vendor_servers.values():
        server.reset()


@pytest.fixture(scope="session")
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app in-process (ASGI, no socket): fast, for most API tests."""
    app = create_app(settings)
    async with AsyncTestClient(app=app, timeout=30) as test_client:
        yield test_client


async def wait_for_model(client: AsyncTestClient[Any], model: str) -> None:
    """Wait until the app's catalog (refreshed in the background) serves `model`."""
    from tests.support import apoll

    def listed() -> bool:
        return model in client.app.state.resources.catalog.current.models

    await apoll(listed, timeout=5, message=f"{model} in the catalog")


@pytest.fixture(scope="session")
def live(settings: Settings) -> Iterator[LiveServer]:
    """The gateway on a real socket, started as the Procfile starts it."""
    server = LiveServer(settings).start()
    yield server
    server.stop()


AddChannel = Callable[..., Awaitable[str]]


@pytest.fixture(scope="session")
def add_channel(sessionmaker: SessionMaker, settings: Settings) -> AddChannel:
    """Create an OpenAI-compatible channel; returns its name. Callers wait for the catalog to see it."""

    async def add(
        base_url: str,
        models: list[str],
        *,
        api_key: str | None = "sk-upstream-test",
        provider: str = "openai",
        priority: int = 0,
        weight: int = 1,
        options: dict[str, Any] | None = None,
        price: dict[str, Any] | bool | None = True,
    ) -> str:
        """`price`: True → a free price row for each model; a dict → those price fields; False → none."""
        name = _unique("channel")
        async with unit_of_work(sessionmaker) as session:
            await channels.add_channel(
                session,
                secret_key=settings.resolved_secret_key(),
                name=name,
                provider=provider,
                base_url=base_url,
                api_key=api_key,
                models=models,
                priority=priority,
                weight=weight,
                options=options,
            )
            if price is not False:
                fields = price if isinstance(price, dict) else {}
                for spec in models:
                    await billing.set_price(session, channels.parse_model_spec(spec)[0], **fields)
        return name

    return add


def unique_model(prefix: str = "model") -> str:
    return _unique(prefix)
