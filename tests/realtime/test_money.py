"""A priced realtime model: each response captured at once from a rolling hold, the job row, the
ledger, a zero balance refused at the handshake, a balance that runs out mid-conversation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI
from sqlmodel import select

from app.billing import ledger
from app.billing import service as billing
from app.core.db import SessionMaker, unit_of_work
from app.core.settings import Settings
from app.jobs.models import Job
from tests.conftest import ADMIN_HEADERS, Tenant
from tests.realtime.conftest import OPEN, pcm16, turn, until
from tests.support import LiveServer, apoll

pytestmark = pytest.mark.e2e

MODEL = "local-realtime-metered"
UNIT = 1_000_000_000
"""Per 1M tokens: 1,000 micro-dollars a token."""


@pytest.fixture(scope="module")
def metered(settings: Settings) -> Iterator[LiveServer]:
    """A gateway whose extra local model local-realtime-metered is priced, with a small output cap (20
    tokens) so holds are small enough for a test's balance."""
    server = LiveServer(
        settings.model_copy(update={"extra_local_models": [MODEL], "realtime_max_output_tokens": 20})
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def priced(sessionmaker: SessionMaker) -> None:
    async with unit_of_work(sessionmaker) as session:
        await billing.set_price(
            session, MODEL, input_per_mtok=UNIT, output_per_mtok=UNIT, audio_output_per_mtok=2 * UNIT
        )


async def top_up(server: LiveServer, tenant: Tenant, amount: int) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=ADMIN_HEADERS) as admin:
        r = await admin.post(f"/admin/accounts/{tenant.account_id}/topups", json={"amount": amount})
        assert r.status_code in (200, 201), r.text


async def session_job(sessionmaker: SessionMaker, tenant: Tenant) -> Job:
    async with sessionmaker() as session:
        jobs = (await session.exec(select(Job).where(Job.account_id == tenant.account_id))).all()
    assert len(jobs) == 1
    return jobs[0]


async def balance(sessionmaker: SessionMaker, tenant: Tenant) -> int:
    async with sessionmaker() as session:
        return await ledger.balance(session, tenant.account_id)


@pytest.mark.usefixtures("priced")
async def test_each_response_is_captured_and_the_job_shows_the_session(
    metered: LiveServer, tenant: Tenant, sessionmaker: SessionMaker
) -> None:
    await top_up(metered, tenant, 1_000_000)
    sdk = AsyncOpenAI(api_key=tenant.key, base_url=f"{metered.url}/v1", max_retries=0)
    async with sdk.realtime.connect(model=MODEL, websocket_connection_options=OPEN) as connection:
        await until(connection, "session.created", [])
        first, _ = await turn(connection, text="hello")
        # 3 words in; 3 words out as text and 6 audio tokens (0.6 s): 3 + 3 + 6 × 2 thousand.
        assert first.response.usage.input_tokens == 3
        job = await session_job(sessionmaker, tenant)
        assert job.kind == "realtime" and job.status == "in_progress" and job.cost == 18_000
        assert await balance(sessionmaker, tenant) == 1_000_000 - 18_000
        second, _ = await turn(connection, audio=pcm16(0.3))
        assert second.response.usage.input_token_details.audio_tokens == 3

    job = await session_job(sessionmaker, tenant)
    async with httpx.AsyncClient(base_url=metered.url, headers=tenant.headers) as http:

        async def finished() -> Any:
            body = (await http.get(f"/v1/jobs/{job.id}")).json()
            return body if body["status"] == "completed" else None

        public = await apoll(finished, message="the session's job row finished")
    usage = public["usage"]
    assert public["kind"] == "realtime" and public["model"] == MODEL
    assert usage["responses"] == 2 and usage["close_code"] == 1000 and usage["closed_by"] == "client"
    assert usage["duration_ms"] >= 0
    captures = [e for e in public["billing"]["ledger"] if e["kind"] == "capture"]
    assert len(captures) == 2 and captures[0]["amount"] == -18_000
    assert public["billing"]["captured"] == -sum(e["amount"] for e in captures)
    assert await balance(sessionmaker, tenant) == 1_000_000 - public["billing"]["captured"]


@pytest.mark.usefixtures("priced")
async def test_zero_balance_is_refused_at_the_handshake(metered: LiveServer, tenant: Tenant) -> None:
    from websockets.exceptions import InvalidStatus

    from tests.realtime.test_handshake import refusal

    sdk = AsyncOpenAI(api_key=tenant.key, base_url=f"{metered.url}/v1", max_retries=0)
    with pytest.raises(InvalidStatus) as caught:
        async with sdk.realtime.connect(model=MODEL, websocket_connection_options=OPEN):
            pass
    status, error = refusal(caught.value)
    assert status == 402 and error["code"] == "insufficient_quota" and error["type"] == "insufficient_quota"


@pytest.mark.usefixtures("priced")
async def test_balance_running_out_mid_conversation(
    metered: LiveServer, tenant: Tenant, sessionmaker: SessionMaker
) -> None:
    await top_up(metered, tenant, 200_000)
    sdk = AsyncOpenAI(api_key=tenant.key, base_url=f"{metered.url}/v1", max_retries=0)
    responses, errors = 0, []
    async with sdk.realtime.connect(model=MODEL, websocket_connection_options=OPEN) as connection:
        await until(connection, "session.created", [])
        for _ in range(20):
            await connection.conversation.item.create(
                item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
            )
            await connection.response.create()
            ended = False
            async for event in connection:  # ends without an exception: a clean close
                if event.type == "response.done":
                    responses += 1
                    break
                if event.type == "error":
                    errors.append(event.error)
            else:
                ended = True
            if ended:
                break
        else:
            raise AssertionError("the balance never ran out")
    assert responses >= 1
    assert [e.code for e in errors] == ["insufficient_quota"]
    left = await balance(sessionmaker, tenant)
    assert 0 <= left < 200_000
    async with sessionmaker() as session:
        assert await ledger.verify(session) == []
    job = await session_job(sessionmaker, tenant)

    async def closed() -> Any:
        async with sessionmaker() as session:
            row = await session.get(Job, job.id)
            await session.refresh(row)
            return row if row is not None and row.completed_at is not None else None

    row = await apoll(closed, message="the session's job row finished")
    assert row.usage["close_reason"] == "insufficient_quota" and row.usage["responses"] == responses
    assert row.cost == 200_000 - left
