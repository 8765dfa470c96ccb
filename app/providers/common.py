"""HTTP plumbing every chat adapter shares, over aiohttp's own client: one POST, one streamed POST,
transport errors mapped by app.core.http, and the upstream wait added to the request's timing.

The wait for the upstream (until the whole answer, or each chunk of a stream) is added to
`RequestTiming.upstream`, so `x-heytoken-overhead-ms` leaves it out (app.core.timing).
"""

from __future__ import annotations

from time import perf_counter

import aiohttp
from multidict import CIMultiDictProxy

from app.channels.catalog import Route
from app.core.http import TRANSPORT_ERRORS, transport_error
from app.core.timing import RequestTiming, current
from app.core.upstream_errors import from_status

MAX_ERROR_BODY = 64 * 1024


def json_headers(
    route: Route, key_header: str, key_prefix: str = "", fixed: dict[str, str] | None = None
) -> dict[str, str]:
    """A JSON request's headers: the vendor's `fixed` ones, the channel's key (when it has one) in
    `key_header`, then the channel's own `headers` option, which wins."""
    headers = {"content-type": "application/json", **(fixed or {})}
    if route.api_key:
        headers[key_header] = key_prefix + route.api_key
    extra = route.options.get("headers")
    if isinstance(extra, dict):
        headers.update({str(k): str(v) for k, v in extra.items()})
    return headers


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    out = bytearray()
    while len(out) < limit:
        chunk = await response.content.readany()
        if not chunk:
            break
        out += chunk
    return bytes(out[:limit])


async def post(
    session: aiohttp.ClientSession, url: str, content: bytes, headers: dict[str, str], limits: aiohttp.ClientTimeout
) -> bytes:
    """POST and read the whole answer; anything but a 200 raises the matching ProviderError."""
    timing = current()
    started = perf_counter()
    try:
        async with session.post(url, data=content, headers=headers, timeout=limits, allow_redirects=False) as response:
            if response.status != 200:
                raise from_status(response.status, await read_bounded(response, MAX_ERROR_BODY), response.headers)
            return await response.read()
    except TRANSPORT_ERRORS as exc:
        raise transport_error(exc) from exc
    finally:
        if timing is not None:
            timing.upstream += perf_counter() - started


class UpstreamResponse:
    """A 200 answer with its body unread: iterate it for the bytes of each read as they arrive (the
    wait for each counted as upstream time, errors mapped), then `aclose`. An async iterator, not a
    generator, so a chunk costs one coroutine call."""

    __slots__ = ("_response", "_timing", "headers")

    def __init__(self, response: aiohttp.ClientResponse, timing: RequestTiming | None) -> None:
        self._response = response
        self._timing = timing
        self.headers: CIMultiDictProxy[str] = response.headers

    def __aiter__(self) -> UpstreamResponse:
        return self

    async def __anext__(self) -> bytes:
        timing = self._timing
        started = perf_counter()
        try:
            chunk = await self._response.content.readany()
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc) from exc
        finally:
            if timing is not None:
                timing.upstream += perf_counter() - started
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        """Back to the pool when the body was read to its end; otherwise the connection is closed, so
        the upstream sees at once that nobody is reading (a client that went away)."""
        response = self._response
        if response.content.at_eof():
            response.release()
        else:
            response.close()


async def open_stream(
    session: aiohttp.ClientSession, url: str, content: bytes, headers: dict[str, str], limits: aiohttp.ClientTimeout
) -> UpstreamResponse:
    """POST and return once a 200 arrived, body unread (the caller owns and closes the response)."""
    timing = current()
    started = perf_counter()
    try:
        response = await session.post(url, data=content, headers=headers, timeout=limits, allow_redirects=False)
    except TRANSPORT_ERRORS as exc:
        raise transport_error(exc) from exc
    finally:
        if timing is not None:
            timing.upstream += perf_counter() - started
    if response.status != 200:
        try:
            body = await read_bounded(response, MAX_ERROR_BODY)
        except TRANSPORT_ERRORS:
            body = b""
        finally:
            response.close()
        raise from_status(response.status, body, response.headers)
    return UpstreamResponse(response, timing)
