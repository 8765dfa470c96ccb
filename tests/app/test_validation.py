"""Every bad input gets a 4xx in the OpenAI envelope that names the field; never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import Tenant

MSG = [{"role": "user", "content": "hi"}]

CHAT_CASES = [
    # (body, status, type, param)
    ({"messages": MSG}, 400, "invalid_request_error", "model"),
    ({"model": "local-chat"}, 400, "invalid_request_error", "messages"),
    ({"model": 5, "messages": MSG}, 400, "invalid_request_error", "model"),
    ({"model": "", "messages": MSG}, 400, "invalid_request_error", "model"),
    ({"model": "local-chat", "messages": "hi"}, 400, "invalid_request_error", "messages"),
    ({"model": "local-chat", "messages": []}, 400, "invalid_request_error", "messages"),
    ({"model": "local-chat", "messages": ["hi"]}, 400, "invalid_request_error", "messages[0]"),
    ({"model": "local-chat", "messages": [{"content": "x"}]}, 400, "invalid_request_error", "messages[0].role"),
    (
        {"model": "local-chat", "messages": [{"role": "wizard", "content": "x"}]},
        400,
        "invalid_request_error",
        "messages[0].role",
    ),
    (
        {"model": "local-chat", "messages": [{"role": "user", "content": 7}]},
        400,
        "invalid_request_error",
        "messages[0].content",
    ),
    ({"model": "local-chat", "messages": MSG, "temperature": 2.5}, 400, "invalid_request_error", "temperature"),
    ({"model": "local-chat", "messages": MSG, "temperature": -0.1}, 400, "invalid_request_error", "temperature"),
    ({"model": "local-chat", "messages": MSG, "temperature": "hot"}, 400, "invalid_request_error", "temperature"),
    ({"model": "local-chat", "messages": MSG, "max_tokens": 0}, 400, "invalid_request_error", "max_tokens"),
    ({"model": "local-chat", "messages": MSG, "max_tokens": -5}, 400, "invalid_request_error", "max_tokens"),
    ({"model": "local-chat", "messages": MSG, "max_tokens": "10"}, 400, "invalid_request_error", "max_tokens"),
    ({"model": "local-chat", "messages": MSG, "max_tokens": 1.5}, 400, "invalid_request_error", "max_tokens"),
    ({"model": "local-chat", "messages": MSG, "stream": "yes"}, 400, "invalid_request_error", "stream"),
    ({"model": "local-chat", "messages": MSG, "top_p": 3}, 400, "invalid_request_error", "top_p"),
    ({"model": "local-chat", "messages": MSG, "n": 0}, 400, "invalid_request_error", "n"),
    ({"model": "local-chat", "messages": MSG, "reasoning": "on"}, 400, "invalid_request_error", "reasoning"),
    (
        {"model": "local-chat", "messages": MSG, "stream_options": {"include_usage": True}},
        400,
        "invalid_request_error",
        "stream_options",
    ),
    (
        {"model": "local-chat", "messages": MSG, "stream": True, "stream_options": {"include_usage": 1}},
        400,
        "invalid_request_error",
        "stream_options.include_usage",
    ),
    ({"model": "no-such-model", "messages": MSG}, 404, "invalid_request_error", "model"),
    ({"model": "local-embedding", "messages": MSG}, 400, "invalid_request_error", "model"),
]


def assert_envelope(response: Any, status: int, err_type: str, param: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == err_type
    assert error["param"] == param
    assert error["message"]
    return error


@pytest.mark.parametrize(("body", "status", "err_type", "param"), CHAT_CASES)
async def test_chat_bad_input(
    client: AsyncTestClient[Any], tenant: Tenant, body: dict[str, Any], status: int, err_type: str, param: str
) -> None:
    response = await client.post("/v1/chat/completions", headers=tenant.headers, json=body)
    assert_envelope(response, status, err_type, param)


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"text"', b"\xff\xfe"])
async def test_chat_body_not_a_json_object(client: AsyncTestClient[Any], tenant: Tenant, raw: bytes) -> None:
    response = await client.post(
        "/v1/chat/completions", content=raw, headers={**tenant.headers, "content-type": "application/json"}
    )
    error = assert_envelope(response, 400, "invalid_request_error", None)
    assert error["code"] == "invalid_json"


async def test_body_over_the_size_limit_is_413(client: AsyncTestClient[Any], tenant: Tenant, settings: Any) -> None:
    big = "x" * (settings.max_body_bytes + 10)
    response = await client.post(
        "/v1/chat/completions",
        headers=tenant.headers,
        json={"model": "local-chat", "messages": [{"role": "user", "content": big}]},
    )
    assert_envelope(response, 413, "invalid_request_error", None)


EMBED_CASES = [
    ({"input": "x"}, 400, "model"),
    ({"model": "local-embedding"}, 400, "input"),
    ({"model": "local-embedding", "input": ""}, 400, "input"),
    ({"model": "local-embedding", "input": []}, 400, "input"),
    ({"model": "local-embedding", "input": 12}, 400, "input"),
    ({"model": "local-embedding", "input": ["ok", ""]}, 400, "input[1]"),
    ({"model": "local-embedding", "input": ["ok", {"a": 1}]}, 400, "input[1]"),
    ({"model": "local-embedding", "input": "x", "encoding_format": "hex"}, 400, "encoding_format"),
    ({"model": "local-embedding", "input": "x", "dimensions": 0}, 400, "dimensions"),
    ({"model": "local-embedding", "input": "x", "dimensions": "8"}, 400, "dimensions"),
    ({"model": "missing-embedder", "input": "x"}, 404, "model"),
]


@pytest.mark.parametrize(("body", "status", "param"), EMBED_CASES)
async def test_embeddings_bad_input(
    client: AsyncTestClient[Any], tenant: Tenant, body: dict[str, Any], status: int, param: str
) -> None:
    response = await client.post("/v1/embeddings", headers=tenant.headers, json=body)
    assert_envelope(response, status, "invalid_request_error", param)


async def test_unknown_path_and_method_are_enveloped(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    missing = await client.get("/v1/nothing-here", headers=tenant.headers)
    assert_envelope(missing, 404, "invalid_request_error", None)
    wrong = await client.get("/v1/chat/completions", headers=tenant.headers)
    assert_envelope(wrong, 405, "invalid_request_error", None)
