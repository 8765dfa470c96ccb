"""The chat adapters' upstream plumbing over aiohttp (app.providers.common) and the OpenAI stream's
read-by-read batching, against the loopback mock upstream or a scripted list of reads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from itertools import pairwise
from typing import Any

import aiohttp
import pytest

from app.channels.policy import ChannelPolicy
from app.core.http import create_upstream_session
from app.core.settings import Settings
from app.core.timing import begin, end
from app.core.upstream_errors import UpstreamConnectError, UpstreamUnavailable
from app.providers.base import StreamEvent
from app.providers.common import MAX_ERROR_BODY, open_stream, post
from app.providers.openai import OpenAIChatStream
from tests.fakes.upstream import MockUpstream, Reply, chunk, usage_chunk
from tests.support import apoll, free_port

CHAT_PATH = "/v1/chat/completions"
TIMEOUT = ChannelPolicy().http_timeout


def sse(*items: Any) -> bytes:
    return b"".join(b"data: " + (i if isinstance(i, bytes) else json.dumps(i).encode()) + b"\n\n" for i in items)


class Reads:
    """An UpstreamResponse stand-in: the given reads, in order."""

    def __init__(self, *reads: bytes) -> None:
        self._reads = list(reads)
        self.closed = False

    def __aiter__(self) -> Reads:
        return self

    async def __anext__(self) -> bytes:
        if not self._reads:
            raise StopAsyncIteration
        return self._reads.pop(0)

    async def aclose(self) -> None:
        self.closed = True


async def batches(stream: OpenAIChatStream) -> list[list[StreamEvent]]:
    return [batch async for batch in stream]


async def test_the_events_of_one_read_come_as_one_batch_and_are_counted() -> None:
    one_read = sse(chunk(role="assistant", content=""), chunk("Hel"), chunk("lo"), chunk(finish="stop"))
    stream = OpenAIChatStream(Reads(one_read, sse(usage_chunk(20, 2), b"[DONE]")), "chatcmpl-ours")  # type: ignore[arg-type]
    got = await batches(stream)
    assert [len(b) for b in got] == [4, 2]
    first, last = got
    assert all(json.loads(e.data)["id"] == "chatcmpl-ours" for e in first)
    assert [json.loads(e.data)["choices"][0]["delta"].get("content") for e in first] == ["", "Hel", "lo", None]
    assert last[0].usage_only and json.loads(last[0].data)["usage"]["total_tokens"] == 22
    assert last[1].end and last[1].data == b"[DONE]"
    stats = stream.stats
    assert (stats.content_chars, stats.content_chunks, stats.finished) == (5, 2, True)
    assert stats.usage is not None and stats.usage.prompt_tokens == 20


async def test_an_event_split_across_reads_waits_for_its_end_only() -> None:
    """Never more waiting than the SSE framing needs: a read with one whole event yields it at once."""
    whole = sse(chunk("a"))
    split = sse(chunk("b"), chunk(finish="stop"))
    reads = Reads(whole + split[:10], split[10:], sse(b"[DONE]"))
    got = await batches(OpenAIChatStream(reads, "chatcmpl-ours"))  # type: ignore[arg-type]
    assert [len(b) for b in got] == [1, 2, 1]


async def test_an_oddly_shaped_chunk_takes_the_untyped_path_and_still_counts() -> None:
    odd = chunk(extra_delta={"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": {"x": 1}}}]})
    odd["id"] = 42  # not a string: the typed decoder refuses it
    stream = OpenAIChatStream(Reads(sse(odd, chunk("ok", finish="stop"), b"[DONE]")), "chatcmpl-ours")  # type: ignore[arg-type]
    (batch,) = await batches(stream)
    assert [json.loads(e.data)["id"] for e in batch[:2]] == ["chatcmpl-ours", "chatcmpl-ours"]
    assert stream.stats.content_chunks == 2 and stream.stats.content_chars == len("f") + len("{'x': 1}") + 2


async def test_an_error_event_after_content_in_the_same_read_relays_the_content_first() -> None:
    reads = Reads(sse(chunk("partial"), {"error": {"message": "overloaded"}}))
    it = aiter(OpenAIChatStream(reads, "chatcmpl-ours"))  # type: ignore[arg-type]
    assert [json.loads(e.data)["choices"][0]["delta"]["content"] for e in await anext(it)] == ["partial"]
    with pytest.raises(UpstreamUnavailable, match="overloaded"):
        await anext(it)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(trust_env=False) as s:
        yield s


async def test_disconnect_closes_the_upstream_connection(
    session: aiohttp.ClientSession, mock_upstream: MockUpstream
) -> None:
    mock_upstream.script(CHAT_PATH, Reply(forever=True))
    response = await open_stream(session, mock_upstream.base_url + "/chat/completions", b"{}", {}, TIMEOUT)
    assert b"tick" in await anext(aiter(response))
    await response.aclose()
    await apoll(lambda: mock_upstream.disconnects, timeout=5, message="the upstream saw the connection close")


async def test_a_finished_stream_goes_back_to_the_pool(
    session: aiohttp.ClientSession, mock_upstream: MockUpstream
) -> None:
    for _ in range(3):
        response = await open_stream(
            session, mock_upstream.base_url + "/chat/completions", b'{"stream":true}', {}, TIMEOUT
        )
        assert b"[DONE]" in b"".join([raw async for raw in response])
        await response.aclose()
    connector = session.connector  # one idle keep-alive connection, reused each time
    assert connector is not None and sum(len(c) for c in connector._conns.values()) == 1


async def test_the_shared_session_keeps_no_upstream_cookie(settings: Settings, mock_upstream: MockUpstream) -> None:
    """One session serves every tenant: a cookie set on one answer must not go out with the next request."""
    mock_upstream.script(CHAT_PATH, Reply(headers={"set-cookie": "__cf_bm=tenant-a; Path=/"}), Reply())
    # By name: aiohttp's default jar would ignore a cookie set by an IP address.
    url = mock_upstream.base_url.replace("127.0.0.1", "localhost") + "/chat/completions"
    session = create_upstream_session(settings)
    try:
        for _ in range(2):
            await post(session, url, b"{}", {}, TIMEOUT)
    finally:
        await session.close()
    first, second = mock_upstream.calls(CHAT_PATH)
    assert first.headers.get("Cookie") is None and "cookie" not in {k.lower() for k in second.headers}


async def test_errors_are_mapped_and_the_error_body_is_bounded(
    session: aiohttp.ClientSession, mock_upstream: MockUpstream
) -> None:
    url = mock_upstream.base_url + "/chat/completions"
    huge = "x" * (MAX_ERROR_BODY * 2)
    mock_upstream.script(CHAT_PATH, Reply(status=503, json={"error": {"message": huge}}))
    with pytest.raises(UpstreamUnavailable) as caught:
        await open_stream(session, url, b"{}", {}, TIMEOUT)
    assert caught.value.status == 503 and caught.value.error is None  # cut at the bound: no longer JSON
    with pytest.raises(UpstreamConnectError):
        await post(session, f"http://127.0.0.1:{free_port()}/v1/chat/completions", b"{}", {}, TIMEOUT)
    mock_upstream.script(CHAT_PATH, Reply(refuse=True))
    with pytest.raises(UpstreamConnectError):
        await post(session, url, b"{}", {}, TIMEOUT)


async def test_the_upstream_wait_is_counted_as_upstream_time(
    session: aiohttp.ClientSession, mock_upstream: MockUpstream
) -> None:
    """What the overhead header leaves out: the wait for the headers, then each wait for a read."""
    mock_upstream.script(CHAT_PATH, Reply(sse=[chunk("a"), chunk("b"), "[DONE]"], chunk_delay=0.01))
    timing, token = begin(0.0)
    try:
        response = await open_stream(session, mock_upstream.base_url + "/chat/completions", b"{}", {}, TIMEOUT)
        waits = [timing.upstream]
        async for _ in response:
            waits.append(timing.upstream)
        await response.aclose()
    finally:
        end(token)
    assert waits[0] > 0 and all(later > earlier for earlier, later in pairwise(waits))
