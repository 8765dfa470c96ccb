"""Black Forest Labs' Flux API (base URL `https://api.bfl.ai/v1`):

    POST {base}/{model}  (flux-pro-1.1, flux-pro-1.1-ultra, flux-kontext-pro, …)  header `x-key`
         {"prompt", "width", "height", "output_format", …} → {"id", "polling_url"}
    GET  polling_url (with `x-key`) → {"status": "Pending" | "Ready" | "Request Moderated" |
         "Content Moderated" | "Error" | "Task not found", "result": {"sample": URL}, "progress"}
    GET  the sample URL (a signed delivery link, valid about ten minutes: copied at once)

The polling URL is the task id (BFL routes requests to regional clusters and names the one to ask);
it only gets the key when it is on the channel's own domain. One image per request: `n` images are
`n` requests, polled one after the other under one task id list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from app.channels.catalog import Route
from app.core.upstream_errors import UpstreamRejected, UpstreamUnavailable
from app.providers.base import Download, MediaRequest, Output, Submission, TaskState, TaskStatus
from app.providers.media_http import call, json_object, stream_download

MAX_N = 2
MODERATED = {"Request Moderated", "Content Moderated"}
FAILED = {"Error", "Failed", "Task not found"}
PASSED = ("seed", "safety_tolerance", "prompt_upsampling", "aspect_ratio", "raw", "steps", "guidance")


def _headers(route: Route) -> dict[str, str]:
    return {"x-key": route.api_key} if route.api_key else {}


def _domain(host: str) -> str:
    return ".".join(host.split(".")[-2:])


def trusted(url: str, base_url: str | None) -> bool:
    """A polling URL on the channel's own domain (api.bfl.ai → api.us1.bfl.ai): it may get the key."""
    host, base = urlsplit(url).hostname or "", urlsplit(base_url or "").hostname or ""
    return bool(host) and (host == base or (_domain(host) == _domain(base) and not base.replace(".", "").isdigit()))


class BflProvider:
    def __init__(self, client: httpx.AsyncClient, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    def min_poll_seconds(self, route: Route) -> float:
        value = route.options.get("min_poll_seconds")
        return float(value) if isinstance(value, int | float) else 0.5

    async def submit(self, route: Route, request: MediaRequest) -> Submission:
        if request.kind != "image":
            raise UpstreamRejected("Flux models make images only.", status=400)
        if request.n > MAX_N:
            # The task id holds one polling URL per image, in the job's 200-character upstream id.
            raise UpstreamRejected(f"Flux channels make at most {MAX_N} images per request.", status=400)
        body: dict[str, Any] = {"prompt": request.prompt, "output_format": request.output_format}
        if request.output_format not in ("png", "jpeg"):
            body["output_format"] = "png"
        if request.size and "x" in request.size:
            width, height = request.size.split("x")
            body["width"], body["height"] = int(width), int(height)
        body.update({k: request.extra[k] for k in PASSED if k in request.extra})
        if (image := request.reference_data_url()) is not None:
            body["input_image"] = image
        urls = []
        for _ in range(request.n):
            response = await call(
                self._client,
                "POST",
                f"{route.base_url}/{request.model}",
                timeout_s=self._timeout,
                json=body,
                headers=_headers(route),
            )
            answer = json_object(response)
            polling_url = answer.get("polling_url")
            if not isinstance(polling_url, str) or not polling_url.startswith(("http://", "https://")):
                raise UpstreamUnavailable("BFL accepted the request but sent no polling_url.")
            urls.append(polling_url)
        return Submission(task_id=msgspec.json.encode(urls).decode(), poll_after=None)

    async def poll(self, route: Route, task_id: str, request: MediaRequest) -> TaskStatus:
        outputs: list[Output] = []
        progress: list[float] = []
        for index, url in enumerate(msgspec.json.decode(task_id)):
            headers = _headers(route) if trusted(url, route.base_url) else {}
            result = json_object(await call(self._client, "GET", url, timeout_s=self._timeout, headers=headers))
            status = str(result.get("status"))
            if status in MODERATED:
                return TaskStatus(
                    TaskState.FAILED, error_code="content_policy_violation", error_message=f"Flux: {status}."
                )
            if status in FAILED:
                detail = (result.get("details") or {}) if isinstance(result.get("details"), dict) else {}
                message = str(detail.get("message") or f"Flux failed: {status}.")
                return TaskStatus(TaskState.FAILED, error_code="upstream_failed", error_message=message)
            if status != "Ready":
                value = result.get("progress")
                progress.append(float(value) if isinstance(value, int | float) else 0.0)
                continue
            sample = (result.get("result") or {}).get("sample")
            if not isinstance(sample, str):
                raise UpstreamUnavailable("BFL reported Ready without a sample URL.")
            outputs.append(Output("image", index=index, url=sample))
            progress.append(1.0)
        if len(outputs) < len(progress):
            return TaskStatus(TaskState.RUNNING, progress=int(100 * sum(progress) / len(progress)))
        return TaskStatus(TaskState.SUCCEEDED, outputs=outputs)

    @asynccontextmanager
    async def download(
        self, route: Route, task_id: str | None, request: MediaRequest, output: Output
    ) -> AsyncIterator[Download]:
        if not output.url:
            raise UpstreamRejected("Flux output has no URL.")
        # The delivery link is pre-signed: no key.
        async with stream_download(self._client, output.url, timeout_s=self._timeout, default_type="image/jpeg") as dl:
            yield dl

    async def cancel(self, route: Route, task_id: str) -> None:
        return None
