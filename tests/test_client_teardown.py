"""tests/conftest.py closes the asyncio clients a test leaves open, on the test's own loop (_close_sdk_clients).

Left to the collector, an open AsyncOpenAI or redis.asyncio client is finalized in whichever thread the
collection runs in; with an event loop running there (the in-process app's portal thread, a mock server's),
its __del__ closes its transports from that thread, removing their (by then freed and reused) fd numbers
from the session loop's selector: a later test's connection then never sees its response."""

from __future__ import annotations

from typing import Any

from openai import AsyncOpenAI
from redis.asyncio import Redis

from app.core.settings import Settings
from tests.conftest import Tenant
from tests.support import LiveServer

LEFT_OPEN: list[Any] = []


async def test_a_test_leaves_an_sdk_client_and_a_redis_client_open(
    live: LiveServer, tenant: Tenant, settings: Settings
) -> None:
    sdk = AsyncOpenAI(api_key=tenant.key, base_url=f"{live.url}/v1", max_retries=0, timeout=30)
    assert [m.id async for m in sdk.models.list()]
    redis = Redis.from_url(settings.redis_url)
    assert await redis.ping()
    LEFT_OPEN.extend([sdk, redis])


async def test_its_teardown_closed_them_on_its_loop() -> None:
    sdk, redis = LEFT_OPEN
    assert sdk.is_closed()
    assert not [c for c in redis.connection_pool._available_connections if c.is_connected]
