"""A $0.10 account under 20 concurrent requests that used to overdraw it: the balance never goes below
zero, the ledger still sums, and what an upstream bills beyond a hold is the house's loss."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlmodel import col, select

from app.billing import ledger
from app.billing.models import HOUSE_ACCOUNT_ID, EntryKind, LedgerEntry
from app.core.db import SessionMaker
from app.jobs.models import JOBS
from tests.billing.test_billing_api import topup
from tests.conftest import AddChannel, Tenant, unique_model, wait_for_model
from tests.fakes.scenario import Answer
from tests.fakes.vendors import ScriptedAnswers
from tests.support import apoll

DIME = 100_000  # $0.10 in micro-dollars
EXPENSIVE = {"input_per_mtok": 1_000_000_000, "output_per_mtok": 1_000_000_000}  # $1000 / 1M tokens
OUTPUT_HEAVY = {"input_per_mtok": 1_000_000, "output_per_mtok": 1_000_000_000}  # $1 in, $1000 out / 1M
HI = [{"role": "user", "content": "hi"}]
BIG_TOOLS = [
    {
        "type": "function",
        "function": {"name": f"tool_{i}", "description": "d" * 9_000, "parameters": {"type": "object"}},
    }
    for i in range(100)
]  # ~900 KB


async def _model(
    client: AsyncTestClient[Any], add_channel: AddChannel, server: ScriptedAnswers, provider: str, price: dict[str, int]
) -> str:
    model = unique_model(f"dime-{provider}")
    await add_channel(server.base_url, [model], provider=provider, price=price)
    await wait_for_model(client, model)
    return model


async def _twenty(client: AsyncTestClient[Any], tenant: Tenant, body: dict[str, Any]) -> list[int]:
    async def one(i: int) -> int:
        extra = {"stream": True, "stream_options": {"include_usage": True}} if i % 2 else {}
        response = await client.post("/v1/chat/completions", headers=tenant.headers, json={**body, **extra})
        return response.status_code

    return list(await asyncio.gather(*(one(i) for i in range(20))))


async def _settled(sessionmaker: SessionMaker, tenant: Tenant, answered: int) -> list[Any]:
    """Every admitted request's job row is written (with its capture, in the same transaction)."""

    async def rows() -> tuple[list[Any]] | None:
        async with sessionmaker() as session:
            found = (
                await session.exec(
                    select(JOBS.c.id, JOBS.c.hold_amount, JOBS.c.cost).where(JOBS.c.account_id == tenant.account_id)
                )  # type: ignore[call-overload]
            ).all()
            return (list(found),) if len(found) >= answered else None

    result: tuple[list[Any]] = await apoll(rows, timeout=15, message=f"{answered} job rows")
    return result[0]


async def _check_books(sessionmaker: SessionMaker, tenant: Tenant, jobs: list[Any]) -> list[LedgerEntry]:
    async with sessionmaker() as session:
        balance = await ledger.balance(session, tenant.account_id)
        assert balance >= 0, f"the balance went to {balance}"
        assert await ledger.verify(session) == []  # `heytoken ledger verify`
        for job_id, hold, cost in jobs:
            assert (cost or 0) <= (hold or 0), f"{job_id} charged {cost} over its hold {hold}"
        ids = [row[0] for row in jobs]
        stmt = select(LedgerEntry).where(col(LedgerEntry.job_id).in_(ids), LedgerEntry.account_id == HOUSE_ACCOUNT_ID)
        return list((await session.exec(stmt)).all())


