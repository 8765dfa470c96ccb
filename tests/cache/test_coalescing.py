"""Identical cacheable requests in flight at the same moment make one upstream call: on the gateway
served on a real socket, with real client disconnects."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import httpx
import pytest
from openai import APIStatusError, AsyncOpenAI

from tests.cache.conftest import ON, PRICE
from tests.conftest import ADMIN_HEADERS, AddChannel, Tenant, unique_model
from tests.fakes.upstream import MockUpstream, Reply, chat_completion, default_stream
from tests.support import LiveServer, apoll

pytestmark = pytest.mark.e2e

CHAT = "/v1/chat/completions"
MESSAGES: Any = [{"role": "user", "content": "Tell me once."}]
STREAMED = "Hello from upstream"


async def coalesced(http: httpx.AsyncClient) -> int:
    text = (await http.get("/metrics")).text
    match = re.search(r"^heytoken_cache_coalesced_total (\S+)$", text, re.M)
    return int(float(match.group(1))) if match else 0


async def setup(http: httpx.AsyncClient, tenant: Tenant, add_channel: AddChannel, upstream: MockUpstream) -> str:
    model = unique_model("coalesce")
    await add_channel(upstream.base_url, [model], price=PRICE)

    async def listed() -> bool:
        return (await http.get(f"/v1/models/{model}", headers=tenant.headers)).status_code == 200

    await apoll(listed, message=f"{model} in the live catalog")
    topup = await http.post(
        f"/admin/accounts/{tenant.account_id}/topups", headers=ADMIN_HEADERS, json={"amount": 10_000_000}
    )
    assert topup.status_code == 201, topup.text
    return model


async def test_fifty_identical_requests_make_one_upstream_call_and_a_disconnect_changes_nothing(
    live: LiveServer, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    release = threading.Event()
    # The upstream sends its first two events, then keeps the answer in flight until the test says.
    mock_upstream.default[CHAT] = lambda body: Reply(
        sse=default_stream() if body.get("stream") else None,
        json=None if body.get("stream") else chat_completion(body),
        hold_until=release,
        hold_after=2,
    )
    headers = {"Authorization": f"Bearer {tenant.key}", **ON}
    body = {"model": "", "messages": MESSAGES}
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as http:
        model = await setup(http, tenant, add_channel, mock_upstream)
        body["model"] = model
        before = await coalesced(http)
        sdk = AsyncOpenAI(api_key=tenant.key, base_url=f"{live.url}/v1", max_retries=0, timeout=60)

        # The first request (streamed) goes upstream; its client reads the first chunk.
        async with http.stream("POST", CHAT, headers=headers, json={**body, "stream": True}) as first:
            assert first.headers["x-heytoken-cache"] == "miss"
            lines = first.aiter_lines()
            assert "Hello" in await anext(line async for line in lines if "Hello" in line)

            async def whole() -> str:
                answer = await sdk.chat.completions.create(model=model, messages=MESSAGES, extra_headers=ON)
                return answer.choices[0].message.content or ""

            async def streamed() -> str:
                stream = await sdk.chat.completions.create(
                    model=model, messages=MESSAGES, stream=True, extra_headers=ON
                )
                return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

            async def leaves_early() -> str:
                async with http.stream("POST", CHAT, headers=headers, json={**body, "stream": True}) as early:
                    async for line in early.aiter_lines():
                        if "Hello" in line:  # the live part of the answer reached this waiter too
                            return "left"
                return "never saw a chunk"

            tasks = [asyncio.ensure_future(whole()) for _ in range(25)]
            tasks += [asyncio.ensure_future(streamed()) for _ in range(23)]
            tasks.append(asyncio.ensure_future(leaves_early()))

            async def all_waiting() -> bool:
                return await coalesced(http) - before >= 49

            await apoll(all_waiting, timeout=30, message="49 requests waiting for the first one")
            assert await tasks[-1] == "left"
        # The first client went away too; the upstream is still read for the 48 still listening.
        release.set()
        answers = await asyncio.gather(*tasks[:-1])
        assert answers[:25] == ["Hello from upstream"] * 25
        assert answers[25:] == [STREAMED] * 23
        assert len(mock_upstream.calls(CHAT)) == 1

        # The stream ended well: it was stored, though the client that asked for it had left.
        async def hit() -> bool:
            again = await http.post(CHAT, headers=headers, json=body)
            content = again.json()["choices"][0]["message"]["content"]
            return again.headers.get("x-heytoken-cache") == "hit" and content == STREAMED

        await apoll(hit, message="the coalesced answer stored")
        assert len(mock_upstream.calls(CHAT)) == 1


async def test_an_upstream_failure_reaches_every_waiter_and_nothing_is_cached(
    live: LiveServer, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    release = threading.Event()
    failure = {"error": {"message": "upstream exploded", "type": "server_error", "code": None}}
    mock_upstream.default[CHAT] = lambda body: Reply(status=400, json=failure, hold_until=release)
    headers = {"Authorization": f"Bearer {tenant.key}", **ON}
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as http:
        model = await setup(http, tenant, add_channel, mock_upstream)
        body = {"model": model, "messages": MESSAGES}
        before = await coalesced(http)
        first = asyncio.ensure_future(http.post(CHAT, headers=headers, json=body))
        await apoll(lambda: mock_upstream.calls(CHAT), message="the first request upstream")
        sdk = AsyncOpenAI(api_key=tenant.key, base_url=f"{live.url}/v1", max_retries=0, timeout=60)

        async def ask(stream: bool) -> int:
            try:
                if stream:
                    answer = await sdk.chat.completions.create(
                        model=model, messages=MESSAGES, stream=True, extra_headers=ON
                    )
                    [chunk async for chunk in answer]
                else:
                    await sdk.chat.completions.create(model=model, messages=MESSAGES, extra_headers=ON)
            except APIStatusError as exc:
                return exc.status_code
            return 200

        waiters = [asyncio.ensure_future(ask(i % 2 == 0)) for i in range(9)]

        async def all_waiting() -> bool:
            return await coalesced(http) - before >= 9

        await apoll(all_waiting, timeout=30, message="9 requests waiting for the first one")
        release.set()
        statuses = [(await first).status_code, *await asyncio.gather(*waiters)]
        assert len(set(statuses)) == 1 and statuses[0] >= 400
        calls = len(mock_upstream.calls(CHAT))
        # Nothing was cached: the next identical request goes upstream again (and fails again).
        again = await http.post(CHAT, headers=headers, json=body)
        assert again.status_code == statuses[0]
        assert len(mock_upstream.calls(CHAT)) > calls
