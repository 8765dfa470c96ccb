# ruff: noqa: E501  (a table of cases reads best one per line)
"""What the core must never see stops at the edge of the hot routes: each crafted input is a 400 in the
OpenAI envelope with a non-null code, and nothing is logged at ERROR (no traceback, no outage alarm)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import Tenant

HI = [{"role": "user", "content": "hi"}]


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "local-chat", "messages": HI, **fields}


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


CASES: list[tuple[str, str, Any, str, str | None]] = [
    # (id, path, body as JSON or raw bytes, code, param)
    ("role is an object", "/v1/chat/completions", chat(messages=[{"role": {"a": 1}, "content": "x"}]), "invalid_type", "messages[0].role"),
    ("role is an array", "/v1/chat/completions", chat(messages=[{"role": ["user"], "content": "x"}]), "invalid_type", "messages[0].role"),
    ("invalid UTF-8", "/v1/chat/completions", b'{"model": "local-chat", "messages": [{"role": "user", "content": "\xff\xfe"}]}', "invalid_json", None),
    ("lone surrogate", "/v1/chat/completions", b'{"model": "local-chat", "messages": [{"role": "user", "content": "\\ud800"}]}', "invalid_json", None),
    ("JSON nested 100k deep", "/v1/chat/completions", b'{"model": "local-chat", "messages": [], "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nesting_too_deep", None),
    ("metadata nested 40 deep", "/v1/chat/completions", chat(tools=[nested(40)]), "nesting_too_deep", None),
    ("NUL in a prompt", "/v1/chat/completions", chat(messages=[{"role": "user", "content": "a\u0000b"}]), "invalid_value", "messages[0].content"),
    ("NUL in a content part", "/v1/chat/completions", chat(messages=[{"role": "user", "content": [{"type": "text", "text": "\u0000"}]}]), "invalid_value", "messages[0].content[0].text"),
    ("NUL in metadata", "/v1/chat/completions", chat(metadata={"k": "v\u0000"}), "invalid_value", "metadata.k"),
    ("NUL in an unknown field", "/v1/chat/completions", chat(some_future_field="\u0000"), "invalid_value", "some_future_field"),
    ("NUL in the model", "/v1/chat/completions", chat(model="local-chat\u0000"), "invalid_value", "model"),
    ("max_tokens past int64", "/v1/chat/completions", chat(max_tokens=9223372036854775807), "invalid_value", "max_tokens"),
    ("max_completion_tokens past 2^64", "/v1/chat/completions", chat(max_completion_tokens=2**70), "invalid_value", "max_completion_tokens"),
    ("an integer past int64 anywhere", "/v1/chat/completions", chat(logit_bias={"1": 2**64}), "invalid_value", "logit_bias.1"),
    ("seed past int64", "/v1/chat/completions", chat(seed=2**63), "invalid_value", "seed"),
    ("n out of range", "/v1/chat/completions", chat(n=10**12), "invalid_value", "n"),
    ("messages missing", "/v1/chat/completions", {"model": "local-chat"}, "missing_required_parameter", "messages"),
    ("embeddings: NUL in input", "/v1/embeddings", {"model": "local-embedding", "input": "a\u0000"}, "invalid_value", "input"),
    ("embeddings: token past int32", "/v1/embeddings", {"model": "local-embedding", "input": [2**40]}, "invalid_value", "input[0]"),
    ("embeddings: invalid UTF-8", "/v1/embeddings", b'{"model": "local-embedding", "input": "\xc3\x28"}', "invalid_json", None),
    ("embeddings: dimensions past int64", "/v1/embeddings", {"model": "local-embedding", "input": "a", "dimensions": 2**64}, "invalid_value", "dimensions"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "code", "param"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_crafted_inputs_are_refused_at_the_edge(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    caplog: pytest.LogCaptureFixture,
    path: str,
    body: Any,
    code: str,
    param: str | None,
) -> None:
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    with caplog.at_level(logging.WARNING):
        response = await client.post(path, headers={**tenant.headers, "content-type": "application/json"}, **kwargs)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == ("invalid_request_error", code), error
    if param is not None:
        assert error["param"] == param, error
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


async def test_unknown_fields_still_reach_the_upstream(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    """The typed edge checks fields it knows and passes the others on untouched."""
    body = chat(a_field_openai_adds_next_year={"nested": [1, 2.5, "x"]}, logprobs=True)
    response = await client.post("/v1/chat/completions", headers=tenant.headers, json=body)
    assert response.status_code == 200, response.text
