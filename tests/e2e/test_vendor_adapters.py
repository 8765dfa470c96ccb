"""The `openai` SDK against the gateway on a real socket, with an OpenAI-compatible, an Anthropic and a
Gemini mock upstream answering the same scenario: the client gets the same content, the same streamed
chunks joined, the same tool calls and usage, whichever upstream answered."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import APIError, AsyncOpenAI

from tests.conftest import AddChannel, Tenant, unique_model
from tests.e2e.test_openai_sdk import wait_for_model
from tests.fakes.scenario import TOOL_ANSWER, Answer
from tests.fakes.vendors import ScriptedAnswers
from tests.support import LiveServer

pytestmark = pytest.mark.e2e
VENDORS = ["openai", "anthropic", "gemini"]
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
]
PIXEL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
async def sdk(live: LiveServer, tenant: Tenant) -> AsyncIterator[AsyncOpenAI]:
    # Closed here, on the test's loop: an unclosed client's __del__ schedules its close on whatever loop
    # runs in the thread the collector happens to run in (a mock server's), not on the one owning it.
    async with AsyncOpenAI(api_key=tenant.key, base_url=f"{live.url}/v1", max_retries=0, timeout=30) as client:
        yield client


async def channel(sdk: AsyncOpenAI, add_channel: AddChannel, vendor: str, server: ScriptedAnswers) -> str:
    model = unique_model(vendor)
    await add_channel(server.base_url, [f"{model}=up-{vendor}"], provider=vendor, options={"cooldown_failures": 1000})
    await wait_for_model(sdk, model)
    return model


def conversation() -> Any:
    """Every kind of message the adapters translate: system, text and image parts, a tool round trip."""
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    return [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Weather here?"}, {"type": "image_url", "image_url": {"url": PIXEL}}],
        },
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'},
    ]


def joined_tool_calls(chunks: list[Any]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                call = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                if tc.function and tc.function.name:
                    call["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    call["arguments"] += tc.function.arguments
    return calls


@pytest.mark.parametrize("vendor", VENDORS)
async def test_same_text_stream_and_usage_whatever_the_upstream(
    sdk: AsyncOpenAI, add_channel: AddChannel, vendors: dict[str, ScriptedAnswers], vendor: str
) -> None:
    model = await channel(sdk, add_channel, vendor, vendors[vendor])
    whole = await sdk.chat.completions.create(model=model, messages=conversation(), stop=["END"], max_tokens=50)
    assert whole.choices[0].message.content == Answer().text
    assert whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None and (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (11, 3)
    assert whole.usage.total_tokens == 14 and whole.id.startswith("chatcmpl-")

    stream = await sdk.chat.completions.create(
        model=model, messages=conversation(), stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == Answer().text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 14
    assert {c.id for c in chunks} == {chunks[0].id}


@pytest.mark.parametrize("vendor", VENDORS)
async def test_same_tool_calls_whatever_the_upstream(
    sdk: AsyncOpenAI, add_channel: AddChannel, vendors: dict[str, ScriptedAnswers], vendor: str
) -> None:
    server = vendors[vendor]
    server.answer = TOOL_ANSWER
    model = await channel(sdk, add_channel, vendor, server)
    messages: Any = [{"role": "user", "content": "Weather in Paris?"}]
    whole = await sdk.chat.completions.create(model=model, messages=messages, tools=TOOLS, tool_choice="required")
    choice = whole.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == TOOL_ANSWER.tool[1]  # type: ignore[index]
    assert whole.usage is not None and whole.usage.completion_tokens == 9

    stream = await sdk.chat.completions.create(model=model, messages=messages, tools=TOOLS, stream=True)
    chunks = [c async for c in stream]
    calls = joined_tool_calls(chunks)
    assert list(calls) == [0] and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == TOOL_ANSWER.tool[1]  # type: ignore[index]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]

    # The assistant turn goes back to the upstream as it came (Gemini's thought signature included).
    if vendor == "gemini":
        messages = [*messages, whole.choices[0].message.model_dump(exclude_none=True)]
        messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'})
        server.answer = Answer()
        again = await sdk.chat.completions.create(model=model, messages=messages, tools=TOOLS)
        assert again.choices[0].message.content == Answer().text
        sent = server.requests[-1].body["contents"]
        assert sent[1]["parts"][0]["thoughtSignature"] == "c2lnLTE="
        assert sent[2]["parts"][0]["functionResponse"] == {"name": "get_weather", "response": {"temperature": 21}}


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
async def test_failure_mid_stream_raises_api_error_in_the_sdk(
    sdk: AsyncOpenAI, add_channel: AddChannel, vendors: dict[str, ScriptedAnswers], vendor: str
) -> None:
    from tests.fakes.scenario import anthropic_sse, openai_sse
    from tests.fakes.upstream import Reply

    server = vendors[vendor]
    model = await channel(sdk, add_channel, vendor, server)
    path = "/v1/messages" if vendor == "anthropic" else "/v1/chat/completions"
    events = anthropic_sse(Answer(), "m")[:5] if vendor == "anthropic" else openai_sse(Answer())[:3]
    server.script(path, Reply(sse=events, close_after=len(events)))
    stream = await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], stream=True)
    received: list[str] = []

    async def read_all() -> None:
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")

    with pytest.raises(APIError) as caught:
        await read_all()
    assert "".join(received) == "Hello from" and "upstream" in str(caught.value.message).lower()


async def test_stall_mid_stream_raises_api_error_in_the_sdk_instead_of_hanging(
    sdk: AsyncOpenAI, add_channel: AddChannel, vendors: dict[str, ScriptedAnswers]
) -> None:
    from tests.fakes.scenario import openai_sse
    from tests.fakes.upstream import Reply

    server = vendors["openai"]
    model = unique_model("stall")
    await add_channel(server.base_url, [model], options={"idle_timeout": 0.5, "cooldown_failures": 1000})
    await wait_for_model(sdk, model)
    server.script("/v1/chat/completions", Reply(sse=openai_sse(Answer())[:2], forever=True, chunk_delay=30))
    stream = await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], stream=True)

    async def read_all() -> None:
        async for _ in stream:
            pass

    with pytest.raises(APIError) as caught:
        await read_all()
    assert "next chunk" in str(caught.value.message)
