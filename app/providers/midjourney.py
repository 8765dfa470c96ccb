"""Midjourney through a midjourney-proxy relay (an unofficial upstream: Midjourney has no public API;
the relay drives a Discord account). Base URL: the relay's root; key in the `mj-api-secret` header.

    POST {base}/mj/submit/imagine  {"prompt", "base64Array": [data URL…], "notifyHook"}
         → {"code": 1, "description": "Submit success", "result": "<task id>"}   (21 exists, 22 queued)
    POST {base}/mj/submit/action   {"customId", "taskId", "notifyHook"}  (U1-U4, V1-V4, reroll buttons)
    GET  {base}/mj/task/{id}/fetch → {"status": "NOT_START" | "SUBMITTED" | "IN_PROGRESS" | "SUCCESS" |
         "FAILURE", "progress": "45%", "imageUrl", "failReason", "buttons": [{"customId", "label"}]}

An imagine job's result is Midjourney's 2×2 grid. Follow-ups are image jobs of their own: the client
sends `action` (`upscale`, `variation` or `reroll`), `source_id` (the grid's image job id) and `index`
(1-4) as extra fields; the gateway resolves the grid's task (same account, same channel) and presses
the button whose customId matches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from app.channels.catalog import Route
from app.core.upstream_errors import UpstreamRateLimited, UpstreamRejected, UpstreamUnavailable
from app.providers.base import Download, MediaRequest, Output, Submission, TaskState, TaskStatus
from app.providers.media_http import call, json_object, stream_download

STATES = {
    "NOT_START": TaskState.QUEUED,
    "SUBMITTED": TaskState.QUEUED,
    "MODAL": TaskState.RUNNING,
    "IN_PROGRESS": TaskState.RUNNING,
    "SUCCESS": TaskState.SUCCEEDED,
    "FAILURE": TaskState.FAILED,
    "CANCEL": TaskState.CANCELLED,
}
ACCEPTED = {1, 21, 22}
QUEUE_FULL = 23
BUTTONS = {"upscale": "upsample", "variation": "variation", "reroll": "reroll"}
SOURCE_TASK = "mj_source_task"
"""Extra field the job layer fills in with the source grid's upstream task id (app/jobs/results.py)."""


def _headers(route: Route) -> dict[str, str]:
    return {"mj-api-secret": route.api_key} if route.api_key else {}


def _accepted(answer: dict[str, Any]) -> str:
    code = answer.get("code")
    description = str(answer.get("description") or "midjourney-proxy refused the task.")
    if code == QUEUE_FULL:
        raise UpstreamRateLimited(f"midjourney-proxy: {description}", status=429)
    if code not in ACCEPTED:
        banned = "banned" in description.lower() or "sensitive" in description.lower()
        error_code = "content_policy_violation" if banned else "upstream_rejected"
        raise UpstreamRejected(description, status=400, error={"code": error_code, "message": description})
    task_id = answer.get("result")
    if not isinstance(task_id, str | int) or not str(task_id):
        raise UpstreamUnavailable("midjourney-proxy accepted the task but sent no task id.")
    return str(task_id)


def custom_id(task: dict[str, Any], action: str, index: int) -> str:
    """The customId of the button for `action` on image `index` (reroll has no index)."""
    kind = BUTTONS.get(action)
    if kind is None:
        raise UpstreamRejected(f"Unknown Midjourney action '{action}' (upscale, variation, reroll).", status=400)
    for button in task.get("buttons") or []:
        cid = str(button.get("customId") or "")
        if f"::{kind}::" in cid and (kind == "reroll" or f"::{kind}::{index}::" in cid):
            return cid
    raise UpstreamRejected(f"The source image offers no '{action}' for image {index}.", status=400)


class MidjourneyProvider:
    def __init__(self, client: httpx.AsyncClient, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    def min_poll_seconds(self, route: Route) -> float:
        value = route.options.get("min_poll_seconds")
        return float(value) if isinstance(value, int | float) else 3.0

    async def _post(self, route: Route, path: str, body: dict[str, Any]) -> str:
        url = f"{route.base_url}{path}"
        response = await call(self._client, "POST", url, timeout_s=self._timeout, json=body, headers=_headers(route))
        return _accepted(json_object(response))

    async def _fetch(self, route: Route, task_id: str) -> dict[str, Any]:
        url = f"{route.base_url}/mj/task/{task_id}/fetch"
        return json_object(await call(self._client, "GET", url, timeout_s=self._timeout, headers=_headers(route)))

    async def submit(self, route: Route, request: MediaRequest) -> Submission:
        if request.kind != "image":
            raise UpstreamRejected("Midjourney channels make images only.", status=400)
        hook = {"notifyHook": request.callback_url} if request.callback_url else {}
        source = request.extra.get(SOURCE_TASK)
        if isinstance(source, str):
            action = str(request.extra.get("action") or "upscale")
            index = int(request.extra.get("index") or 1)
            button = custom_id(await self._fetch(route, source), action, index)
            task_id = await self._post(route, "/mj/submit/action", {"customId": button, "taskId": source, **hook})
            return Submission(task_id=task_id)
        body: dict[str, Any] = {"prompt": request.prompt, **hook}
        if (image := request.reference_data_url()) is not None:
            body["base64Array"] = [image]
        return Submission(task_id=await self._post(route, "/mj/submit/imagine", body))

    async def poll(self, route: Route, task_id: str, request: MediaRequest) -> TaskStatus:
        task = await self._fetch(route, task_id)
        state = STATES.get(str(task.get("status")), TaskState.RUNNING)
        progress = str(task.get("progress") or "").rstrip("%")
        status = TaskStatus(state, progress=int(progress) if progress.isdigit() else None)
        if state is TaskState.SUCCEEDED:
            url = task.get("imageUrl")
            if not isinstance(url, str) or not url:
                raise UpstreamUnavailable("midjourney-proxy reported success without an imageUrl.")
            status.outputs = [Output("image", url=url)]
        elif state is TaskState.FAILED:
            reason = str(task.get("failReason") or "Midjourney failed to generate the image.")
            banned = any(w in reason.lower() for w in ("banned", "moderation", "sensitive", "blocked"))
            status.error_code = "content_policy_violation" if banned else "upstream_failed"
            status.error_message = reason
        return status

    @asynccontextmanager
    async def download(
        self, route: Route, task_id: str | None, request: MediaRequest, output: Output
    ) -> AsyncIterator[Download]:
        if not output.url:
            raise UpstreamRejected("Midjourney output has no URL.")
        async with stream_download(self._client, output.url, timeout_s=self._timeout, default_type="image/png") as dl:
            yield dl

    async def cancel(self, route: Route, task_id: str) -> None:
        return None
