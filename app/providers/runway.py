"""Runway (a task-style video vendor): `POST /text_to_video` (or `/image_to_video`) → `{"id"}`,
`GET /tasks/{id}` until SUCCEEDED (result URLs in `output`) or FAILED (`failure`, `failureCode`),
`DELETE /tasks/{id}` to cancel. Every call carries `X-Runway-Version`. Runway asks clients not to poll
more often than every 5 s; a channel may lower it with the option `min_poll_seconds` (tests do).

The channel's base URL includes the version path, e.g. `https://api.dev.runwayml.com/v1`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from app.channels.catalog import Route
from app.core.upstream_errors import ProviderError, UpstreamRejected, UpstreamUnavailable
from app.providers.base import Download, MediaRequest, Output, Submission, TaskState, TaskStatus
from app.providers.media_http import call, json_object, stream_download

API_VERSION = "2024-11-06"
STATES = {
    "PENDING": TaskState.QUEUED,
    "THROTTLED": TaskState.QUEUED,
    "RUNNING": TaskState.RUNNING,
    "SUCCEEDED": TaskState.SUCCEEDED,
    "FAILED": TaskState.FAILED,
    "CANCELLED": TaskState.CANCELLED,
}


def _headers(route: Route) -> dict[str, str]:
    headers = {"x-runway-version": str(route.options.get("runway_version", API_VERSION))}
    if route.api_key:
        headers["authorization"] = f"Bearer {route.api_key}"
    return headers


class RunwayProvider:
    def __init__(self, client: httpx.AsyncClient, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    def min_poll_seconds(self, route: Route) -> float:
        value = route.options.get("min_poll_seconds")
        return float(value) if isinstance(value, int | float) else 5.0

    async def submit(self, route: Route, request: MediaRequest) -> Submission:
        if request.kind != "video":
            raise UpstreamRejected("This Runway channel serves videos only.", status=400)
        body: dict[str, Any] = {**request.extra, "model": request.model, "promptText": request.prompt}
        if request.size:
            body["ratio"] = request.size.replace("x", ":")
        if request.seconds is not None:
            body["duration"] = request.seconds
        path = "/text_to_video"
        # Runway takes the image as an HTTPS URL or a data URI (an upload goes inline).
        image = request.reference_data_url()
        if image is not None:
            body["promptImage"] = image
            path = "/image_to_video"
        response = await call(
            self._client, "POST", f"{route.base_url}{path}", timeout_s=self._timeout, json=body, headers=_headers(route)
        )
        task_id = json_object(response).get("id")
        if not isinstance(task_id, str) or not task_id:
            raise UpstreamUnavailable("Runway accepted the task but sent no id.")
        return Submission(task_id=task_id)

    async def poll(self, route: Route, task_id: str, request: MediaRequest) -> TaskStatus:
        response = await call(
            self._client, "GET", f"{route.base_url}/tasks/{task_id}", timeout_s=self._timeout, headers=_headers(route)
        )
        task = json_object(response)
        state = STATES.get(str(task.get("status")), TaskState.RUNNING)
        progress = task.get("progress")
        status = TaskStatus(state, progress=int(progress * 100) if isinstance(progress, int | float) else None)
        if state is TaskState.SUCCEEDED:
            urls = [u for u in task.get("output") or [] if isinstance(u, str)]
            if not urls:
                raise UpstreamUnavailable("Runway reported success without any output URL.")
            status.outputs = [Output("video", url=urls[0], content_type="video/mp4")]
        elif state is TaskState.FAILED:
            status.error_code = str(task.get("failureCode") or "upstream_failed")
            status.error_message = str(task.get("failure") or "Runway failed to generate the video.")
        return status

    @asynccontextmanager
    async def download(
        self, route: Route, task_id: str | None, request: MediaRequest, output: Output
    ) -> AsyncIterator[Download]:
        if not output.url:
            raise UpstreamRejected("Runway output has no URL.")
        async with stream_download(self._client, output.url, timeout_s=self._timeout, default_type="video/mp4") as dl:
            yield dl

    async def cancel(self, route: Route, task_id: str) -> None:
        # DELETE cancels a task that is still pending or running (it would delete a finished one,
        # which is why it is only ever sent for a job we cancel before completion).
        try:
            url = f"{route.base_url}/tasks/{task_id}"
            await call(self._client, "DELETE", url, timeout_s=self._timeout, headers=_headers(route))
        except ProviderError:
            return None
