"""Stability AI's Stable Image API (base URL `https://api.stability.ai`), synchronous: one image a call.

    POST {base}/v2beta/stable-image/generate/{sd3|core|ultra}   multipart/form-data:
         prompt, aspect_ratio, output_format, negative_prompt, seed, (sd3:) model
         Authorization: Bearer KEY, Accept: application/json
         → 200 {"image": base64, "finish_reason": "SUCCESS" | "CONTENT_FILTERED", "seed"}

The upstream model picks the endpoint: `sd3.5-large`, `sd3.5-large-turbo`, `sd3.5-medium`, … go to
`sd3` with `model`; `stable-image-core` (or `core`) and `stable-image-ultra` (or `ultra`) to their own.
Errors come as `{"name": "…", "errors": ["…"]}`; a prompt the moderation refuses is a 403 with
`"name": "content_moderation"`. `n` images are `n` calls (the API makes one per request).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from app.channels.catalog import Route
from app.core.upstream_errors import UpstreamRejected, UpstreamUnavailable
from app.providers.base import Download, MediaRequest, Output, Submission, TaskStatus
from app.providers.media_http import call, json_object, stream_download

# OpenAI's image sizes → Stability's aspect ratios.
ASPECT = {
    "256x256": "1:1", "512x512": "1:1", "1024x1024": "1:1", "1536x1024": "3:2", "1024x1536": "2:3",
    "1792x1024": "16:9", "1024x1792": "9:16",
}  # fmt: skip
FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
PASSED = ("negative_prompt", "seed", "style_preset", "aspect_ratio", "cfg_scale")


def endpoint(model: str) -> tuple[str, str | None]:
    """(endpoint, `model` field) for an upstream model name."""
    if model.startswith("sd3"):
        return "sd3", model
    if model.endswith("ultra"):
        return "ultra", None
    return "core", None


def _moderated(exc: UpstreamRejected) -> UpstreamRejected:
    error = exc.error or {}
    if exc.status == 403 or "moderation" in str(error.get("name", "")):
        message = str(error.get("message") or "The prompt was refused by Stability's content moderation.")
        return UpstreamRejected(
            message, status=exc.status, error={"code": "content_policy_violation", "message": message}
        )
    return exc


class StabilityProvider:
    def __init__(self, client: httpx.AsyncClient, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    def min_poll_seconds(self, route: Route) -> float:
        return 0.0

    async def submit(self, route: Route, request: MediaRequest) -> Submission:
        if request.kind != "image":
            raise UpstreamRejected("Stable Image models make images only.", status=400)
        path, model = endpoint(request.model)
        fields: dict[str, Any] = {"prompt": request.prompt, "output_format": request.output_format}
        if model:
            fields["model"] = model
        if request.size in ASPECT:
            fields["aspect_ratio"] = ASPECT[request.size]
        fields.update({k: request.extra[k] for k in PASSED if k in request.extra})
        headers = {"accept": "application/json"}
        if route.api_key:
            headers["authorization"] = f"Bearer {route.api_key}"
        url = f"{route.base_url}/v2beta/stable-image/generate/{path}"
        # multipart/form-data, as the API requires (httpx encodes `files` so, even with no file).
        form = {k: (None, str(v)) for k, v in fields.items()}
        outputs = []
        for index in range(request.n):
            try:
                response = await call(self._client, "POST", url, timeout_s=self._timeout, files=form, headers=headers)
            except UpstreamRejected as exc:
                raise _moderated(exc) from exc
            outputs.append(self._image(json_object(response), index, request.output_format))
        return Submission(task_id=None, outputs=outputs)

    @staticmethod
    def _image(body: dict[str, Any], index: int, output_format: str) -> Output:
        if body.get("finish_reason") == "CONTENT_FILTERED":
            raise UpstreamRejected(
                "The image was filtered by Stability's content moderation.",
                status=400,
                error={"code": "content_policy_violation", "message": "The generated image was filtered."},
            )
        try:
            data = base64.b64decode(str(body.get("image") or ""), validate=True)
        except binascii.Error as exc:
            raise UpstreamUnavailable("Stability sent an image that is not base64.") from exc
        if not data:
            raise UpstreamUnavailable("Stability answered without an image.")
        return Output("image", index=index, data=data, content_type=FORMATS.get(output_format, "image/png"))

    async def poll(self, route: Route, task_id: str, request: MediaRequest) -> TaskStatus:
        raise UpstreamRejected("Stability answers at once; there is nothing to poll.")

    @asynccontextmanager
    async def download(
        self, route: Route, task_id: str | None, request: MediaRequest, output: Output
    ) -> AsyncIterator[Download]:
        # Results come inline (Output.data), so there is never a link to fetch.
        if not output.url:
            raise UpstreamRejected("Stability results come inline.")
        async with stream_download(self._client, output.url, timeout_s=self._timeout, default_type="image/png") as dl:
            yield dl

    async def cancel(self, route: Route, task_id: str) -> None:
        return None
