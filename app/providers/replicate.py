"""Replicate's predictions API (base URL `https://api.replicate.com/v1`), for any model or version:

    POST {base}/models/{owner}/{name}/predictions  {"input": {…}, "webhook", "webhook_events_filter"}
    POST {base}/predictions  {"version": "<version id>", "input": {…}, …}   (upstream model `owner/name:version`)
         → a prediction {"id", "status": "starting" | "processing" | "succeeded" | "failed" | "canceled",
           "output", "error", "logs", "urls"}
    GET  {base}/predictions/{id};  POST {base}/predictions/{id}/cancel

Bearer auth. `output` is a URL or a list of URLs (files on replicate.delivery, deleted after an hour).
The input is the model's own: the gateway sets `prompt` and the fields most image and video models
share (`num_outputs`, `aspect_ratio`, `duration`, `image`), and the client's extra fields go in as they are.
When callbacks are on, Replicate calls back (signed, Standard Webhooks) on completion.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from app.channels.catalog import Route
from app.core.upstream_errors import ProviderError, UpstreamRejected, UpstreamUnavailable
from app.providers.base import Download, MediaRequest, Output, Submission, TaskState, TaskStatus
from app.providers.media_http import call, json_object, same_host, stream_download

STATES = {
    "starting": TaskState.QUEUED,
    "processing": TaskState.RUNNING,
    "succeeded": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
    "canceled": TaskState.CANCELLED,
}
ASPECT = {
    "1024x1024": "1:1", "512x512": "1:1", "256x256": "1:1", "1536x1024": "3:2", "1024x1536": "2:3",
    "1792x1024": "16:9", "1024x1792": "9:16", "1280x720": "16:9", "720x1280": "9:16",
}  # fmt: skip
MODERATION_WORDS = ("nsfw", "safety", "flagged", "moderation", "sensitive")


def _headers(route: Route) -> dict[str, str]:
    return {"authorization": f"Bearer {route.api_key}"} if route.api_key else {}


def model_input(request: MediaRequest) -> dict[str, Any]:
    data: dict[str, Any] = {"prompt": request.prompt}
    if request.size in ASPECT:
        data["aspect_ratio"] = ASPECT[request.size]
    if request.kind == "image":
        if request.n > 1:
            data["num_outputs"] = request.n
        data["output_format"] = request.output_format
    elif request.seconds is not None:
        data["duration"] = request.seconds
    if (image := request.reference_url()) is not None:
        data["image"] = image
    return {**data, **request.extra}


def failure(message: str) -> tuple[str, str]:
    lowered = message.lower()
    code = "content_policy_violation" if any(w in lowered for w in MODERATION_WORDS) else "upstream_failed"
    return code, message


class ReplicateProvider:
    def __init__(self, client: httpx.AsyncClient, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    def min_poll_seconds(self, route: Route) -> float:
        value = route.options.get("min_poll_seconds")
        return float(value) if isinstance(value, int | float) else 1.0

    async def submit(self, route: Route, request: MediaRequest) -> Submission:
        body: dict[str, Any] = {"input": model_input(request)}
        if request.callback_url:
            body["webhook"] = request.callback_url
            body["webhook_events_filter"] = ["completed"]
        name, _, version = request.model.partition(":")
        if version:
            body["version"] = version
            url = f"{route.base_url}/predictions"
        else:
            url = f"{route.base_url}/models/{name}/predictions"
        response = await call(self._client, "POST", url, timeout_s=self._timeout, json=body, headers=_headers(route))
        prediction_id = json_object(response).get("id")
        if not isinstance(prediction_id, str) or not prediction_id:
            raise UpstreamUnavailable("Replicate accepted the prediction but sent no id.")
        return Submission(task_id=prediction_id)

    async def poll(self, route: Route, task_id: str, request: MediaRequest) -> TaskStatus:
        url = f"{route.base_url}/predictions/{task_id}"
        prediction = json_object(await call(self._client, "GET", url, timeout_s=self._timeout, headers=_headers(route)))
        state = STATES.get(str(prediction.get("status")), TaskState.RUNNING)
        status = TaskStatus(state)
        if state is TaskState.SUCCEEDED:
            output = prediction.get("output")
            urls = [output] if isinstance(output, str) else [u for u in output or [] if isinstance(u, str)]
            if not urls:
                raise UpstreamUnavailable("Replicate reported success without any output file.")
            if request.kind == "video":
                status.outputs = [Output("video", url=urls[0], content_type="video/mp4")]
            else:
                status.outputs = [Output("image", index=i, url=u) for i, u in enumerate(urls)]
        elif state is TaskState.FAILED:
            status.error_code, status.error_message = failure(str(prediction.get("error") or "Replicate failed."))
        return status

    @asynccontextmanager
    async def download(
        self, route: Route, task_id: str | None, request: MediaRequest, output: Output
    ) -> AsyncIterator[Download]:
        if not output.url:
            raise UpstreamRejected("Replicate output has no URL.")
        headers = _headers(route) if same_host(output.url, route.base_url) else {}
        default = "video/mp4" if output.variant == "video" else "image/png"
        async with stream_download(
            self._client, output.url, timeout_s=self._timeout, headers=headers, default_type=default
        ) as download:
            yield download

    async def cancel(self, route: Route, task_id: str) -> None:
        try:
            url = f"{route.base_url}/predictions/{task_id}/cancel"
            await call(self._client, "POST", url, timeout_s=self._timeout, headers=_headers(route))
        except ProviderError:
            return None
