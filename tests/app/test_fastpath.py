"""POST chat completions and embeddings have one pipeline (app/api/fastpath.py): every POST to their paths
is served by it, a trailing slash included, and the key check follows the same rules as every other
route (a repeated Authorization header is refused everywhere, not read differently by two layers)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.core.settings import Settings
from tests.conftest import Tenant

CHAT = {"model": "local-chat", "messages": [{"role": "user", "content": "Say something."}]}
EMBED = {"model": "local-embedding", "input": "a", "dimensions": 8}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions/", CHAT),
        ("/chat/completions/", CHAT),
        ("/v1/embeddings/", EMBED),
        ("/embeddings/", EMBED),
    ],
)
async def test_a_trailing_slash_takes_the_same_pipeline(
    client: AsyncTestClient[Any], tenant: Tenant, path: str, body: dict[str, Any]
) -> None:
    plain = await client.post(path.rstrip("/"), headers=tenant.headers, json=body)
    slashed = await client.post(path, headers=tenant.headers, json=body)
    assert slashed.status_code == plain.status_code == 200
    assert slashed.json()["object"] == plain.json()["object"]
    # Unknown fields are the edge's to pass through; the framework's typed decoder would reject them.
    odd = await client.post(path, headers=tenant.headers, json={**body, "a_future_openai_field": {"x": 1}})
    assert odd.status_code == 200, odd.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/chat/completions", CHAT),
        ("POST", "/v1/embeddings", EMBED),
        ("GET", "/v1/account", None),
        ("GET", "/v1/models", None),
    ],
)
async def test_a_repeated_authorization_header_is_refused_on_every_route(
    client: AsyncTestClient[Any], tenant: Tenant, method: str, path: str, body: dict[str, Any] | None
) -> None:
    headers = [("authorization", tenant.headers["Authorization"]), ("authorization", "Bearer sk-ht-someone-else")]
    # httpx's own ASGI transport sends repeated headers as they are (the test client folds them).
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app), base_url="http://test") as raw:
        response = await raw.request(method, path, headers=headers, json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["code"], error["param"]) == ("invalid_header", "Authorization")
        # The same headers in the other order: still refused (no copy wins).
        response = await raw.request(method, path, headers=headers[::-1], json=body)
        assert response.status_code == 400


@pytest.mark.parametrize("auth", [None, "Bearer sk-ht-not-a-real-key", "Basic abc"])
async def test_key_check_is_the_same_as_other_routes(client: AsyncTestClient[Any], auth: str | None) -> None:
    headers = {"authorization": auth} if auth else {}
    chat = await client.post("/v1/chat/completions", headers=headers, json=CHAT)
    account = await client.get("/v1/account", headers=headers)
    assert chat.status_code == account.status_code == 401
    assert chat.json() == account.json()


async def test_announced_length_over_the_limit_is_413(
    client: AsyncTestClient[Any], tenant: Tenant, settings: Settings
) -> None:
    big = json.dumps({**CHAT, "messages": [{"role": "user", "content": "x" * settings.max_body_bytes}]})
    response = await client.post("/v1/embeddings", headers=tenant.headers, content=big)
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "Request body is larger than this server accepts."


async def test_other_methods_and_paths_still_reach_the_framework(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    wrong_method = await client.get("/v1/chat/completions", headers=tenant.headers)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    schema = await client.get("/schema/openapi.json")
    assert "/v1/chat/completions" in schema.json()["paths"]
