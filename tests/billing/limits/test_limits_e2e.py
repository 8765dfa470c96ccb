"""Rate limits across real web processes sharing one Redis (issue 6's acceptance)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI

from app.core.settings import Settings
from tests.conftest import ADMIN_HEADERS, AddChannel, Tenant, unique_model
from tests.fakes.upstream import MockUpstream, Reply, chunk
from tests.support import LiveServer, apoll, free_port

pytestmark = pytest.mark.e2e
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def second(settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(settings).start()
    yield server
    server.stop()


async def set_limits(live: LiveServer, tenant: Tenant, **limits: int) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        response = await http.patch(f"/admin/keys/{tenant.key_id}", headers=ADMIN_HEADERS, json=limits)
        assert response.status_code == 200, response.text


async def served(live: LiveServer, tenant: Tenant, model: str) -> None:
    async def listed() -> bool:
        async with httpx.AsyncClient(base_url=live.url) as http:
            return (await http.get(f"/v1/models/{model}", headers=tenant.headers)).status_code == 200

    await apoll(listed, timeout=10, message=f"{model} served by {live.url}")


def ask(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, **extra}


async def test_two_processes_enforce_one_rpm(live: LiveServer, second: LiveServer, tenant: Tenant) -> None:
    async with httpx.AsyncClient(timeout=30) as http:

        async def one(i: int) -> httpx.Response:
            server = (live, second)[i % 2]
            return await http.post(f"{server.url}{CHAT}", headers=tenant.headers, json=ask("local-chat"))

        responses = await asyncio.gather(*(one(i) for i in range(150)))
    codes = [r.status_code for r in responses]
    assert (codes.count(200), codes.count(429)) == (100, 50)
    refused = [r for r in responses if r.status_code == 429]
    assert {r.json()["error"]["code"] for r in refused} == {"requests_per_minute"}
    assert {r.json()["error"]["type"] for r in refused} == {"rate_limit_exceeded"}
    for r in refused:
        assert 1 <= int(r.headers["retry-after"]) <= 61
        assert int(r.headers["retry-after-ms"]) > 0
        assert r.headers["x-ratelimit-remaining-requests"] == "0"
    ok = [r for r in responses if r.status_code == 200]
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in ok)
    assert remaining == list(range(100))
    for r in ok:
        assert r.headers["x-ratelimit-limit-requests"] == "100"
        assert r.headers["x-ratelimit-limit-tokens"] == "100000"
        assert r.headers["x-ratelimit-reset-requests"].endswith("s")


async def test_tpm_reserves_then_reflects_real_usage(
    live: LiveServer, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = unique_model("tpm")
    await add_channel(mock_upstream.base_url, [model])
    await served(live, tenant, model)
    mock_upstream.default[CHAT] = lambda body: Reply(
        delay_before=1.0,
        json={
            "id": "x",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        },
    )
    # the prompt estimate of "hi" is 8 tokens: 8 + 4992 = 5,000 reserved per request
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        responses = await asyncio.gather(
            *(http.post(CHAT, headers=tenant.headers, json=ask(model, max_tokens=4992)) for _ in range(30))
        )
        codes = [r.status_code for r in responses]
        assert codes.count(200) <= 20 and codes.count(200) + codes.count(429) == 30
        assert {r.json()["error"]["code"] for r in responses if r.status_code == 429} == {"tokens_per_minute"}
        admitted = codes.count(200)

        async def reconciled() -> bool:
            headers = (await http.get("/v1/models", headers=tenant.headers)).headers
            return headers["x-ratelimit-remaining-tokens"] == str(100_000 - admitted * 18)

        await apoll(reconciled, timeout=10, message="TPM reflects the real usage")


async def test_stream_slots(
    live: LiveServer, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = unique_model("streams")
    await add_channel(mock_upstream.base_url, [model])
    await served(live, tenant, model)
    mock_upstream.default[CHAT] = lambda body: Reply(forever=True, chunk_delay=0.05)
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        opened = []
        results = []
        for _ in range(12):
            response = await http.send(
                http.build_request("POST", CHAT, headers=tenant.headers, json=ask(model, stream=True)), stream=True
            )
            results.append(response.status_code)
            if response.status_code == 200:
                opened.append(response)
            else:
                body = json.loads(await response.aread())
                assert body["error"]["code"] == "concurrent_streams"
                assert response.headers["retry-after"] == "1"
                await response.aclose()
        assert (results.count(200), results.count(429)) == (10, 2)
        # a client that disconnects frees its slot at once
        await opened.pop().aclose()

        async def slot_free() -> bool:
            response = await http.send(
                http.build_request("POST", CHAT, headers=tenant.headers, json=ask(model, stream=True)), stream=True
            )
            if response.status_code == 200:
                opened.append(response)
                return True
            await response.aclose()
            return False

        await apoll(slot_free, timeout=5, message="the disconnected stream's slot")
        for response in opened:
            await response.aclose()


async def test_a_killed_process_frees_its_stream_slots(
    settings: Settings, live: LiveServer, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = unique_model("crash")
    await add_channel(mock_upstream.base_url, [model])
    await set_limits(live, tenant, max_streams=2)
    doomed = LiveServer(settings.model_copy(update={"stream_lease_ttl_seconds": 3})).start()
    try:
        await served(doomed, tenant, model)
        await served(live, tenant, model)
        mock_upstream.default[CHAT] = lambda body: Reply(forever=True, chunk_delay=0.05)
        async with httpx.AsyncClient(timeout=30) as http:
            streams = [
                await http.send(
                    http.build_request(
                        "POST", f"{doomed.url}{CHAT}", headers=tenant.headers, json=ask(model, stream=True)
                    ),
                    stream=True,
                )
                for _ in range(2)
            ]
            assert [s.status_code for s in streams] == [200, 200]
            assert doomed.proc is not None
            os.killpg(doomed.proc.pid, signal.SIGKILL)
            killed_at = time.monotonic()

            async def admitted_elsewhere() -> bool:
                response = await http.post(
                    f"{live.url}{CHAT}", headers=tenant.headers, json=ask("local-chat", stream=True)
                )
                return response.status_code == 200

            await apoll(admitted_elsewhere, timeout=30, interval=0.2, message="slots of the killed process")
            # the leases lapse on their own (TTL 3 s in that process), well within a minute
            assert time.monotonic() - killed_at < 30
            for s in streams:
                await s.aclose()
    finally:
        doomed.stop()


async def test_the_sdk_honours_retry_after(
    live: LiveServer, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = unique_model("retry")
    await add_channel(mock_upstream.base_url, [model])
    await set_limits(live, tenant, max_streams=1)
    await served(live, tenant, model)
    slow = [chunk(role="assistant", content=""), *[chunk("x") for _ in range(8)], chunk(finish="stop"), "[DONE]"]
    mock_upstream.script(CHAT, Reply(sse=slow, chunk_delay=0.1))
    sdk = AsyncOpenAI(api_key=tenant.key, base_url=f"{live.url}/v1", max_retries=3)
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        async with http.stream("POST", CHAT, headers=tenant.headers, json=ask(model, stream=True)) as first:
            assert first.status_code == 200
            second = asyncio.create_task(
                sdk.chat.completions.create(model=model, stream=True, messages=[{"role": "user", "content": "me too"}])
            )
            await first.aread()
        stream = await second
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text  # the SDK got its answer after waiting out Retry-After
    assert len([r for r in mock_upstream.requests if r.path == CHAT]) == 2


async def test_redis_stopped_is_a_quick_503(settings: Settings, tmp_path: Any, tenant: Tenant) -> None:
    binary = shutil.which("redis-server")
    assert binary is not None
    port = free_port()
    redis = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    server = None
    try:
        url = f"redis://127.0.0.1:{port}/0"
        await apoll(lambda: _pings(url), timeout=10, message="private redis up")
        server = LiveServer(settings.model_copy(update={"redis_url": url})).start()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            assert (await http.post(CHAT, headers=tenant.headers, json=ask("local-chat"))).status_code == 200
            redis.terminate()
            redis.wait(10)
            started = time.monotonic()
            response = await http.post(CHAT, headers=tenant.headers, json=ask("local-chat"))
            elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "rate_limiter_unavailable"
        assert elapsed < 10
        assert "limits.redis_unreachable" in server.logs()
    finally:
        if server is not None:
            server.stop()
        if redis.poll() is None:
            redis.kill()


def _pings(url: str) -> bool:
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        return bool(Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except RedisError:
        return False
