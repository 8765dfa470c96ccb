"""Operations: idle and maximum session timeouts, draining on shutdown, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI
from websockets.exceptions import ConnectionClosedError

from app.core.db import SessionMaker
from app.core.settings import Settings
from tests.conftest import Tenant
from tests.realtime.conftest import OPEN, finished_job, turn, until
from tests.support import LiveServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def short(settings: Settings) -> Iterator[LiveServer]:
    """A gateway whose sessions end after 1 s of silence from the client, or 2.5 s in all."""
    update = {"realtime_idle_timeout_seconds": 1.0, "realtime_max_session_seconds": 2.5}
    server = LiveServer(settings.model_copy(update=update)).start()
    yield server
    server.stop()


async def read_until_closed(connection: Any) -> list[Any]:
    """Every event until the server closes the socket cleanly (the SDK's iteration just ends)."""
    return [event async for event in connection]


async def test_idle_session_is_closed(short: LiveServer, tenant: Tenant, sessionmaker: SessionMaker) -> None:
    sdk = AsyncOpenAI(api_key=tenant.key, base_url=f"{short.url}/v1", max_retries=0)
    async with sdk.realtime.connect(model="local-realtime", websocket_connection_options=OPEN) as connection:
        events = await read_until_closed(connection)
    assert [e.error.code for e in events if e.type == "error"] == ["idle_timeout"]
    job = await finished_job(sessionmaker, tenant)
    assert job.usage is not None and job.usage["close_reason"] == "idle_timeout" and job.usage["close_code"] == 1000


async def test_session_reaching_its_maximum_duration(
    short: LiveServer, tenant: Tenant, sessionmaker: SessionMaker
) -> None:
    sdk = AsyncOpenAI(api_key=tenant.key, base_url=f"{short.url}/v1", max_retries=0)
    async with sdk.realtime.connect(model="local-realtime", websocket_connection_options=OPEN) as connection:
        await until(connection, "session.created", [])

        async def keep_talking() -> None:
            # Never idle: a frame every 0.3 s, until the session ends.
            while True:
                await connection.input_audio_buffer.clear()
                await asyncio.sleep(0.3)

        talker = asyncio.create_task(keep_talking())
        try:
            events = await read_until_closed(connection)
        finally:
            talker.cancel()
            await asyncio.gather(talker, return_exceptions=True)
    assert [e.error.code for e in events if e.type == "error"] == ["session_expired"]
    job = await finished_job(sessionmaker, tenant)
    assert job.usage is not None and job.usage["close_reason"] == "max_duration"


async def test_metrics_count_sessions_frames_and_bytes(sdk: AsyncOpenAI, live: LiveServer) -> None:
    async with sdk.realtime.connect(model="local-realtime", websocket_connection_options=OPEN) as connection:
        await until(connection, "session.created", [])
        await turn(connection, text="count me")
        async with httpx.AsyncClient(base_url=live.url) as http:
            text = (await http.get("/metrics")).text
    assert "heytoken_realtime_sessions " in text and "heytoken_realtime_sessions_opened_total" in text
    for direction in ("in", "out"):
        for name in ("frames", "bytes"):
            prefix = f'heytoken_realtime_{name}_total{{direction="{direction}"}}'
            line = next(x for x in text.splitlines() if x.startswith(prefix))
            assert float(line.split()[-1]) > 0


async def test_shutdown_drains_sessions(short: LiveServer, tenant: Tenant, sessionmaker: SessionMaker) -> None:
    """Last in this module: it stops the server."""
    sdk = AsyncOpenAI(api_key=tenant.key, base_url=f"{short.url}/v1", max_retries=0)
    async with sdk.realtime.connect(model="local-realtime", websocket_connection_options=OPEN) as connection:
        await until(connection, "session.created", [])
        await turn(connection, text="hello")
        stopping = asyncio.create_task(asyncio.to_thread(short.stop))
        with pytest.raises(ConnectionClosedError) as caught:
            await read_until_closed(connection)
        await stopping
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1012
    job = await finished_job(sessionmaker, tenant)
    assert job.status == "completed" and job.usage is not None
    assert job.usage["close_reason"] == "server_shutdown" and job.usage["responses"] == 1
