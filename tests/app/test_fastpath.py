"""The fast path (app/fastpath.py) answers chat completions and embeddings exactly as the Litestar routes
do: the same statuses, bodies, headers and errors, whichever layer serves the request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.fastpath import Gateway
from app.main import create_app
from app.settings import Settings
from tests.conftest import Tenant

CHAT = {"model": "local-chat", "messages": [{"role": "user", "content": "Say something."}]}
IGNORED_HEADERS = {"date", "x-heytoken-overhead-ms", "x-request-id", "content-length", "x-ratelimit-reset-requests"}


@pytest.fixture(scope="module")
async def framework(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    """The same app with the fast path off: Litestar serves every route."""
    app = create_app(settings.model_copy(update={"fast_path": False}))
    assert isinstance(app, Gateway) and app.fast is None
    async with AsyncTestClient(app=app, timeout=30) as test_client:
        yield test_client


def header_names(response: Any) -> set[str]:
    return {name for name in response.headers if name not in IGNORED_HEADERS}


def without_ids(value: Any) -> Any:
    """A body with its per-request ids taken out (they differ between two calls)."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k not in ("id", "created")}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


def sse(text: str) -> list[Any]:
    events = [e.removeprefix("data: ") for e in text.split("\n\n") if e.strip()]
    return [e if e == "[DONE]" else without_ids(json.loads(e)) for e in events]


CASES: list[tuple[str, str, Any, dict[str, str]]] = [
    ("chat", "/v1/chat/completions", CHAT, {}),
    ("chat at the root", "/chat/completions", CHAT, {}),
    ("stream", "/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}}, {}),
    ("embeddings", "/v1/embeddings", {"model": "local-embedding", "input": ["a", "b"], "dimensions": 8}, {}),
    ("embeddings at the root", "/embeddings", {"model": "local-embedding", "input": "a", "dimensions": 8}, {}),
    ("invalid input", "/v1/embeddings", {"model": "local-embedding", "input": []}, {}),
    ("unknown model", "/v1/chat/completions", {**CHAT, "model": "no-such-model"}, {}),
    ("not json", "/v1/chat/completions", b"{not json", {}),
    ("not an object", "/v1/embeddings", b"[1, 2]", {}),
    ("stream with an idempotency key", "/v1/chat/completions", {**CHAT, "stream": True}, {"Idempotency-Key": "k"}),
    ("bad idempotency key", "/v1/chat/completions", CHAT, {"Idempotency-Key": "x" * 300}),
]


@pytest.mark.parametrize(("path", "body", "extra"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_same_answer_as_the_framework(
    client: AsyncTestClient[Any],
    framework: AsyncTestClient[Any],
    tenant: Tenant,
    path: str,
    body: Any,
    extra: dict[str, str],
) -> None:
    assert isinstance(client.app, Gateway) and client.app.fast is not None
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    headers = {**tenant.headers, **extra, "content-type": "application/json"}
    fast = await client.post(path, headers=headers, **kwargs)
    slow = await framework.post(path, headers=headers, **kwargs)
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    assert header_names(fast) == header_names(slow)
    assert fast.headers["content-type"] == slow.headers["content-type"]
    if fast.headers["content-type"].startswith("text/event-stream"):
        assert sse(fast.text) == sse(slow.text)
    else:
        assert without_ids(fast.json()) == without_ids(slow.json())
    if fast.status_code == 200:
        # Admission ran on both: the rate headers came along, once each.
        assert fast.headers.get_list("x-ratelimit-limit-requests") == ["100"]
        assert fast.headers["x-request-id"] != slow.headers["x-request-id"]


@pytest.mark.parametrize("auth", [None, "Bearer sk-ht-not-a-real-key", "Basic abc"])
async def test_key_check_is_the_same(
    client: AsyncTestClient[Any], framework: AsyncTestClient[Any], auth: str | None
) -> None:
    headers = {"authorization": auth} if auth else {}
    fast = await client.post("/v1/chat/completions", headers=headers, json=CHAT)
    slow = await framework.post("/v1/chat/completions", headers=headers, json=CHAT)
    assert fast.status_code == slow.status_code == 401
    assert fast.json() == slow.json()


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
