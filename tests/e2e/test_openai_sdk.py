"""The official `openai` SDK against the gateway served on a real socket (granian, as in the Procfile)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI, NotFoundError

from tests.conftest import AddChannel, Tenant, unique_model
from tests.fakes.upstream import MockUpstream, Reply
from tests.support import LiveServer, apoll

pytestmark = pytest.mark.e2e


@pytest.fixture
async def sdk(live: LiveServer, tenant: Tenant) -> AsyncIterator[AsyncOpenAI]:
    # Closed here, on the test's loop: an unclosed client's __del__ schedules its close on whatever loop
    # runs in the thread the collector happens to run in (a mock server's), not on the one owning it.
    async with AsyncOpenAI(api_key=tenant.key, base_url=f"{live.url}/v1", max_retries=0, timeout=30) as client:
        yield client


async def wait_for_model(sdk: AsyncOpenAI, model: str) -> None:
    async def listed() -> bool:
        return model in {m.id async for m in sdk.models.list()}

    await apoll(listed, timeout=10, message=f"{model} in the live catalog")


async def test_models_list(sdk: AsyncOpenAI) -> None:
    ids = [m.id async for m in sdk.models.list()]
    assert {"local-chat", "local-embedding"} <= set(ids)
    model = await sdk.models.retrieve("local-chat")
    assert model.id == "local-chat" and model.object == "model"
    with pytest.raises(NotFoundError):
        await sdk.models.retrieve("does-not-exist")


async def test_chat_with_and_without_stream(
    sdk: AsyncOpenAI, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = unique_model("gpt")
    await add_channel(mock_upstream.base_url, [model])
    await wait_for_model(sdk, model)
    whole = await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello!"}])
    assert whole.choices[0].message.content == "Hello from the mock upstream."
    assert whole.usage is not None and whole.usage.total_tokens == 18

    stream = await sdk.chat.completions.create(
        model=model, stream=True, messages=[{"role": "user", "content": "Hello!"}]
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from upstream"
    assert all(c.usage is None for c in chunks)

    stream = await sdk.chat.completions.create(
        model=model,
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Hello!"}],
    )
    chunks = [c async for c in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


async def test_chat_local_provider_stream_equals_whole(sdk: AsyncOpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Tell me something"}]
    whole = await sdk.chat.completions.create(model="local-chat", messages=messages)
    stream = await sdk.chat.completions.create(model="local-chat", messages=messages, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == whole.choices[0].message.content


async def test_embeddings_float_and_base64_round_trip(sdk: AsyncOpenAI) -> None:
    as_float = await sdk.embeddings.create(
        model="local-embedding", input=["same text", "other"], encoding_format="float"
    )
    as_b64 = await sdk.embeddings.create(model="local-embedding", input=["same text", "other"])  # SDK: base64
    assert [d.embedding for d in as_float.data] == [d.embedding for d in as_b64.data]
    vector = as_float.data[0].embedding
    assert len(vector) == 1536
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-5
    again = await sdk.embeddings.create(model="local-embedding", input="same text", dimensions=64)
    assert len(again.data[0].embedding) == 64
    assert as_float.data[0].embedding != as_float.data[1].embedding


async def test_docs_alias_embeddings_path(live: LiveServer, tenant: Tenant) -> None:
    async with httpx.AsyncClient(base_url=live.url) as http:
        response = await http.post(
            "/embeddings", headers=tenant.headers, json={"model": "local-embedding", "input": "The food was delicious."}
        )
    assert response.status_code == 200
    assert response.json()["data"][0]["object"] == "embedding"


async def test_client_disconnect_closes_upstream_within_one_second(
    live: LiveServer, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream, sdk: AsyncOpenAI
) -> None:
    model = unique_model("gpt")
    await add_channel(mock_upstream.base_url, [model])
    await wait_for_model(sdk, model)
    mock_upstream.script("/v1/chat/completions", Reply(forever=True, chunk_delay=0.02))
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=10) as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            headers=tenant.headers,
            json={"model": model, "stream": True, "messages": [{"role": "user", "content": "go"}]},
        ) as response,
    ):
        assert response.status_code == 200
        received = 0
        async for _ in response.aiter_raw():
            received += 1
            if received >= 3:
                break
        closed_at = time.monotonic()
    # leaving the block closes the client connection mid-stream
    await apoll(lambda: mock_upstream.disconnects, timeout=3, message="upstream saw the disconnect")
    assert mock_upstream.disconnects[0] - closed_at < 1.0
