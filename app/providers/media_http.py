"""HTTP plumbing shared by the remote media adapters: one call, errors mapped into the ProviderError
tree (app/core/upstream_errors.py), and result downloads streamed (never read whole into memory)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from app.core.http import transport_error
from app.core.upstream_errors import UpstreamRejected, UpstreamUnavailable, from_status
from app.providers.base import Download

CHUNK = 256 * 1024
EXPIRED = frozenset({403, 404, 410})
"""What an expired or deleted result link answers (S3/GCS signed URLs: 403; deleted files: 404, 410)."""


def same_host(url: str, base_url: str | None) -> bool:
    """Whether `url` points at the channel's own host (only then does it get the channel's key)."""
    return base_url is not None and urlsplit(url).netloc == urlsplit(base_url).netloc


async def call(client: httpx.AsyncClient, method: str, url: str, *, timeout_s: float, **kwargs: Any) -> httpx.Response:
    """One request; a non-2xx answer raises the matching ProviderError (429/5xx transient, 4xx not)."""
    try:
        response = await client.request(method, url, timeout=timeout_s, **kwargs)
    except httpx.HTTPError as exc:
        raise transport_error(exc) from exc
    if not 200 <= response.status_code < 300:
        raise from_status(response.status_code, response.content, response.headers)
    return response


def json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError as exc:
        raise UpstreamUnavailable(f"Upstream answered {response.status_code} with a body that is not JSON.") from exc
    if not isinstance(body, dict):
        raise UpstreamUnavailable(f"Upstream answered {response.status_code} with JSON that is not an object.")
    return body


@asynccontextmanager
async def stream_download(
    client: httpx.AsyncClient, url: str, *, timeout_s: float, headers: dict[str, str] | None = None, default_type: str
) -> AsyncIterator[Download]:
    """GET `url` as a stream (following redirects: result URLs often point at a CDN)."""
    request = client.build_request("GET", url, headers=headers or {}, timeout=timeout_s)
    try:
        response = await client.send(request, stream=True, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise transport_error(exc) from exc
    try:
        if response.status_code in EXPIRED:
            # A result link that no longer answers (signed URLs expire, vendors delete outputs after
            # a while): the result is gone, and asking again will not bring it back.
            raise UpstreamRejected(
                f"The upstream's result is no longer available (HTTP {response.status_code}).",
                status=response.status_code,
                error={"code": "result_expired", "message": "The upstream's result link expired before it was copied."},
            )
        if response.status_code != 200:
            raise from_status(response.status_code, await response.aread(), response.headers)
        content_type = response.headers.get("content-type", default_type).split(";")[0].strip() or default_type
        yield Download(content_type, _chunks(response))
    finally:
        await response.aclose()


async def _chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_bytes(CHUNK):
            yield chunk
    except httpx.HTTPError as exc:
        raise transport_error(exc) from exc
