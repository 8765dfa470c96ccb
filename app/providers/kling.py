"""Kling's official API (base URL `https://api-singapore.klingai.com`):

    POST {base}/v1/videos/text2video | /v1/videos/image2video | /v1/images/generations
         {"model_name", "prompt", "negative_prompt", "aspect_ratio", "duration", "image", "n", "callback_url"}
         → {"code": 0, "message": "SUCCEED", "data": {"task_id", "task_status": "submitted"}}
    GET  {base}/v1/videos/text2video/{task_id}  (the same path the task was created on)
         → {"code": 0, "data": {"task_status": "submitted" | "processing" | "succeed" | "failed",
            "task_status_msg", "task_result": {"videos": [{"url"}]} | {"images": [{"index", "url"}]}}}

Auth: `Authorization: Bearer <JWT>`, an HS256 token the client signs itself with the access key as
`iss` and the secret key, valid for 30 minutes. The channel's key is `ACCESS_KEY:SECRET_KEY` (or the
secret key alone, with the access key in the channel option `access_key`). Kling's own codes: 1301
content security refusal, 1302/1303 rate and concurrency limits (HTTP 429). The task id carries the
path it was created on (`image2video/<id>`), so the poll asks the right endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec

from app.channels.catalog import Route
from app.core.upstream_errors import UpstreamRejected, UpstreamUnavailable
from app.providers.base import Download, MediaRequest, Output, Submission, TaskState, TaskStatus
from app.providers.media_http import call, json_object, stream_download

STATES = {
    "submitted": TaskState.QUEUED,
    "processing": TaskState.RUNNING,
    "succeed": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
}
PATHS = {"text2video": "videos/text2video", "image2video": "videos/image2video", "image": "images/generations"}
ASPECT = {
    "1280x720": "16:9", "1792x1024": "16:9", "720x1280": "9:16", "1024x1792": "9:16", "1024x1024": "1:1",
    "512x512": "1:1", "256x256": "1:1", "1536x1024": "3:2", "1024x1536": "2:3",
}  # fmt: skip
CONTENT_REFUSAL = 1301
PASSED = ("negative_prompt", "cfg_scale", "mode", "camera_control", "image_tail")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_token(access_key: str, secret_key: str, now: float | None = None) -> str:
    """Kling's JWT: HS256 over {"iss": access key, "exp": now + 30 min, "nbf": now - 5 s}."""
    now = int(time.time() if now is None else now)
    header = _b64url(msgspec.json.encode({"alg": "HS256", "typ": "JWT"}))
    payload = _b64url(msgspec.json.encode({"iss": access_key, "exp": now + 1800, "nbf": now - 5}))
    signature = hmac.new(secret_key.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def _headers(route: Route) -> dict[str, str]:
    key = route.api_key or ""
    access, _, secret = key.partition(":")
    if not secret:
        access, secret = str(route.options.get("access_key") or ""), key
    return {"authorization": f"Bearer {jwt_token(access, secret)}"}


def kling_body(request: MediaRequest) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"model_name": request.model, "prompt": request.prompt}
    if request.size in ASPECT:
        body["aspect_ratio"] = ASPECT[request.size]
    body.update({k: request.extra[k] for k in PASSED if k in request.extra})
    if request.callback_url:
        body["callback_url"] = request.callback_url
    if request.kind == "image":
        body["n"] = request.n
        return "image", body
    if request.seconds is not None:
        body["duration"] = str(request.seconds)
    # Kling takes the image as a URL or as bare base64 (no data-URL prefix).
    if request.reference is not None:
        body["image"] = request.reference.base64()
        return "image2video", body
    if (url := request.reference_url()) is not None:
        body["image"] = url.partition(",")[2] if url.startswith("data:") else url
        return "image2video", body
    return "text2video", body


def _answer(response: httpx.Response) -> dict[str, Any]:
    answer = json_object(response)
    code = answer.get("code")
    if code not in (0, None):
        message = f"Kling refused the task ({code}): {answer.get('message')}"
        error_code = "content_policy_violation" if code == CONTENT_REFUSAL else "upstream_rejected"
        raise UpstreamRejected(message, status=400, error={"code": error_code, "message": message})
    data = answer.get("data")
    if not isinstance(data, dict):
        raise UpstreamUnavailable("Kling answered without task data.")
    return data


class KlingProvider:
    def __init__(self, client: httpx.AsyncClient, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    def min_poll_seconds(self, route: Route) -> float:
        value = route.options.get("min_poll_seconds")
        return float(value) if isinstance(value, int | float) else 3.0

    async def submit(self, route: Route, request: MediaRequest) -> Submission:
        kind, body = kling_body(request)
        url = f"{route.base_url}/v1/{PATHS[kind]}"
        try:
            response = await call(
                self._client, "POST", url, timeout_s=self._timeout, json=body, headers=_headers(route)
            )
        except UpstreamRejected as exc:
            # Kling answers a refused prompt with HTTP 400, code 1301 and a "content security" message.
            if "content security" in exc.message.lower():
                raise UpstreamRejected(
                    exc.message, status=exc.status, error={"code": "content_policy_violation", "message": exc.message}
                ) from exc
            raise
        task_id = _answer(response).get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise UpstreamUnavailable("Kling accepted the task but sent no task_id.")
        return Submission(task_id=f"{kind}/{task_id}")

    async def poll(self, route: Route, task_id: str, request: MediaRequest) -> TaskStatus:
        kind, _, upstream_id = task_id.partition("/")
        url = f"{route.base_url}/v1/{PATHS[kind]}/{upstream_id}"
        data = _answer(await call(self._client, "GET", url, timeout_s=self._timeout, headers=_headers(route)))
        state = STATES.get(str(data.get("task_status")), TaskState.RUNNING)
        status = TaskStatus(state)
        if state is TaskState.FAILED:
            message = str(data.get("task_status_msg") or "Kling failed to generate the result.")
            moderated = any(w in message.lower() for w in ("risk", "security", "sensitive", "policy"))
            status.error_code = "content_policy_violation" if moderated else "upstream_failed"
            status.error_message = message
        elif state is TaskState.SUCCEEDED:
            result = data.get("task_result") or {}
            if kind == "image":
                images = [i for i in result.get("images") or [] if isinstance(i.get("url"), str)]
                status.outputs = [Output("image", index=n, url=i["url"]) for n, i in enumerate(images)]
            else:
                videos = [v for v in result.get("videos") or [] if isinstance(v.get("url"), str)]
                status.outputs = [Output("video", url=videos[0]["url"], content_type="video/mp4")] if videos else []
            if not status.outputs:
                raise UpstreamUnavailable("Kling reported success without any result URL.")
        return status

    @asynccontextmanager
    async def download(
        self, route: Route, task_id: str | None, request: MediaRequest, output: Output
    ) -> AsyncIterator[Download]:
        if not output.url:
            raise UpstreamRejected("Kling output has no URL.")
        default = "video/mp4" if output.variant == "video" else "image/png"
        async with stream_download(self._client, output.url, timeout_s=self._timeout, default_type=default) as dl:
            yield dl

    async def cancel(self, route: Route, task_id: str) -> None:
        return None  # Kling has no cancel: the job stops being polled
