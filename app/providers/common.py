"""HTTP plumbing every HTTP adapter shares: one POST, one streamed POST, transport errors mapped once."""

from __future__ import annotations

import httpx

from app.providers.errors import UpstreamConnectError, UpstreamTimeout, UpstreamUnavailable, from_status

MAX_ERROR_BODY = 64 * 1024


def _timed_out(exc: httpx.HTTPError) -> bool:
    # httpx-aiohttp maps every aiohttp connection error (a dropped connection too) to ConnectTimeout;
    # only a cause that is itself a timeout makes it one.
    cause = exc.__cause__
    return isinstance(exc, httpx.TimeoutException) and (
        cause is None or isinstance(cause, TimeoutError) or "Timeout" in type(cause).__name__
    )


def transport_error(exc: httpx.HTTPError) -> UpstreamUnavailable:
    cause = exc.__cause__
    timed_out = _timed_out(exc)
    if timed_out and isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return UpstreamTimeout(f"Upstream timed out connecting: {type(exc).__name__}", reason="connect")
    if timed_out:
        return UpstreamTimeout(f"Upstream timed out: {type(exc).__name__}", reason="read")
    if isinstance(exc, httpx.ConnectError | httpx.TimeoutException):
        return UpstreamConnectError(f"Upstream connection failed: {type(cause or exc).__name__}")
    return UpstreamUnavailable(f"Upstream connection failed: {type(cause or exc).__name__}")


async def read_bounded(response: httpx.Response, limit: int) -> bytes:
    out = bytearray()
    async for chunk in response.aiter_raw():
        out += chunk
        if len(out) >= limit:
            break
    return bytes(out[:limit])


async def post(
    client: httpx.AsyncClient, url: str, content: bytes, headers: dict[str, str], limits: httpx.Timeout
) -> httpx.Response:
    """POST and read the whole answer; anything but a 200 raises the matching ProviderError."""
    try:
        response = await client.post(url, content=content, headers=headers, timeout=limits)
    except httpx.HTTPError as exc:
        raise transport_error(exc) from exc
    if response.status_code != 200:
        raise from_status(response.status_code, response.content, response.headers)
    return response


async def open_stream(
    client: httpx.AsyncClient, url: str, content: bytes, headers: dict[str, str], limits: httpx.Timeout
) -> httpx.Response:
    """POST and return once a 200 arrived, body unread (the caller owns and closes the response)."""
    request = client.build_request("POST", url, content=content, headers=headers, timeout=limits)
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise transport_error(exc) from exc
    if response.status_code != 200:
        try:
            body = await read_bounded(response, MAX_ERROR_BODY)
        except httpx.HTTPError:
            body = b""
        finally:
            await response.aclose()
        raise from_status(response.status_code, body, response.headers)
    return response
