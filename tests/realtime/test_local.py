"""The built-in `local-realtime` model through WS /v1/realtime, with the official SDK as the client."""

from __future__ import annotations

import base64

import pytest
from openai import AsyncOpenAI

from tests.realtime.conftest import OPEN, conversation, pcm16, until

pytestmark = pytest.mark.e2e


async def test_text_and_audio_turns(sdk: AsyncOpenAI) -> None:
    await conversation(sdk, "local-realtime")


async def test_bad_event_gets_an_error_event_and_the_session_goes_on(sdk: AsyncOpenAI) -> None:
    async with sdk.realtime.connect(model="local-realtime", websocket_connection_options=OPEN) as connection:
        await until(connection, "session.created", [])
        await connection.send({"type": "no.such.event"})  # type: ignore[arg-type]
        error = await until(connection, "error", [])
        assert error.error.code == "invalid_event_type"
        await connection.input_audio_buffer.append(audio=base64.b64encode(pcm16(0.1)).decode())
        await connection.input_audio_buffer.commit()
        await until(connection, "input_audio_buffer.committed", [])
