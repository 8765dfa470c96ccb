"""The Gemini adapter against the mock Gemini server (which refuses what the real API refuses)."""

from __future__ import annotations

import base64
from array import array
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import AddChannel, Tenant, unique_model, wait_for_model
from tests.fakes.scenario import Answer, gemini_sse
from tests.fakes.upstream import Reply
from tests.fakes.vendors import ScriptedAnswers
from tests.routing_support import CHAT_PATH, QUIET, sse_events, streamed_text

UPSTREAM = "gemini-test"
GENERATE = f"/v1beta/models/{UPSTREAM}:generateContent"
STREAM = f"/v1beta/models/{UPSTREAM}:streamGenerateContent"
BLOCKED = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []}, "usageMetadata": {"promptTokenCount": 4}}


async def _model(client: AsyncTestClient[Any], add_channel: AddChannel, server: ScriptedAnswers) -> str:
    model = unique_model("gemini")
    await add_channel(server.base_url, [f"{model}={UPSTREAM}"], provider="gemini", options=QUIET)
    await wait_for_model(client, model)
    return model


async def test_request_translation(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, vendors: dict[str, ScriptedAnswers]
) -> None:
    server = vendors["gemini"]
    server.answer = Answer(reasoning=["Hmm."])
    model = await _model(client, add_channel, server)
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "additionalProperties": False}
    tool = {"type": "function", "function": {"name": "f", "description": "d", "parameters": schema}}
    body = {
        "model": model,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            },
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "again"},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 64,
        "stop": ["END"],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        "tools": [tool],
        "tool_choice": "required",
        "reasoning": True,
    }
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=body)
    assert response.status_code == 200, response.text
    seen = server.requests[-1]
    assert seen.path == GENERATE and seen.headers["x-goog-api-key"] == "sk-upstream-test"
    sent = seen.body
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]
    assert sent["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}
    config = sent["generationConfig"]
    # The cap sent is the one held for: the answer's 64 plus the thinking budget, spent inside it.
    assert (config["temperature"], config["topP"], config["maxOutputTokens"]) == (0.2, 0.9, 64 + 2048)
    assert config["stopSequences"] == ["END"] and config["responseMimeType"] == "application/json"
    assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 2048}
    declaration = sent["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "f" and "additionalProperties" not in declaration["parameters"]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    message = response.json()["choices"][0]["message"]
    assert message["content"] == "Hello from upstream" and message["reasoning_content"] == "Hmm."

    response = await client.post(CHAT_PATH, headers=tenant.headers, json={**body, "stream": True})
    assert server.requests[-1].path == STREAM and streamed_text(sse_events(response.text)) == "Hello from upstream"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_blocked_prompt_is_a_clear_400_and_a_blocked_answer_a_content_filter_finish(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    add_channel: AddChannel,
    vendors: dict[str, ScriptedAnswers],
    stream: bool,
) -> None:
    server = vendors["gemini"]
    model = await _model(client, add_channel, server)
    server.script(STREAM if stream else GENERATE, Reply(sse=[BLOCKED]) if stream else Reply(json=BLOCKED))
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "x"}]}
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "content_filter" and "SAFETY" in error["message"]

    filtered = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Par"}]}, "finishReason": "SAFETY"}]}
    server.script(STREAM if stream else GENERATE, Reply(sse=[filtered]) if stream else Reply(json=filtered))
    response = await client.post(CHAT_PATH, headers=tenant.headers, json=body)
    if stream:
        events = sse_events(response.text)
        assert [e["choices"][0]["finish_reason"] for e in events[:-1] if e["choices"]][-1] == "content_filter"
    else:
        assert response.json()["choices"][0]["finish_reason"] == "content_filter"


async def test_errors_and_streams_cut_short(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, vendors: dict[str, ScriptedAnswers]
) -> None:
    server = vendors["gemini"]
    model = await _model(client, add_channel, server)
    invalid = {"error": {"code": 400, "message": "Invalid value at 'contents'", "status": "INVALID_ARGUMENT"}}
    server.script(GENERATE, Reply(status=400, json=invalid))
    response = await client.post(
        CHAT_PATH, headers=tenant.headers, json={"model": model, "messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 400 and response.json()["error"]["message"] == "Invalid value at 'contents'"

    server.script(STREAM, Reply(sse=gemini_sse(Answer(), UPSTREAM)[:2]))  # no finishReason: cut short
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    events = sse_events((await client.post(CHAT_PATH, headers=tenant.headers, json=body)).text)
    assert streamed_text(events) == "Hello from" and events[-2]["error"]["code"] == "upstream_error"


async def test_embeddings(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, vendors: dict[str, ScriptedAnswers]
) -> None:
    server = vendors["gemini"]
    model = await _model(client, add_channel, server)
    body = {"model": model, "input": ["a", "bb"], "dimensions": 3, "encoding_format": "float"}
    floats = (await client.post("/v1/embeddings", headers=tenant.headers, json=body)).json()
    sent = server.requests[-1]
    assert sent.path == f"/v1beta/models/{UPSTREAM}:batchEmbedContents"
    assert sent.body["requests"][1] == {
        "model": f"models/{UPSTREAM}",
        "content": {"parts": [{"text": "bb"}]},
        "outputDimensionality": 3,
    }
    assert [d["embedding"] for d in floats["data"]] == [[0.5, -0.25, 0.125]] * 2 and floats["usage"][
        "prompt_tokens"
    ] > 0
    packed = (
        await client.post("/v1/embeddings", headers=tenant.headers, json={**body, "encoding_format": "base64"})
    ).json()
    assert list(array("f", base64.b64decode(packed["data"][0]["embedding"]))) == [0.5, -0.25, 0.125]
