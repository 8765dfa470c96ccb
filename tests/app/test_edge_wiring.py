"""The same edge rules through both pipelines (the fast path and Litestar's): the per-address throttle
of failed key lookups, and a database outage met deep in a fast-path route."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

from litestar.testing import AsyncTestClient

from app.accounts import service as accounts
from app.accounts.service import generate_key
from app.api.main import create_app
from app.cli.runner import migrate
from app.core.db import create_engine, create_sessionmaker, unit_of_work
from app.core.outage import outages
from app.core.settings import Settings

CHAT = {"model": "local-chat", "messages": [{"role": "user", "content": "hi"}]}


def random_key() -> dict[str, str]:
    return {"Authorization": f"Bearer {generate_key()}"}


async def test_random_keys_from_one_address_are_throttled_on_every_route(settings: Settings) -> None:
    # Its own Redis prefix: the failure count is shared through Redis, and every in-process request
    # comes from the one address "testclient".
    strict = settings.model_copy(
        update={
            "invalid_key_limit": 2,
            "invalid_key_window_seconds": 600,
            "redis_prefix": f"{settings.redis_prefix}edge-{uuid.uuid4().hex[:8]}:",
        }
    )
    async with AsyncTestClient(app=create_app(strict), timeout=30) as client:
        assert (await client.post("/v1/chat/completions", headers=random_key(), json=CHAT)).status_code == 401
        assert (await client.get("/v1/models", headers=random_key())).status_code == 401
        for answer in (
            await client.post("/v1/chat/completions", headers=random_key(), json=CHAT),
            await client.get("/v1/models", headers=random_key()),
        ):
            assert answer.status_code == 429, answer.text
            error = answer.json()["error"]
            assert (error["type"], error["code"]) == ("rate_limit_exceeded", "too_many_invalid_keys")
            assert int(answer.headers["retry-after"]) > 0


async def test_an_outage_in_a_fast_path_route_is_503(settings: Settings, tmp_path: Path) -> None:
    """Idempotency-Key makes the chat route read the database: past the (cached) key check."""
    here = tmp_path / "db" / "heytoken.db"
    up = settings.model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{here.as_posix()}", "key_cache_ttl_seconds": 600}
    )
    here.parent.mkdir()
    await asyncio.to_thread(migrate, up)
    engine = create_engine(up)
    async with unit_of_work(create_sessionmaker(engine)) as session:
        account = await accounts.create_account(session, "outage-fast")
        _, key = await accounts.create_key(session, account, name="k")
    await engine.dispose()
    outages.reset()
    errors: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = errors.append  # type: ignore[method-assign]
    async with AsyncTestClient(app=create_app(up), timeout=30) as client:
        logging.getLogger("heytoken").addHandler(handler)
        try:
            headers = {"Authorization": f"Bearer {key}"}
            assert (await client.post("/v1/chat/completions", headers=headers, json=CHAT)).status_code == 200
            here.parent.rename(tmp_path / "gone")
            await client.app.state.resources.engine.dispose()
            answer = await client.post("/v1/chat/completions", headers={**headers, "Idempotency-Key": "k-1"}, json=CHAT)
        finally:
            logging.getLogger("heytoken").removeHandler(handler)
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "service_unavailable" and answer.headers["retry-after"]
    assert errors == []
