"""A realtime channel of provider `gemini`: Gemini Live translated to and from OpenAI's events."""

from __future__ import annotations

import base64

import pytest
from openai import AsyncOpenAI

from tests.conftest import AddChannel, unique_model
from tests.fakes.realtime_upstreams import GeminiLiveMock
from tests.realtime.conftest import OPEN, conversation, pcm16, turn, until, wait_for_model

pytestmark = pytest.mark.e2e


async def gemini_model(sdk: AsyncOpenAI, add_channel: AddChannel, server: GeminiLiveMock) -> str:
    model = unique_model("gemini-live")
    await add_channel(f"http://127.0.0.1:{server.port}", [model], provider="gemini", api_key="g-upstream-key")
    await wait_for_model(sdk, model)
    return model


async def test_same_client_same_events(sdk: AsyncOpenAI, add_channel: AddChannel, gemini_live: GeminiLiveMock) -> None:
    model = await gemini_model(sdk, add_channel, gemini_live)
    await conversation(sdk, model)
    assert gemini_live.seen.paths[0].endswith("BidiGenerateContent?key=g-upstream-key")
    setup = gemini_live.seen.frames[0]["setup"]
    assert setup["model"] == f"models/{model}"
    assert setup["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert setup["realtimeInputConfig"]["automaticActivityDetection"]["disabled"] is True
    # The client's 24 kHz audio went up at 16 kHz: 0.5 s is 16,000 bytes.
    sent = [f["realtimeInput"]["audio"] for f in gemini_live.seen.frames if "audio" in f.get("realtimeInput", {})]
    assert {a["mimeType"] for a in sent} == {"audio/pcm;rate=16000"}
    assert sum(len(base64.b64decode(a["data"])) for a in sent) == 16_000


async def test_tool_call_round_trip(sdk: AsyncOpenAI, add_channel: AddChannel, gemini_live: GeminiLiveMock) -> None:
    model = await gemini_model(sdk, add_channel, gemini_live)
    tool = {"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}
    async with sdk.realtime.connect(model=model, websocket_connection_options=OPEN) as connection:
        await until(connection, "session.created", [])
        await connection.session.update(session={"type": "realtime", "tools": [tool]})
        await until(connection, "session.updated", [])
        done, events = await turn(connection, text="please call the weather tool")
        calls = [e for e in events if e.type == "response.function_call_arguments.done"]
        assert [(c.name, c.call_id, c.arguments) for c in calls] == [("get_weather", "call-1", '{"city":"Paris"}')]
        await connection.conversation.item.create(
            item={"type": "function_call_output", "call_id": "call-1", "output": '{"temp": 20}'}
        )
        done, events = await turn(connection)
        transcript = [e.transcript for e in events if e.type == "response.output_audio_transcript.done"]
        assert transcript == ["Thanks for the result"]
        assert done.response.usage.total_tokens > 0
    setup = gemini_live.seen.frames[0]["setup"]
    assert setup["tools"] == [{"functionDeclarations": [{k: v for k, v in tool.items() if k != "type"}]}]
    responses = [f["toolResponse"] for f in gemini_live.seen.frames if "toolResponse" in f]
    assert responses == [{"functionResponses": [{"id": "call-1", "name": "get_weather",
                                                 "response": {"output": '{"temp": 20}'}}]}]  # fmt: skip


async def test_audio_turn_usage(sdk: AsyncOpenAI, add_channel: AddChannel, gemini_live: GeminiLiveMock) -> None:
    model = await gemini_model(sdk, add_channel, gemini_live)
    async with sdk.realtime.connect(model=model, websocket_connection_options=OPEN) as connection:
        await until(connection, "session.created", [])
        done, _ = await turn(connection, audio=pcm16(1.0))
    usage = done.response.usage
    assert usage.input_token_details.audio_tokens == 10
    assert usage.output_token_details.audio_tokens == 12 and usage.output_token_details.text_tokens == 6


async def test_interruption_cancels_the_response_and_its_usage_is_billed(
    sdk: AsyncOpenAI, add_channel: AddChannel, gemini_live: GeminiLiveMock
) -> None:
    model = await gemini_model(sdk, add_channel, gemini_live)
    gemini_live.interrupt = True
    async with sdk.realtime.connect(model=model, websocket_connection_options=OPEN) as connection:
        await until(connection, "session.created", [])
        done, events = await turn(connection, text="tell me a long story")
        assert done.response.status == "cancelled"
        assert "input_audio_buffer.speech_started" in [e.type for e in events]
        assert [e.delta for e in events if e.type == "response.output_audio_transcript.delta"] == ["You"]
        # The turn's usage (sent with turnComplete, after the interruption) comes with the next response.
        gemini_live.interrupt = False
        done, _ = await turn(connection, text="ok")
        assert done.response.status == "completed"
        assert done.response.usage.output_token_details.text_tokens == 3 + 1
