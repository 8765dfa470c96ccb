"""A gateway of its own for the tests that fire generated or scripted requests at the whole API
(Schemathesis, the documented answers): its own web process, database and Redis prefix, since admin
requests there create accounts and change tiers and channels, which the rest of the suite must not see."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from app.cli.runner import migrate
from app.core.settings import Settings
from tests.conftest import ADMIN_HEADERS
from tests.support import LiveServer


@pytest.fixture(scope="session")
def gateway(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    own = settings.model_copy(
        update={
            "database_url": f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('schemathesis') / 'db.sqlite'}",
            "redis_prefix": f"{settings.redis_prefix}st-{uuid.uuid4().hex[:6]}:",
        }
    )
    migrate(own)
    server = LiveServer(own).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def api_key(gateway: LiveServer) -> str:
    """An account of `gateway` with money and no rate limits, so requests get past admission."""
    with httpx.Client(base_url=gateway.url, headers=ADMIN_HEADERS, timeout=30) as admin:
        account = admin.post("/admin/accounts", json={"name": "schemathesis"}).json()
        key = admin.post(f"/admin/accounts/{account['id']}/keys", json={"name": "st"}).json()
        admin.patch(f"/admin/keys/{key['id']}", json={"rpm": 0, "rph": 0, "tpm": 0, "max_streams": 0})
        admin.post(f"/admin/accounts/{account['id']}/topups", json={"amount_usd": "1000"})
    return str(key["key"])
