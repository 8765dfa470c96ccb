"""A realtime channel of provider `openai`: frames relayed both ways to a mock OpenAI Realtime upstream."""

from __future__ import annotations

import pytest
from openai import AsyncOpenAI
from websockets.exceptions import InvalidStatus

from tests.conftest import AddChannel, unique_model
from tests.fakes.realtime_upstreams import OpenAIRealtimeMock, Seen
from tests.realtime.conftest import OPEN, conversation, finished_job, top_up, turn, until, wait_for_model
from tests.realtime.test_handshake import refusal
from tests.support import apoll

pytestmark = pytest.mark.e2e


async def test_same_client_same_events(
    sdk: AsyncOpenAI, add_channel: AddChannel, openai_realtime: OpenAIRealtimeMock
) -> None:
    model = unique_model("gpt-realtime")
    await add_channel(openai_realtime.base_url, [model], api_key="sk-upstream-secret")
    await wait_for_model(sdk, model)
    await conversation(sdk, model)
    # The gateway's key went upstream, never the client's; the gateway's cap came first.
    assert set(openai_realtime.seen.authorizations) == {"Bearer sk-upstream-secret"}
    assert openai_realtime.seen.paths[0] == f"/v1/realtime?model={model}"
    first = openai_realtime.seen.frames[0]
    assert first["type"] == "session.update" and first["session"]["max_output_tokens"] == 4096


async def test_a_larger_cap_is_lowered_to_the_one_held_for(
    sdk: AsyncOpenAI, add_channel: AddChannel, openai_realtime: OpenAIRealtimeMock
) -> None:
    model = unique_model("gpt-realtime")
    await add_channel(openai_realtime.base_url, [model])
    await wait_for_model(sdk, model)
    async with sdk.realtime.connect(model=model, websocket_connection_options=OPEN) as connection:
        await until(connection, "session.created", [])
        await connection.session.update(session={"type": "realtime", "max_output_tokens": "inf"})
        await until(connection, "session.updated", [])
    updates = [f for f in openai_realtime.seen.frames if f["type"] == "session.update"]
    assert [u["session"]["max_output_tokens"] for u in updates] == [4096, 4096]


async def test_failover_on_connect(
    sdk: AsyncOpenAI, add_channel: AddChannel, openai_realtime: OpenAIRealtimeMock, upstream_b_realtime
) -> None:
    model = unique_model("gpt-realtime")
    await add_channel(openai_realtime.base_url, [model], priority=10)
    await add_channel(upstream_b_realtime.base_url, [model], priority=0)
    openai_realtime.refuse_status = 503

    async def served() -> bool:
        # Until the catalog (refreshed in the background) has both channels, the only one refuses.
        try:
            async with sdk.realtime.connect(model=model, websocket_connection_options=OPEN) as connection:
                await until(connection, "session.created", [])
            return True
        except InvalidStatus:
            return False

    await apoll(served, message="a session through the second channel")
    openai_realtime.seen = Seen()
    upstream_b_realtime.seen = Seen()
    async with sdk.realtime.connect(model=model, websocket_connection_options=OPEN) as connection:
        await until(connection, "session.created", [])
        done, _ = await turn(connection, text="hello")
        assert done.response.status == "completed"
    # Tried first and refused (or skipped while its refusals cool it down), then the second channel.
    assert len(openai_realtime.seen.paths) <= 1 and len(upstream_b_realtime.seen.paths) == 1


async def test_upstream_failure_mid_session(
    sdk: AsyncOpenAI, add_channel: AddChannel, openai_realtime: OpenAIRealtimeMock, tenant, sessionmaker
) -> None:
    model = unique_model("gpt-realtime")
    await add_channel(openai_realtime.base_url, [model])
    await wait_for_model(sdk, model)
    openai_realtime.drop_after = 4
    from websockets.exceptions import ConnectionClosedError

    async with sdk.realtime.connect(model=model, websocket_connection_options=OPEN) as connection:
        await until(connection, "session.created", [])
        await connection.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}
        )
        await connection.response.create()
        errors = []

        async def read_all() -> None:
            async for event in connection:
                if event.type == "error":
                    errors.append(event.error)

        with pytest.raises(ConnectionClosedError) as caught:
            await read_all()
    assert [e.code for e in errors] == ["upstream_error"]
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1011
    job = await finished_job(sessionmaker, tenant)
    assert job.status == "failed" and job.usage["close_code"] == 1011 and job.error_code == "upstream_error"


async def test_no_channel_answers(
    sdk: AsyncOpenAI, add_channel: AddChannel, openai_realtime: OpenAIRealtimeMock, tenant, sessionmaker
) -> None:
    model = unique_model("gpt-realtime")
    await add_channel(openai_realtime.base_url, [model])
    await wait_for_model(sdk, model)
    openai_realtime.refuse_status = 503
    with pytest.raises(InvalidStatus) as caught:
        async with sdk.realtime.connect(model=model, websocket_connection_options=OPEN):
            pass
    status, error = refusal(caught.value)
    assert status >= 500 and error["code"]
    job = await finished_job(sessionmaker, tenant)
    assert job.id == caught.value.response.headers["x-request-id"]
    assert job.status == "failed" and job.attempts_log and job.attempts_log[0]["status"] == 503


async def test_client_leaving_mid_response_is_billed_for_what_the_upstream_made(
    sdk: AsyncOpenAI, add_channel: AddChannel, openai_realtime: OpenAIRealtimeMock, tenant, sessionmaker, settings
) -> None:
    model = unique_model("gpt-realtime")
    await add_channel(openai_realtime.base_url, [model], price={"input_per_mtok": 1_000_000_000,
                                                                "output_per_mtok": 1_000_000_000})  # fmt: skip
    await wait_for_model(sdk, model)
    await top_up(settings, tenant, 10_000_000)
    openai_realtime.stall = True
    async with sdk.realtime.connect(model=model, websocket_connection_options=OPEN) as connection:
        await until(connection, "session.created", [])
        await connection.response.create()
        await until(connection, "response.output_audio_transcript.delta", [])
    # The gateway asked the upstream to stop, and booked the cancelled response's 61 tokens.
    job = await finished_job(sessionmaker, tenant)
    assert any(f["type"] == "response.cancel" for f in openai_realtime.seen.frames)
    assert job.usage["responses"] == 1 and job.cost == 61_000
