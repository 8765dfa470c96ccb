"""OpenAI Videos (Sora): `POST /videos` → a Video object, `GET /videos/{id}` until `completed` or
`failed`, then `GET /videos/{id}/content?variant=video|thumbnail` for the files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from app.channels.catalog import Route
from app.core.upstream_errors import UpstreamUnavailable
from app.providers.base import Download, MediaRequest, Output, Submission, TaskState, TaskStatus
from app.providers.media_http import call, json_object, stream_download

STATES = {
    "queued": TaskState.QUEUED,
    "in_progress": TaskState.RUNNING,
    "completed": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
    "cancelled": TaskState.CANCELLED,
}
DEFAULT_TYPES = {"video": "video/mp4", "thumbnail": "image/webp"}


def _headers(route: Route) -> dict[str, str]:
    return {"authorization": f"Bearer {route.api_key}"} if route.api_key else {}


class OpenAIVideosProvider:
    def __init__(self, client: httpx.AsyncClient, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    def min_poll_seconds(self, route: Route) -> float:
        return 1.0

    async def submit(self, route: Route, request: MediaRequest) -> Submission:
        body: dict[str, Any] = {**request.extra, "model": request.model, "prompt": request.prompt}
        if request.seconds is not None:
            body["seconds"] = str(request.seconds)
        if request.size:
            body["size"] = request.size
        url = f"{route.base_url}/videos"
        if request.reference is not None:
            # An uploaded file goes on as the Videos API takes it: multipart, the file as `input_reference`.
            extension = request.reference.content_type.rpartition("/")[2]
            upload = {
                "input_reference": (
                    f"input_reference.{extension}",
                    request.reference.data,
                    request.reference.content_type,
                )
            }
            fields = {k: str(v) for k, v in body.items()}
            response = await call(
                self._client, "POST", url, timeout_s=self._timeout, data=fields, files=upload, headers=_headers(route)
            )
        else:
            if request.input_reference:
                body["input_reference"] = request.input_reference
            response = await call(
                self._client, "POST", url, timeout_s=self._timeout, json=body, headers=_headers(route)
            )
        video_id = json_object(response).get("id")
        if not isinstance(video_id, str) or not video_id:
            raise UpstreamUnavailable("Upstream accepted the video but sent no id.")
        return Submission(task_id=video_id)

    async def poll(self, route: Route, task_id: str, request: MediaRequest) -> TaskStatus:
        response = await call(
            self._client, "GET", f"{route.base_url}/videos/{task_id}", timeout_s=self._timeout, headers=_headers(route)
        )
        video = json_object(response)
        state = STATES.get(str(video.get("status")))
        if state is None:
            # An unknown status is not a failure: keep polling until the deadline decides.
            return TaskStatus(TaskState.RUNNING)
        progress = video.get("progress")
        status = TaskStatus(state, progress=int(progress) if isinstance(progress, int | float) else None)
        if state is TaskState.SUCCEEDED:
            status.outputs = [Output("video", content_type="video/mp4"), Output("thumbnail", content_type="image/webp")]
        elif state is TaskState.FAILED:
            error = video.get("error")
            error = error if isinstance(error, dict) else {}
            status.error_code = str(error.get("code") or "upstream_failed")
            status.error_message = str(error.get("message") or "The upstream failed to generate the video.")
        return status

    @asynccontextmanager
    async def download(
        self, route: Route, task_id: str | None, request: MediaRequest, output: Output
    ) -> AsyncIterator[Download]:
        url = f"{route.base_url}/videos/{task_id}/content?variant={output.variant}"
        async with stream_download(
            self._client,
            url,
            timeout_s=self._timeout,
            headers=_headers(route),
            default_type=DEFAULT_TYPES.get(output.variant, "application/octet-stream"),
        ) as download:
            yield download

    async def cancel(self, route: Route, task_id: str) -> None:
        # Sora has no cancel: the job is marked cancelled locally and simply no longer polled.
        return None