@pytest.mark.parametrize(
    ("case", "provider", "price", "body", "answer"),
    [
        (
            "both cap fields, the large one wins",
            "anthropic",
            EXPENSIVE,
            {"max_tokens": 1, "max_completion_tokens": 100_000},
            Answer(completion_tokens=100_000),
        ),
        (
            "reasoning adds the thinking budget",
            "anthropic",
            EXPENSIVE,
            {"max_tokens": 1, "reasoning": True},
            Answer(completion_tokens=3_000),
        ),
        # The upstream bills the tools as prompt, as a real one would (~4 bytes a token).
        (
            "900 KB of tools",
            "openai",
            EXPENSIVE,
            {"max_tokens": 1, "tools": BIG_TOOLS},
            Answer(prompt_tokens=225_000, completion_tokens=1),
        ),
        # The model's price caps its output at 50: that cap is held for, and must be the one sent.
        ("no cap at all", "gemini", {**OUTPUT_HEAVY, "max_output_tokens": 50}, {}, Answer(completion_tokens=50_000)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_requests_that_used_to_overdraw_a_dime_are_bounded(
    client: AsyncTestClient[Any],
    make_tenant: Any,
    add_channel: AddChannel,
    vendors: dict[str, ScriptedAnswers],
    sessionmaker: SessionMaker,
    case: str,
    provider: str,
    price: dict[str, int],
    body: dict[str, Any],
    answer: Answer,
) -> None:
    server = vendors[provider]
    server.answer = answer
    model = await _model(client, add_channel, server, provider, price)
    tenant = await make_tenant(unlimited=True)
    await topup(client, tenant, DIME)
    statuses = await _twenty(client, tenant, {"model": model, "messages": HI, **body})
    assert set(statuses) <= {200, 402}, statuses
    jobs = await _settled(sessionmaker, tenant, statuses.count(200))
    await _check_books(sessionmaker, tenant, jobs)


async def test_an_upstream_billing_ten_times_the_cap_costs_the_house_not_the_account(
    client: AsyncTestClient[Any],
    make_tenant: Any,
    add_channel: AddChannel,
    vendors: dict[str, ScriptedAnswers],
    sessionmaker: SessionMaker,
) -> None:
    server = vendors["openai"]
    server.answer = Answer(completion_tokens=50)  # 10x the cap of 5 it is sent
    model = await _model(client, add_channel, server, "openai", OUTPUT_HEAVY)
    tenant = await make_tenant(unlimited=True)
    await topup(client, tenant, DIME)
    statuses = await _twenty(client, tenant, {"model": model, "messages": HI, "max_tokens": 5})
    assert statuses.count(200) >= 10 and set(statuses) <= {200, 402}, statuses
    assert all(seen.body["max_tokens"] == 5 for seen in server.requests)
    jobs = await _settled(sessionmaker, tenant, statuses.count(200))
    house = await _check_books(sessionmaker, tenant, jobs)
    # Each answered request charged its hold; the rest of what the upstream billed is a house loss.
    assert {entry.job_id for entry in house} == {row[0] for row in jobs}
    assert all(entry.kind == EntryKind.LOSS and entry.amount < 0 for entry in house)
    for job_id, hold, cost in jobs:
        assert cost == hold, (job_id, hold, cost)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_without_a_cap_the_upstream_is_sent_what_the_balance_affords(
    client: AsyncTestClient[Any],
    make_tenant: Any,
    add_channel: AddChannel,
    vendors: dict[str, ScriptedAnswers],
    provider: str,
) -> None:
    server = vendors[provider]
    model = await _model(client, add_channel, server, provider, OUTPUT_HEAVY)
    tenant = await make_tenant(unlimited=True)
    await topup(client, tenant, DIME)  # $1000 / 1M output tokens: a dime affords under 100 of them
    response = await client.post("/v1/chat/completions", headers=tenant.headers, json={"model": model, "messages": HI})
    assert response.status_code == 200, response.text
    sent = server.requests[-1].body
    cap = sent["generationConfig"]["maxOutputTokens"] if provider == "gemini" else sent["max_tokens"]
    assert 16 <= cap < 100, sent

    poor = await make_tenant(unlimited=True)
    await topup(client, poor, 10_000)  # affords about 9 output tokens: too few to be useful
    server.requests.clear()
    refused = await client.post("/v1/chat/completions", headers=poor.headers, json={"model": model, "messages": HI})
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "insufficient_quota"
    assert server.requests == []
