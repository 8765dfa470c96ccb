"""An upstream stream opened under the channel's deadlines, its first events already in hand.

`open_guarded` returns only once the upstream has sent its first event (with whatever else came in the
same read): until then nothing has gone
to the client, so a stall or an error before the first token can still fail over to another channel.
After that, every wait for the next event is bounded by the idle timeout and the whole stream by its
total timeout (app.core.deadlines), and a breach surfaces as `UpstreamTimeout` in the relay, which ends the
client's stream with an SSE error event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from anyio import CancelScope

from app.channels.catalog import Route
from app.core.deadlines import Reaper, Watch
from app.core.upstream_errors import UpstreamTimeout
from app.providers.base import ChatCall, ChatStream, Provider, StreamEvent, StreamStats


class GuardedStream:
    """Iterates the upstream's events, a list per upstream read: the first read already in hand, each
    later wait watched. An async iterator (not a generator) so relaying adds no generator layer per read."""

    __slots__ = ("_first", "_inner", "_it", "_watch", "stats")

    def __init__(
        self, inner: ChatStream, it: AsyncIterator[list[StreamEvent]], first: list[StreamEvent] | None, watch: Watch
    ) -> None:
        self._inner = inner
        self._it = it
        self._first = first
        self._watch = watch
        self.stats: StreamStats = inner.stats

    def __aiter__(self) -> GuardedStream:
        return self

    async def __anext__(self) -> list[StreamEvent]:
        watch = self._watch
        first = self._first
        if first is not None:
            self._first = None
            watch.task = asyncio.current_task()  # the relaying task; looked up once, not per chunk
            return first
        now = time.monotonic()
        if now >= watch.deadline:
            raise UpstreamTimeout("Upstream timed out waiting for the end of the answer.", reason="total")
        watch.waiting_since = now
        try:
            event = await self._it.__anext__()
        except asyncio.CancelledError:
            timeout = watch.timed_out()
            if timeout is not None:
                raise timeout from None
            raise
        except BaseException:
            # StopAsyncIteration or an upstream error: no longer waiting, or the reaper could cancel
            # the task later, wherever it is by then.
            watch.waiting_since = None
            raise
        watch.waiting_since = None
        if watch.fired is not None:
            watch.stop_waiting()
        return event

    async def aclose(self) -> None:
        self._watch.release()
        closer = getattr(self._it, "aclose", None)
        try:
            if closer is not None:
                await closer()
        finally:
            await self._inner.aclose()


async def open_guarded(reaper: Reaper, provider: Provider, route: Route, call: ChatCall) -> GuardedStream:
    policy = route.policy
    watch = reaper.watch(policy.first_byte_timeout, policy.stream_total_timeout, "first_byte")
    stream: ChatStream | None = None
    try:
        watch.start_waiting()
        try:
            stream = await provider.open_chat_stream(route, call)
            it = aiter(stream)
            first: list[StreamEvent] | None = await anext(it)
        except StopAsyncIteration:
            first = None
        except asyncio.CancelledError:
            timeout = watch.timed_out()
            if timeout is not None:
                raise timeout from None
            raise
        watch.stop_waiting()
    except BaseException:
        watch.release()
        if stream is not None:
            with CancelScope(shield=True):
                await stream.aclose()
        raise
    assert stream is not None
    watch.limit, watch.phase = policy.idle_timeout, "idle"
    return GuardedStream(stream, it, first, watch)
