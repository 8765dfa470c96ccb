"""Realtime tests: the official SDK's `client.realtime.connect` against the gateway on a real socket."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from tests.conftest import Tenant
from tests.fakes.realtime_upstreams import GeminiLiveMock, OpenAIRealtimeMock
from tests.support import LiveServer, apoll

OPEN: Any = {"open_timeout": 60}
"""The SDK waits 10 s for a handshake by default: a loaded CI machine (PostgreSQL, two cores) once took longer."""

WORD_BYTES = 4800 * 2
"""local-realtime says each word as 0.2 s of PCM16 at 24 kHz."""


@pytest.fixture
async def sdk(live: LiveServer, tenant: Tenant) -> AsyncIterator[AsyncOpenAI]:
    # Closed here, on the test's loop: an unclosed client's __del__ schedules its close on whatever loop
    # runs in the thread the collector happens to run in (a mock server's), not on the one owning it.
    async with AsyncOpenAI(api_key=tenant.key, base_url=f"{live.url}/v1", max_retries=0, timeout=30) as client:
        yield client


def pcm16(seconds: float, rate: int = 24_000) -> bytes:
    """A quiet ramp, PCM16 little-endian: what a microphone would send."""
    n = int(seconds * rate)
    return b"".join(((i % 200) * 10).to_bytes(2, "little", signed=True) for i in range(n))


async def until(connection: Any, kind: str, seen: list[Any]) -> Any:
    """Read events until one of type `kind` (every event read is appended to `seen`)."""
    async for event in connection:
        seen.append(event)
        if event.type == kind:
            return event
        if event.type == "error" and kind != "error":
            raise AssertionError(f"error event: {event.error}")
    raise AssertionError(f"the connection closed before {kind}")


def audio_bytes(events: list[Any]) -> int:
    return sum(len(base64.b64decode(e.delta)) for e in events if e.type == "response.output_audio.delta")


async def turn(connection: Any, *, text: str | None = None, audio: bytes | None = None) -> tuple[Any, list[Any]]:
    """One user turn (a text item, or appended and committed audio) and the response to it."""
    if text is not None:
        await connection.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        )
    if audio is not None:
        for i in range(0, len(audio), 9600):
            await connection.input_audio_buffer.append(audio=base64.b64encode(audio[i : i + 9600]).decode())
        await connection.input_audio_buffer.commit()
    await connection.response.create()
    seen: list[Any] = []
    done = await until(connection, "response.done", seen)
    return done, seen


async def conversation(sdk: AsyncOpenAI, model: str) -> None:
    """The same client code against every upstream: a session update, a text turn, an audio turn
    (appended PCM16, committed), then a text-only turn; the same events come back."""
    async with sdk.realtime.connect(model=model, websocket_connection_options=OPEN) as connection:
        seen: list = []
        await until(connection, "session.created", seen)
        await connection.session.update(session={"type": "realtime", "instructions": "Be brief."})
        updated = await until(connection, "session.updated", seen)
        assert updated.session.instructions == "Be brief."

        done, events = await turn(connection, text="hello there gateway")
        transcript = "You said: hello there gateway"
        assert [e.transcript for e in events if e.type == "response.output_audio_transcript.done"] == [transcript]
        assert audio_bytes(events) == len(transcript.split()) * WORD_BYTES
        assert done.response.status == "completed"
        assert done.response.usage.output_token_details.text_tokens == 5
        assert done.response.usage.output_tokens > 0 and done.response.usage.input_tokens > 0

        done, events = await turn(connection, audio=pcm16(0.5))
        heard = [e for e in events if e.type == "conversation.item.input_audio_transcription.completed"]
        assert [e.transcript for e in heard] == ["500 milliseconds of audio"]
        answer = "I heard 500 milliseconds of audio"
        assert [e.transcript for e in events if e.type == "response.output_audio_transcript.done"] == [answer]
        assert audio_bytes(events) == len(answer.split()) * WORD_BYTES
        assert done.response.usage.input_token_details.audio_tokens == 5

        await connection.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await until(connection, "session.updated", [])
        done, events = await turn(connection, text="just text")
        assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "You said: just text"
        assert audio_bytes(events) == 0


@pytest.fixture(scope="session")
def openai_realtime_server() -> Iterator[OpenAIRealtimeMock]:
    server = OpenAIRealtimeMock().start()
    yield server
    server.stop()


@pytest.fixture
def openai_realtime(openai_realtime_server: OpenAIRealtimeMock) -> Iterator[OpenAIRealtimeMock]:
    openai_realtime_server.reset()
    yield openai_realtime_server
    openai_realtime_server.reset()


@pytest.fixture(scope="session")
def gemini_live_server() -> Iterator[GeminiLiveMock]:
    server = GeminiLiveMock().start()
    yield server
    server.stop()


@pytest.fixture
def gemini_live(gemini_live_server: GeminiLiveMock) -> Iterator[GeminiLiveMock]:
    gemini_live_server.reset()
    yield gemini_live_server
    gemini_live_server.reset()


async def wait_for_model(sdk: AsyncOpenAI, model: str) -> None:
    async def listed() -> bool:
        return model in {m.id async for m in sdk.models.list()}

    await apoll(listed, timeout=10, message=f"{model} in the live catalog")


@pytest.fixture(scope="session")
def upstream_b_realtime_server() -> Iterator[OpenAIRealtimeMock]:
    server = OpenAIRealtimeMock().start()
    yield server
    server.stop()


@pytest.fixture
def upstream_b_realtime(upstream_b_realtime_server: OpenAIRealtimeMock) -> Iterator[OpenAIRealtimeMock]:
    upstream_b_realtime_server.reset()
    yield upstream_b_realtime_server
    upstream_b_realtime_server.reset()


async def finished_job(sessionmaker: Any, tenant: Tenant) -> Any:
    """The tenant's one realtime job, once its row is finished."""
    from sqlmodel import select

    from app.jobs.models import Job

    async def done() -> Any:
        async with sessionmaker() as session:
            jobs = (await session.exec(select(Job).where(Job.account_id == tenant.account_id))).all()
            return jobs[0] if len(jobs) == 1 and jobs[0].completed_at is not None else None

    return await apoll(done, message="the session's job row finished")


async def top_up(settings: Any, tenant: Tenant, amount: int) -> None:
    """Credit the tenant's account as an operator does (the ledger, then the Redis mirror)."""
    from app.cli.base import operations

    async with operations(settings) as ops:
        await ops.topup(tenant.account_id, amount)
