"""OpenAI Images (`POST /images/generations`: DALL·E 2/3, gpt-image-*): synchronous upstream.

The answer holds the results, as `url` (DALL·E, valid ~60 min) or `b64_json` (GPT image models
always); so the submit step returns them at once and the job goes straight to storing.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from app.channels.catalog import Route
from app.channels.names import is_gpt_image
from app.core.upstream_errors import UpstreamRejected, UpstreamUnavailable
from app.providers.base import Download, MediaRequest, Output, Submission, TaskStatus
from app.providers.media_http import call, json_object, stream_download

TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def _headers(route: Route) -> dict[str, str]:
    return {"authorization": f"Bearer {route.api_key}"} if route.api_key else {}


class OpenAIImagesProvider:
    def __init__(self, client: httpx.AsyncClient, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    def body(self, request: MediaRequest) -> dict[str, Any]:
        body: dict[str, Any] = {**request.extra, "model": request.model, "prompt": request.prompt, "n": request.n}
        for name in ("size", "quality", "style"):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        if is_gpt_image(request.model):
            body["output_format"] = request.output_format
        else:
            # Ask DALL·E for bytes too: one download fewer, and no upstream URL that expires meanwhile.
            body["response_format"] = "b64_json"
        return body

    def min_poll_seconds(self, route: Route) -> float:
        return 0.0

    async def submit(self, route: Route, request: MediaRequest) -> Submission:
        response = await call(
            self._client,
            "POST",
            f"{route.base_url}/images/generations",
            timeout_s=self._timeout,
            json=self.body(request),
            headers=_headers(route),
        )
        data = json_object(response).get("data")
        if not isinstance(data, list) or not data:
            raise UpstreamUnavailable("Upstream answered the image request without any image.")
        content_type = TYPES.get(request.output_format, "image/png")
        return Submission(task_id=None, outputs=[_output(i, item, content_type) for i, item in enumerate(data)])

    async def poll(self, route: Route, task_id: str, request: MediaRequest) -> TaskStatus:
        raise UpstreamRejected("OpenAI image generations are synchronous; there is nothing to poll.")

    @asynccontextmanager
    async def download(
        self, route: Route, task_id: str | None, request: MediaRequest, output: Output
    ) -> AsyncIterator[Download]:
        if not output.url:
            raise UpstreamRejected("The upstream image has neither bytes nor a URL.")
        default = output.content_type or "image/png"
        # The URL is the upstream's signed CDN link: no Authorization header goes with it.
        async with stream_download(self._client, output.url, timeout_s=self._timeout, default_type=default) as download:
            yield download

    async def cancel(self, route: Route, task_id: str) -> None:
        return None


def _output(index: int, item: Any, content_type: str) -> Output:
    if not isinstance(item, dict):
        raise UpstreamUnavailable("Upstream image entry is not an object.")
    revised = item.get("revised_prompt") if isinstance(item.get("revised_prompt"), str) else None
    if isinstance(item.get("b64_json"), str):
        try:
            data = base64.b64decode(item["b64_json"], validate=True)
        except binascii.Error as exc:
            raise UpstreamUnavailable("Upstream sent an image that is not valid base64.") from exc
        return Output("image", index=index, data=data, content_type=content_type, revised_prompt=revised)
    if isinstance(item.get("url"), str):
        return Output("image", index=index, url=item["url"], content_type=content_type, revised_prompt=revised)
    raise UpstreamUnavailable("Upstream image entry has neither b64_json nor url.")
