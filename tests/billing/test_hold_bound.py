"""The hold bounds the charge by construction: whatever reaches the upstream was held for.

The property: for any request (any provider, either cap field or none, reasoning or not, tools,
response_format and images), the body the upstream received has an output cap, and the hold is at
least the cost of that body's prompt bound plus that cap. The prompt bound of a received body is
computed here, independently of the gateway: one token per byte of every string and number it
carries, a fixed bound per image, four tokens of framing per message.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.billing import service as billing
from app.core.db import SessionMaker, unit_of_work
from app.core.money import ModelPrice, token_cost
from app.core.tokens import IMAGE_PART_TOKENS
from app.jobs.models import JOBS
from app.providers.base import ChatCall, ChatResult
from tests.billing.test_billing_api import topup
from tests.conftest import AddChannel, Tenant, unique_model, wait_for_model
from tests.fakes.vendors import ScriptedAnswers
from tests.support import apoll

PRICE = {"input_per_mtok": 3_000_000, "output_per_mtok": 15_000_000}
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city " * 20,
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "x" * 300}}},
    },
}
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": {"type": "object", "description": "y" * 500}},
}


class Recording:
    """Wraps the local provider: its 'upstream body' is the call it receives."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[ChatCall] = []

    async def chat(self, route: Any, call: ChatCall) -> ChatResult:
        self.calls.append(call)
        result: ChatResult = await self.inner.chat(route, call)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class Setup:
    models: dict[str, str]
    tenant: Tenant
    local: Recording


@pytest.fixture(scope="module")
async def setup(
    client: AsyncTestClient[Any],
    add_channel: AddChannel,
    vendor_servers: dict[str, ScriptedAnswers],
    make_tenant: Any,
    sessionmaker: SessionMaker,
) -> AsyncIterator[Setup]:
    models = {}
    for provider in ("openai", "anthropic", "gemini"):
        model = unique_model(f"bound-{provider}")
        await add_channel(vendor_servers[provider].base_url, [model], provider=provider, price=PRICE)
        await wait_for_model(client, model)
        models[provider] = model
    # The local provider has no channel rows: its one model no other test uses gets a price for a while.
    models["local"] = "local-reasoner"
    async with unit_of_work(sessionmaker) as session:
        await billing.set_price(session, "local-reasoner", **PRICE)
    catalog = client.app.state.resources.catalog
    await apoll(lambda: not catalog.current.price_for("local-reasoner").is_free, message="local-reasoner priced")
    tenant = await make_tenant(unlimited=True)
    await topup(client, tenant, 10_000_000_000)
    providers = client.app.state.resources.providers
    original = providers["local"]
    recording = providers["local"] = Recording(original)
    try:
        yield Setup(models, tenant, recording)
    finally:
        providers["local"] = original
        async with unit_of_work(sessionmaker) as session:
            await billing.delete_price(session, "local-reasoner")


def received_body(provider: str, vendors: dict[str, ScriptedAnswers], local: Recording) -> dict[str, Any]:
    if provider == "local":
        return {**local.calls[-1].body, "max_tokens": local.calls[-1].max_output}
    body: dict[str, Any] = vendors[provider].requests[-1].body
    return body


def output_cap(provider: str, body: dict[str, Any]) -> float:
    """Output tokens the received body allows (infinite when it sets no cap)."""
    if provider == "anthropic":
        return float(body.get("max_tokens", float("inf")))
    if provider == "gemini":
        config = body.get("generationConfig") or {}
        return float(config.get("maxOutputTokens", float("inf"))) * int(config.get("candidateCount", 1))
    caps = [body[f] for f in ("max_tokens", "max_completion_tokens") if f in body]
    return float(max(caps)) * int(body.get("n", 1)) if caps else float("inf")


def _is_image(value: dict[str, Any]) -> bool:
    return value.get("type") in ("image_url", "image") or "inlineData" in value or "fileData" in value


def prompt_bound(value: Any, depth: int = 0) -> int:
    """One token per byte of text or digits the body carries, a fixed bound per image."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | float):
        return len(str(value))
    if isinstance(value, list):
        return sum(prompt_bound(v, depth + 1) for v in value)
    if isinstance(value, dict):
        if _is_image(value):
            return IMAGE_PART_TOKENS
        framing = 4 if "role" in value else 0
        return framing + sum(prompt_bound(v, depth + 1) for v in value.values())
    return 0


async def hold_of(sessionmaker: SessionMaker, job_id: str) -> int:
    async def read() -> tuple[int] | None:
        async with sessionmaker() as session:
            row = (await session.exec(select(JOBS.c.hold_amount).where(JOBS.c.id == job_id))).first()
            return None if row is None else (int(row[0] or 0),)

    found = await apoll(read, timeout=10, message=f"job {job_id} written")
    return int(found[0])


messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system"]), "content": st.text(min_size=1, max_size=200)}
    ),
    min_size=1,
    max_size=6,
).map(lambda ms: [{"role": "user", "content": "hello"}, *ms, {"role": "user", "content": "and now?"}])


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    provider=st.sampled_from(["openai", "anthropic", "gemini", "local"]),
    caps=st.sampled_from([(), ("max_tokens",), ("max_completion_tokens",), ("max_tokens", "max_completion_tokens")]),
    cap_values=st.tuples(st.integers(1, 5000), st.integers(1, 200_000)),
    reasoning=st.sampled_from([None, False, True]),
    extras=st.sets(st.sampled_from(["tools", "response_format", "image"])),
    history=messages,
)
async def test_the_hold_covers_what_the_upstream_received(
    client: AsyncTestClient[Any],
    setup: Setup,
    vendor_servers: dict[str, ScriptedAnswers],
    sessionmaker: SessionMaker,
    provider: str,
    caps: tuple[str, ...],
    cap_values: tuple[int, int],
    reasoning: bool | None,
    extras: set[str],
    history: list[dict[str, Any]],
) -> None:
    body: dict[str, Any] = {"model": setup.models[provider], "messages": history}
    for field, value in zip(caps, cap_values, strict=False):
        body[field] = value
    if reasoning is not None:
        body["reasoning"] = reasoning
    if "tools" in extras:
        body["tools"] = [TOOL]
    if "response_format" in extras:
        body["response_format"] = RESPONSE_FORMAT
    if "image" in extras:
        body["messages"] = [
            *history,
            {
                "role": "user",
                "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": PNG}}],
            },
        ]
    response = await client.post("/v1/chat/completions", headers=setup.tenant.headers, json=body)
    assert response.status_code == 200, response.text
    sent = received_body(provider, vendor_servers, setup.local)
    cap = output_cap(provider, sent)
    assert cap != float("inf"), f"no output cap reached the upstream: {json.dumps(sent)[:300]}"
    hold = await hold_of(sessionmaker, response.headers["x-request-id"])
    worst = token_cost(ModelPrice(**PRICE), prompt_bound(sent), int(cap))
    assert hold >= worst, (hold, worst, provider, caps, reasoning, extras)
