"""Realtime tests: the official SDK's `client.realtime.connect` against the gateway on a real socket."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from openai import AsyncOpenAI

from tests.conftest import Tenant
from tests.support import LiveServer

WORD_BYTES = 4800 * 2
"""local-realtime says each word as 0.2 s of PCM16 at 24 kHz."""


@pytest.fixture
def sdk(live: LiveServer, tenant: Tenant) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=tenant.key, base_url=f"{live.url}/v1", max_retries=0)


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
