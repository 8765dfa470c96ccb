"""The deadline reaper: stalls become UpstreamTimeout, everything else is left alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from app.channels.catalog import Route
from app.channels.policy import ChannelPolicy
from app.chat.guard import open_guarded
from app.core.deadlines import Reaper
from app.core.upstream_errors import UpstreamTimeout, UpstreamUnavailable
from app.providers.base import StreamEvent, StreamStats


@pytest.fixture
async def reaper() -> AsyncIterator[Reaper]:
    r = Reaper(tick=0.01)
    await r.start()
    yield r
    await r.stop()


async def test_a_stalled_wait_times_out(reaper: Reaper) -> None:
    with pytest.raises(UpstreamTimeout) as caught, reaper.bounded(0.05, "total"):
        await asyncio.sleep(30)
    assert caught.value.reason == "total"
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_quick_wait_is_untouched(reaper: Reaper) -> None:
    with reaper.bounded(5, "total"):
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)  # a late sweep must not cancel anything now


async def test_a_cancellation_that_is_not_ours_propagates(reaper: Reaper) -> None:
    async def waits() -> None:
        with reaper.bounded(30, "total"):
            await asyncio.sleep(30)

    task = asyncio.create_task(waits())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class FakeStream:
    def __init__(self, gaps: list[float]) -> None:
        self.gaps = gaps
        self.stats = StreamStats()
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[list[StreamEvent]]:
        for i, gap in enumerate(self.gaps):
            await asyncio.sleep(gap)
            yield [StreamEvent(str(i).encode())]

    async def aclose(self) -> None:
        self.closed = True


class FakeProvider:
    def __init__(self, stream: FakeStream) -> None:
        self.stream = stream

    async def open_chat_stream(self, route: Route, call: object) -> FakeStream:
        return self.stream


def route_with(**policy: float) -> Route:
    return Route("ch_x", "x", "openai", None, None, "m", 0, 1, {}, ChannelPolicy(**policy))  # type: ignore[arg-type]


def events(gaps: list[float]) -> Iterator[bytes]:
    return (str(i).encode() for i in range(len(gaps)))


async def test_guarded_stream_first_byte_then_idle(reaper: Reaper) -> None:
    stalled = FakeStream([30])
    with pytest.raises(UpstreamTimeout) as caught:
        await open_guarded(reaper, FakeProvider(stalled), route_with(first_byte_timeout=0.05), None)  # type: ignore[arg-type]
    assert caught.value.reason == "first_byte" and stalled.closed

    stream = FakeStream([0, 0, 30])
    guarded = await open_guarded(reaper, FakeProvider(stream), route_with(idle_timeout=0.05), None)  # type: ignore[arg-type]
    got: list[bytes] = []

    async def drain() -> None:
        async for batch in guarded:
            got.extend(event.data for event in batch)

    with pytest.raises(UpstreamTimeout) as caught:
        await drain()
    await guarded.aclose()
    assert got == [b"0", b"1"] and caught.value.reason == "idle" and stream.closed


async def test_guarded_stream_runs_to_the_end(reaper: Reaper) -> None:
    stream = FakeStream([0, 0.01, 0])
    guarded = await open_guarded(reaper, FakeProvider(stream), route_with(idle_timeout=5), None)  # type: ignore[arg-type]
    assert [e.data async for batch in guarded for e in batch] == list(events([0, 0.01, 0]))
    await guarded.aclose()


class FailingStream(FakeStream):
    async def __aiter__(self) -> AsyncIterator[list[StreamEvent]]:
        yield [StreamEvent(b"0")]
        raise UpstreamUnavailable("Upstream closed the stream before it finished.")


async def test_an_upstream_error_stops_the_watch(reaper: Reaper) -> None:
    """After the stream raised, a late sweep must not cancel the task wherever it has gone since."""
    guarded = await open_guarded(reaper, FakeProvider(FailingStream([])), route_with(idle_timeout=0.02), None)  # type: ignore[arg-type]
    assert [e.data for e in await anext(guarded)] == [b"0"]
    with pytest.raises(UpstreamUnavailable):
        await anext(guarded)
    await asyncio.sleep(0.1)  # several idle timeouts and sweeps later: still not cancelled
    await guarded.aclose()
