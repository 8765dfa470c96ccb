"""fal's queue API (base URL `https://queue.fal.run`), for any fal model id (`fal-ai/flux/dev`,
`fal-ai/kling-video/v2/master/text-to-video`, …):

    POST {base}/{model id}[?fal_webhook=URL]  the model's input  → {"request_id", "status_url", "response_url"}
    GET  {base}/{app}/requests/{id}/status  → {"status": "IN_QUEUE" | "IN_PROGRESS" | "COMPLETED", "queue_position"}
    GET  {base}/{app}/requests/{id}         → the model's output ({"images": [{"url"}]} or {"video": {"url"}})
    PUT  {base}/{app}/requests/{id}/cancel

`{app}` is the model id's first two segments (`fal-ai/flux`). Auth: `Authorization: Key KEY`. A request
that failed answers the result GET with an error (422 with `detail` for invalid input or a content
policy refusal). When callbacks are on, fal calls back (signed with ED25519) on completion.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx

from app.channels.catalog import Route
from app.core.upstream_errors import UpstreamRejected, UpstreamUnavailable
from app.providers.base import Download, MediaRequest, Output, Submission, TaskState, TaskStatus
from app.providers.media_http import call, json_object, stream_download

STATES = {"IN_QUEUE": TaskState.QUEUED, "IN_PROGRESS": TaskState.RUNNING, "COMPLETED": TaskState.SUCCEEDED}
ASPECT = {"1280x720": "16:9", "1792x1024": "16:9", "720x1280": "9:16", "1024x1792": "9:16"}


def _headers(route: Route) -> dict[str, str]:
    return {"authorization": f"Key {route.api_key}"} if route.api_key else {}


def app_id(model: str) -> str:
    return "/".join(model.split("/")[:2])


def model_input(request: MediaRequest) -> dict[str, Any]:
    data: dict[str, Any] = {"prompt": request.prompt}
    if request.kind == "image":
        data["num_images"] = request.n
        data["output_format"] = "jpeg" if request.output_format == "jpeg" else "png"
        if request.size and "x" in request.size:
            width, height = request.size.split("x")
            data["image_size"] = {"width": int(width), "height": int(height)}
    else:
        if request.seconds is not None:
            data["duration"] = str(request.seconds)
        if request.size in ASPECT:
            data["aspect_ratio"] = ASPECT[request.size]
    if (image := request.reference_url()) is not None:
        data["image_url"] = image
    return {**data, **request.extra}


def outputs_of(result: dict[str, Any], kind: str) -> list[Output]:
    if kind == "video":
        video = result.get("video")
        url = video.get("url") if isinstance(video, dict) else None
        return [Output("video", url=url, content_type="video/mp4")] if isinstance(url, str) else []
    images = [i for i in result.get("images") or [] if isinstance(i, dict) and isinstance(i.get("url"), str)]
    return [Output("image", index=n, url=i["url"], content_type=i.get("content_type")) for n, i in enumerate(images)]


def _refusal(exc: UpstreamRejected) -> TaskStatus:
    text = str(exc.message)
    code = "content_policy_violation" if "content_policy" in text or "nsfw" in text.lower() else "upstream_failed"
    return TaskStatus(TaskState.FAILED, error_code=code, error_message=text)


class FalProvider:
    def __init__(self, client: httpx.AsyncClient, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    def min_poll_seconds(self, route: Route) -> float:
        value = route.options.get("min_poll_seconds")
        return float(value) if isinstance(value, int | float) else 1.0

    async def submit(self, route: Route, request: MediaRequest) -> Submission:
        url = f"{route.base_url}/{request.model}"
        if request.callback_url:
            url += f"?fal_webhook={quote(request.callback_url, safe='')}"
        response = await call(
            self._client, "POST", url, timeout_s=self._timeout, json=model_input(request), headers=_headers(route)
        )
        request_id = json_object(response).get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise UpstreamUnavailable("fal accepted the request but sent no request_id.")
        return Submission(task_id=request_id)

    async def poll(self, route: Route, task_id: str, request: MediaRequest) -> TaskStatus:
        base = f"{route.base_url}/{app_id(request.model)}/requests/{task_id}"
        status = json_object(
            await call(self._client, "GET", f"{base}/status", timeout_s=self._timeout, headers=_headers(route))
        )
        state = STATES.get(str(status.get("status")), TaskState.RUNNING)
        if state is not TaskState.SUCCEEDED:
            return TaskStatus(state)
        try:
            response = await call(self._client, "GET", base, timeout_s=self._timeout, headers=_headers(route))
        except UpstreamRejected as exc:
            return _refusal(exc)
        result = json_object(response)
        if any(result.get("has_nsfw_concepts") or []):
            return TaskStatus(
                TaskState.FAILED, error_code="content_policy_violation", error_message="fal flagged the result as NSFW."
            )
        outputs = outputs_of(result, request.kind)
        if not outputs:
            raise UpstreamUnavailable("fal completed the request without any output file.")
        return TaskStatus(TaskState.SUCCEEDED, outputs=outputs)

    @asynccontextmanager
    async def download(
        self, route: Route, task_id: str | None, request: MediaRequest, output: Output
    ) -> AsyncIterator[Download]:
        if not output.url:
            raise UpstreamRejected("fal output has no URL.")
        default = output.content_type or ("video/mp4" if output.variant == "video" else "image/png")
        async with stream_download(self._client, output.url, timeout_s=self._timeout, default_type=default) as dl:
            yield dl

    async def cancel(self, route: Route, task_id: str) -> None:
        return None  # needs the model id, which the cancel step does not have; the job stops being polled
