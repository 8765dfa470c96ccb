"""Google Veo through the Gemini API (a `gemini` channel serving video models, e.g. `veo-3.1-generate-preview`):

    POST {base}/models/{model}:predictLongRunning  {"instances": [{"prompt", "image"?}], "parameters": {…}}
         → an Operation {"name": "models/{model}/operations/{id}"}
    GET  {base}/{operation name}  → {"done": true, "response": {"generateVideoResponse": {"generatedSamples":
         [{"video": {"uri"}}]}}}, or {"done": true, "error": {"code", "message"}}
    GET  the sample's uri (with the API key; it redirects to the file)

Every call carries `x-goog-api-key`. A prompt the safety filters stopped ends `done` with no samples and
`raiMediaFilteredReasons`: that is a content-policy refusal, not an upstream failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from app.channels.catalog import Route
from app.core.money import RESOLUTIONS
from app.core.upstream_errors import UpstreamRejected, UpstreamUnavailable
from app.providers.base import Download, MediaRequest, Output, Submission, TaskState, TaskStatus
from app.providers.media_http import call, json_object, same_host, stream_download

# OpenAI's video sizes → Veo's aspect ratio and resolution.
ASPECT = {"1280x720": "16:9", "1792x1024": "16:9", "720x1280": "9:16", "1024x1792": "9:16"}
PARAMETERS = {"negative_prompt": "negativePrompt", "person_generation": "personGeneration", "seed": "seed"}


def _headers(route: Route) -> dict[str, str]:
    return {"x-goog-api-key": route.api_key} if route.api_key else {}


def veo_body(request: MediaRequest) -> dict[str, Any]:
    instance: dict[str, Any] = {"prompt": request.prompt}
    if request.reference is not None:
        reference = request.reference
        instance["image"] = {"bytesBase64Encoded": reference.base64(), "mimeType": reference.content_type}
    elif isinstance(url := (request.input_reference or {}).get("image_url"), str) and url.startswith("data:"):
        header, _, data = url.partition(",")
        instance["image"] = {"bytesBase64Encoded": data, "mimeType": header[5:].split(";")[0]}
    elif (request.input_reference or {}).get("image_url"):
        raise UpstreamRejected("Veo takes the reference image as an upload or a data URL, not a link.", status=400)
    parameters: dict[str, Any] = {}
    if request.size in ASPECT:
        parameters["aspectRatio"] = ASPECT[request.size]
        parameters["resolution"] = RESOLUTIONS[request.size]
    if request.seconds is not None:
        parameters["durationSeconds"] = request.seconds
    for ours, theirs in PARAMETERS.items():
        if ours in request.extra:
            parameters[theirs] = request.extra[ours]
    return {"instances": [instance], "parameters": parameters}


class VeoProvider:
    def __init__(self, client: httpx.AsyncClient, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    def min_poll_seconds(self, route: Route) -> float:
        value = route.options.get("min_poll_seconds")
        return float(value) if isinstance(value, int | float) else 5.0

    async def submit(self, route: Route, request: MediaRequest) -> Submission:
        if request.kind != "video":
            raise UpstreamRejected("Veo models make videos only.", status=400)
        url = f"{route.base_url}/models/{request.model}:predictLongRunning"
        response = await call(
            self._client, "POST", url, timeout_s=self._timeout, json=veo_body(request), headers=_headers(route)
        )
        name = json_object(response).get("name")
        if not isinstance(name, str) or "/operations/" not in name:
            raise UpstreamUnavailable("Veo accepted the video but sent no operation name.")
        return Submission(task_id=name)

    async def poll(self, route: Route, task_id: str, request: MediaRequest) -> TaskStatus:
        url = f"{route.base_url}/{task_id}"
        operation = json_object(await call(self._client, "GET", url, timeout_s=self._timeout, headers=_headers(route)))
        if not operation.get("done"):
            # Veo reports no progress; an operation not done may be queued or generating.
            return TaskStatus(TaskState.RUNNING)
        error = operation.get("error")
        if isinstance(error, dict):
            return TaskStatus(
                TaskState.FAILED,
                error_code=str(error.get("status") or "upstream_failed").lower(),
                error_message=str(error.get("message") or "Veo failed to generate the video."),
            )
        result = (operation.get("response") or {}).get("generateVideoResponse") or {}
        samples = [s.get("video", {}).get("uri") for s in result.get("generatedSamples") or [] if isinstance(s, dict)]
        uris = [u for u in samples if isinstance(u, str)]
        if not uris:
            reasons = result.get("raiMediaFilteredReasons") or ["The video was blocked by the safety filters."]
            return TaskStatus(TaskState.FAILED, error_code="content_policy_violation", error_message=str(reasons[0]))
        return TaskStatus(TaskState.SUCCEEDED, outputs=[Output("video", url=uris[0], content_type="video/mp4")])

    @asynccontextmanager
    async def download(
        self, route: Route, task_id: str | None, request: MediaRequest, output: Output
    ) -> AsyncIterator[Download]:
        if not output.url:
            raise UpstreamRejected("Veo output has no URL.")
        headers = _headers(route) if same_host(output.url, route.base_url) else {}
        async with stream_download(
            self._client, output.url, timeout_s=self._timeout, headers=headers, default_type="video/mp4"
        ) as download:
            yield download

    async def cancel(self, route: Route, task_id: str) -> None:
        # The Gemini API offers no cancel for Veo operations: the job stops being polled.
        return None
