"""The OpenAI Images API's shapes: the generation request, the `ImagesResponse`, and our image job
object (`Prefer: respond-async`, GET /v1/images/generations/{id})."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from app.channels.names import is_gpt_image
from app.core.db import to_unix
from app.core.errors import InvalidRequest
from app.jobs.models import Job
from app.jobs.schemas import (
    JobError,
    Metadata,
    ModelName,
    Prompt,
    WebhookEvents,
    WebhookUrl,
    error_of,
    parse_prompt,
    parse_webhook,
)
from storage import ObjectStore
from storage.base import read_all

DEFAULT_MODEL = "dall-e-2"
Size = Literal["auto", "256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024", "1024x1792"]
Quality = Literal["auto", "standard", "hd", "low", "medium", "high"]
PROMPT_LIMITS = {"dall-e-2": 1000, "dall-e-3": 4000}
KNOWN = {
    "model",
    "prompt",
    "n",
    "size",
    "quality",
    "style",
    "response_format",
    "output_format",
    "metadata",
    "webhook_url",
    "webhook_events",
}


class ImageCreateBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """POST /v1/images/generations. Other fields are passed to the provider as they are (`extra`)."""

    prompt: Annotated[Prompt, msgspec.Meta(examples=["A watercolour fox in the snow"])]
    model: Annotated[ModelName, msgspec.Meta(examples=["local-image", "gpt-image-1"])] | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=10)] | None = None
    size: Size | None = None
    quality: Quality | None = None
    style: Literal["vivid", "natural"] | None = None
    response_format: Literal["url", "b64_json"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    metadata: Metadata | None = None
    webhook_url: WebhookUrl | None = None
    webhook_events: WebhookEvents | None = None


@dataclass(slots=True)
class ImageCreate:
    model: str
    prompt: str
    n: int
    size: str | None
    quality: str | None
    style: str | None
    response_format: str
    output_format: str
    metadata: dict[str, str] | None
    webhook_url: str | None
    webhook_events: list[str] | None
    extra: dict[str, Any]

    def params(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "size": self.size,
            "quality": self.quality,
            "style": self.style,
            "response_format": self.response_format,
            "output_format": self.output_format,
            "extra": self.extra,
        }


def image_create(data: ImageCreateBody, body: dict[str, Any]) -> ImageCreate:
    """The typed body (`data`) and the object it came from (`body`, for the vendor's extra fields)."""
    model = data.model or DEFAULT_MODEL
    n = data.n or 1
    if model == "dall-e-3" and n != 1:
        raise InvalidRequest("dall-e-3 makes one image per request: 'n' must be 1.", param="n", code="invalid_value")
    response_format = data.response_format or ("b64_json" if is_gpt_image(model) else "url")
    webhook_url, webhook_events = parse_webhook(data.webhook_url, data.webhook_events, "image")
    return ImageCreate(
        model=model,
        prompt=parse_prompt(data.prompt, PROMPT_LIMITS.get(model, 32_000)),
        n=n,
        size=data.size,
        quality=data.quality,
        style=data.style,
        response_format=response_format,
        output_format=data.output_format or "png",
        metadata=dict(data.metadata) if data.metadata is not None else None,
        webhook_url=webhook_url,
        webhook_events=webhook_events,
        extra={k: v for k, v in body.items() if k not in KNOWN},
    )


def _images(job: Job) -> list[dict[str, Any]]:
    return sorted((a for a in job.assets or [] if a.get("variant") == "image"), key=lambda a: int(a.get("index", 0)))


async def images_response(job: Job, store: ObjectStore, ttl: int, response_format: str | None = None) -> dict[str, Any]:
    """OpenAI's `ImagesResponse` for a completed job: signed links to our copies, or the bytes."""
    params = job.params or {}
    response_format = response_format or params.get("response_format") or "url"
    data = []
    for asset in _images(job):
        item: dict[str, Any] = {}
        if response_format == "b64_json":
            item["b64_json"] = base64.b64encode(await read_all(store, str(asset["key"]))).decode()
        else:
            item["url"] = store.signed_url(str(asset["key"]), ttl)
        if asset.get("revised_prompt"):
            item["revised_prompt"] = asset["revised_prompt"]
        data.append(item)
    response: dict[str, Any] = {"created": to_unix(job.created_at), "data": data}
    if is_gpt_image(job.model):
        response.update(output_format=params.get("output_format", "png"), size=params.get("size"))
        response["quality"] = params.get("quality")
    return response


async def image_job_object(job: Job, store: ObjectStore | None, ttl: int) -> dict[str, Any]:
    """Our image job (an extension): status like a video's, `result` = the ImagesResponse with URLs
    (signed by `store`; without one, `result` stays null)."""
    result = await images_response(job, store, ttl, "url") if job.status == "completed" and store else None
    return {
        "id": job.id,
        "object": "image.generation",
        "model": job.model,
        "status": job.status,
        "progress": job.progress,
        "created_at": to_unix(job.created_at),
        "completed_at": to_unix(job.completed_at),
        "expires_at": to_unix(job.expires_at),
        "prompt": job.prompt,
        "error": error_of(job),
        "result": result,
        "metadata": job.user_metadata or {},
        "webhook_url": job.webhook_url,
    }


class ImageData(msgspec.Struct, kw_only=True):
    url: str | None = None
    """A signed link to our copy (response_format `url`)."""
    b64_json: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(msgspec.Struct, kw_only=True):
    """OpenAI's `ImagesResponse`; GPT image models add output_format, size and quality."""

    created: int | None
    data: list[ImageData]
    output_format: str | None = None
    size: str | None = None
    quality: str | None = None


class ImageGeneration(msgspec.Struct, kw_only=True):
    """Our image job (`Prefer: respond-async`, GET /v1/images/generations/{id}): `result` once completed."""

    id: str
    object: Literal["image.generation"]
    model: str
    status: Literal["queued", "in_progress", "completed", "failed", "cancelled"]
    progress: int
    created_at: int | None
    completed_at: int | None
    expires_at: int | None
    prompt: str | None
    error: JobError | None
    result: ImagesResponse | None
    metadata: dict[str, str]
    webhook_url: str | None
