"""API keys: Bearer required on every /v1 route, hash-only storage, revocation within the cache TTL."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlmodel import select

from app.accounts import service as accounts
from app.accounts.models import ApiKey
from app.core.db import SessionMaker, unit_of_work
from tests.conftest import Tenant
from tests.support import apoll

CHAT = {"model": "local-chat", "messages": [{"role": "user", "content": "hi"}]}
ROUTES = [
    ("GET", "/v1/models"),
    ("GET", "/v1/models/local-chat"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/embeddings"),
    ("POST", "/embeddings"),
    ("GET", "/v1/jobs/chatcmpl-x"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic abc", "Bearer sk-ht-short", "Bearer sk-xx-" + "a" * 43, "Bearer sk-ht-" + "a" * 43],
)
async def test_every_v1_route_requires_a_valid_key(
    client: AsyncTestClient[Any], method: str, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.request(method, path, headers=headers, json=CHAT if method == "POST" else None)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] in ("invalid_api_key", "missing_api_key")


async def test_key_format_and_hash_only_storage(tenant: Tenant, sessionmaker: SessionMaker) -> None:
    assert tenant.key.startswith("sk-ht-") and len(tenant.key) >= 6 + 32
    async with sessionmaker() as session:
        stored = (await session.exec(select(ApiKey).where(ApiKey.id == tenant.key_id))).one()
        values = [str(v) for v in stored.model_dump().values()]
    assert tenant.key not in values
    assert all(tenant.key[6:] not in v for v in values)
    assert stored.key_hash == hashlib.sha256(tenant.key.encode()).hexdigest()
    assert accounts.mask_key(stored) == f"{tenant.key[:10]}…{tenant.key[-4:]}"


async def test_revoked_key_is_refused_within_cache_ttl(
    client: AsyncTestClient[Any], tenant: Tenant, sessionmaker: SessionMaker
) -> None:
    assert (await client.get("/v1/models", headers=tenant.headers)).status_code == 200
    async with unit_of_work(sessionmaker) as session:
        await accounts.revoke_key(session, tenant.key_id)

    async def refused() -> bool:
        return (await client.get("/v1/models", headers=tenant.headers)).status_code == 401

    # key_cache_ttl_seconds is 0.5 in the test settings
    await apoll(refused, timeout=2, message="revoked key refused")


async def test_suspended_account_is_refused(
    client: AsyncTestClient[Any], tenant: Tenant, sessionmaker: SessionMaker
) -> None:
    async with unit_of_work(sessionmaker) as session:
        await accounts.set_account_status(session, tenant.account_id, accounts.AccountStatus.SUSPENDED)

    async def refused() -> bool:
        return (await client.get("/v1/models", headers=tenant.headers)).status_code == 403

    await apoll(refused, timeout=2, message="suspended account refused")


async def test_every_api_route_under_v1_and_at_the_root_refuses_a_missing_key(client: AsyncTestClient[Any]) -> None:
    """All routes, as mounted: the key check is a router-level before_request hook, which a handler's
    own hook would replace, so no handler may set one."""
    import re

    from litestar.routes import HTTPRoute

    from app.api.main import API_HANDLERS

    assert all(getattr(handler, "before_request", None) is None for handler in API_HANDLERS)
    checked = 0
    for route in client.app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/v1/"):
            continue
        for path in (route.path, route.path.removeprefix("/v1")):
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
                response = await client.request(method, concrete, json={} if method == "POST" else None)
                assert response.status_code == 401, (method, concrete, response.text)
                assert response.json()["error"]["code"] == "missing_api_key", (method, concrete)
                checked += 1
    assert checked >= 2 * 20


async def test_the_api_answers_without_its_prefix_from_routes_built_once(
    client: AsyncTestClient[Any], tenant: Tenant
) -> None:
    """`/models` is `/v1/models`: the gateway rewrites the path; no second router builds every API route
    again without the prefix (that cost each web process 0.8 MB, issue #23)."""
    paths = [route.path for route in client.app.routes]
    api = {path.split("/")[2] for path in paths if path.startswith("/v1/")}
    assert {"chat", "models", "videos", "webhooks"} <= api
    assert [path for path in paths if not path.startswith("/v1/") and path.split("/")[1] in api] == []
    for path in ("/models", "/models/local-chat", "/account"):
        unversioned = await client.get(path, headers=tenant.headers)
        assert unversioned.status_code == 200, (path, unversioned.text)
        assert unversioned.json() == (await client.get("/v1" + path, headers=tenant.headers)).json()
    missing = await client.get("/models/no-such-model", headers=tenant.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    assert (await client.get("/healthz")).status_code == 200


async def test_openapi_schema_lists_the_v1_routes_only(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/v1/chat/completions" in paths and "/v1/embeddings" in paths
    assert "/chat/completions" not in paths


async def test_concurrent_requests_of_an_uncached_key_share_one_lookup(
    sessionmaker: SessionMaker, tenant: Tenant
) -> None:
    import asyncio

    from app.accounts.auth import KeyAuthenticator
    from app.accounts.limits import Limits

    auth = KeyAuthenticator(sessionmaker, ttl_seconds=60, default_limits=Limits(1, 1, 1, 1))
    loads: list[str] = []
    real = auth._load

    async def counted(digest: str) -> Any:
        loads.append(digest)
        return await real(digest)

    auth._load = counted  # type: ignore[method-assign]
    bearer = f"Bearer {tenant.key}"
    principals = await asyncio.gather(*(auth.authenticate(bearer) for _ in range(20)))
    assert len(loads) == 1
    assert {p.key_id for p in principals} == {tenant.key_id}
    await auth.authenticate(bearer)  # cached now
    assert len(loads) == 1
    auth.forget(bearer)
    await auth.authenticate(bearer)
    assert len(loads) == 2
