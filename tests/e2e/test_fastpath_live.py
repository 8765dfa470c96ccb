"""The fast path (app/api/fastpath.py) on a real socket: chunked bodies and clients that go away."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from app.core.settings import Settings
from tests.conftest import AddChannel, Tenant, unique_model
from tests.fakes.upstream import MockUpstream, Reply, chunk
from tests.support import LiveServer, apoll


async def test_chunked_body_over_the_limit_is_413(live: LiveServer, tenant: Tenant, settings: Settings) -> None:
    """A chunked body announces no length: the limit holds on the bytes as they arrive."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model": "local-chat", "messages": [{"role": "user", "content": "'
        for _ in range(settings.max_body_bytes // 65536 + 1):
            yield b"x" * 65536
        yield b'"}]}'

    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        response = await http.post("/v1/chat/completions", headers=tenant.headers, content=chunks())
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_chunked_body_within_the_limit_is_served(live: LiveServer, tenant: Tenant) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model": "local-embedding", '
        yield b'"input": "in two parts", "dimensions": 4}'

    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        response = await http.post("/v1/embeddings", headers=tenant.headers, content=chunks())
    assert response.status_code == 200, response.text
    assert len(response.json()["data"][0]["embedding"]) == 4


async def test_client_leaving_a_silent_stream_is_seen_at_once(
    live: LiveServer, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    """The upstream sends one event and then nothing: the client's disconnect must still end the
    stream (and its job) at once, not at the upstream's next chunk."""
    model = unique_model("gpt")
    await add_channel(mock_upstream.base_url, [model])
    mock_upstream.default["/v1/chat/completions"] = lambda body: Reply(
        sse=[chunk("first"), chunk("second")], chunk_delay=60
    )
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as http:

        async def listed() -> bool:
            return (await http.get(f"/v1/models/{model}", headers=tenant.headers)).status_code == 200

        await apoll(listed, timeout=10, message=f"{model} served")
        request = {"model": model, "stream": True, "messages": [{"role": "user", "content": "go"}]}
        async with http.stream("POST", "/v1/chat/completions", headers=tenant.headers, json=request) as response:
            assert response.status_code == 200
            job_id = response.headers["x-request-id"]
            async for part in response.aiter_raw():
                assert b"first" in part
                break
        closed_at = time.monotonic()

        async def cancelled() -> dict[str, Any] | None:
            job = await http.get(f"/v1/jobs/{job_id}", headers=tenant.headers)
            return job.json() if job.status_code == 200 else None

        job = await apoll(cancelled, timeout=5, message="the stream's job row")
    assert job["status"] == "cancelled"
    # Recorded within the job log's flush interval of the disconnect, not after the 60 s silence.
    assert time.monotonic() - closed_at < 5
