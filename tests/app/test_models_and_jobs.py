"""GET /v1/models, /v1/models/{id} and /v1/jobs/{id}."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import AddChannel, Tenant, unique_model, wait_for_model
from tests.support import apoll


async def test_models_lists_local_and_channel_models(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel
) -> None:
    model = unique_model("gpt")
    await add_channel("http://127.0.0.1:9/v1", [model, f"{model}-alias=upstream-name"])
    await wait_for_model(client, model)
    listing = (await client.get("/v1/models", headers=tenant.headers)).json()
    assert listing["object"] == "list"
    ids = {m["id"] for m in listing["data"]}
    assert {"local-chat", "local-embedding", model, f"{model}-alias"} <= ids
    assert all(set(m) == {"id", "object", "created", "owned_by"} and m["object"] == "model" for m in listing["data"])
    one = await client.get(f"/v1/models/{model}", headers=tenant.headers)
    assert one.json() == next(m for m in listing["data"] if m["id"] == model)
    missing = await client.get("/v1/models/nope", headers=tenant.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}]}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "Hello!"}),
        ("/v1/images/generations", {"model": "dall-e-3", "prompt": "a cat"}),
        ("/v1/models/gpt-4o", None),
    ],
)
async def test_a_model_nobody_serves_gets_a_404_naming_the_served_models_and_the_next_step(
    client: AsyncTestClient[Any], tenant: Tenant, path: str, body: dict[str, Any] | None
) -> None:
    # The names the seed's own examples use, out of the box
    if body is None:
        answer = await client.get(path, headers=tenant.headers)
    else:
        answer = await client.post(path, headers=tenant.headers, json=body)
    assert answer.status_code == 404, answer.text
    error = answer.json()["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model"
    model = body["model"] if body else "gpt-4o"
    assert error["message"].startswith(f"The model '{model}' does not exist")
    served = error["message"].split("Models served here: ", 1)[1]
    # (a fresh install serves five; the suite's own channels make it 20 and a count)
    assert "local-chat, " in served or "more (GET /v1/models lists them all)" in served
    assert ".venv/bin/heytoken channel add --name NAME --provider openai" in error["message"]
    assert f"--model {model}" in error["message"] and f"heytoken price set {model}" in error["message"]


async def test_job_of_a_chat_request_shows_usage_and_latency(
    client: AsyncTestClient[Any], tenant: Tenant, make_tenant: Any
) -> None:
    reply = await client.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": "local-chat", "messages": [{"role": "user", "content": "log me"}]},
    )
    completion = reply.json()

    async def job() -> dict[str, Any] | None:
        response = await client.get(f"/v1/jobs/{completion['id']}", headers=tenant.headers)
        return response.json() if response.status_code == 200 else None

    found = await apoll(job, timeout=5, message="job row written")
    assert found["id"] == completion["id"]
    assert found["kind"] == "chat" and found["status"] == "completed" and found["model"] == "local-chat"
    assert found["usage"]["prompt_tokens"] == completion["usage"]["prompt_tokens"]
    assert found["usage"]["completion_tokens"] == completion["usage"]["completion_tokens"]
    assert isinstance(found["latency_ms"], int) and found["latency_ms"] >= 0
    assert found["channel_id"] == "ch_local"
    assert found["attempts"][0]["channel"] == "local"

    stranger = await make_tenant()
    hidden = await client.get(f"/v1/jobs/{completion['id']}", headers=stranger.headers)
    assert hidden.status_code == 404


async def test_job_of_a_stream_and_an_embedding(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    streamed = await client.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": "local-chat", "stream": True, "messages": [{"role": "user", "content": "stream me"}]},
    )
    job_id = streamed.headers["x-request-id"]
    embedded = await client.post(
        "/v1/embeddings", headers=tenant.headers, json={"model": "local-embedding", "input": ["a", "b"]}
    )
    emb_id = embedded.headers["x-request-id"]

    async def jobs() -> list[dict[str, Any]] | None:
        got = [await client.get(f"/v1/jobs/{i}", headers=tenant.headers) for i in (job_id, emb_id)]
        return [g.json() for g in got] if all(g.status_code == 200 for g in got) else None

    chat_job, emb_job = await apoll(jobs, timeout=5, message="job rows")
    assert chat_job["stream"] is True and chat_job["usage"]["completion_tokens"] > 0
    assert isinstance(chat_job["ttft_ms"], int)
    assert emb_job["kind"] == "embedding" and emb_job["usage"]["prompt_tokens"] == 2
