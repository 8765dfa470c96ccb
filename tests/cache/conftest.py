"""Fixtures of the response-cache tests: the OpenAI SDK on the in-process app, a priced model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from openai import AsyncOpenAI
from redis import Redis

from app.cache.store import cache_redis_url
from app.core.settings import Settings
from tests.conftest import AddChannel, Tenant, unique_model, wait_for_model
from tests.fakes.upstream import MockUpstream

# $1 / 1M input tokens, $2 / 1M output tokens: the mock's 11 in + 7 out cost 25 micro-dollars.
PRICE = {"input_per_mtok": 1_000_000, "output_per_mtok": 2_000_000}
COST = 25
ON = {"x-heytoken-cache": "on"}


@pytest.fixture(scope="session", autouse=True)
def _clean_cache(settings: Settings) -> Iterator[None]:
    yield
    client = Redis.from_url(cache_redis_url(settings))
    keys = list(client.scan_iter(match=f"{settings.redis_prefix}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def sdk(client: AsyncTestClient[Any], tenant: Tenant) -> AsyncOpenAI:
    """The SDK over the in-process app (the test client is an httpx client: the SDK takes it as is)."""
    return AsyncOpenAI(api_key=tenant.key, base_url=f"{client.base_url}v1", http_client=client, max_retries=0)


async def priced_model(client: AsyncTestClient[Any], add_channel: AddChannel, upstream: MockUpstream) -> str:
    model = unique_model("cached")
    await add_channel(upstream.base_url, [model], price=PRICE)
    await wait_for_model(client, model)
    return model
