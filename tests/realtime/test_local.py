"""The built-in `local-realtime` model through WS /v1/realtime, with the official SDK as the client."""

from __future__ import annotations

import base64

import pytest
from openai import AsyncOpenAI

from tests.realtime.conftest import WORD_BYTES, audio_bytes, pcm16, turn, until

pytestmark = pytest.mark.e2e


async def test_text_and_audio_turns(sdk: AsyncOpenAI) -> None:
    async with sdk.realtime.connect(model="local-realtime") as connection:
        seen: list = []
        created = await until(connection, "session.created", seen)
        assert created.session.model == "local-realtime"
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


async def test_bad_event_gets_an_error_event_and_the_session_goes_on(sdk: AsyncOpenAI) -> None:
    async with sdk.realtime.connect(model="local-realtime") as connection:
        await until(connection, "session.created", [])
        await connection.send({"type": "no.such.event"})  # type: ignore[arg-type]
        error = await until(connection, "error", [])
        assert error.error.code == "invalid_event_type"
        await connection.input_audio_buffer.append(audio=base64.b64encode(pcm16(0.1)).decode())
        await connection.input_audio_buffer.commit()
        await until(connection, "input_audio_buffer.committed", [])
