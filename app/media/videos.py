"""The OpenAI Videos API's shapes: the create request (JSON or multipart, as the SDK sends it) and
the `Video` object (all 13 keys, plus our additions)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
from litestar.datastructures import UploadFile

from app.channels.catalog import Catalog
from app.channels.models import ProviderType
from app.core.db import to_unix
from app.core.edge import NO_NUL
from app.core.errors import InvalidRequest, NotFound
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

DEFAULT_MODEL = "sora-2"
DEFAULT_SIZE = "720x1280"
DEFAULT_SECONDS = 4
MAX_SECONDS = 20
Seconds = Annotated[int, msgspec.Meta(ge=1, le=MAX_SECONDS)]
SecondsText = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,2}$")]
"""OpenAI sends seconds as a string ("4", "8", "12"); a number is taken too."""
VideoSize = Literal["720x1280", "1280x720", "1024x1792", "1792x1024"]
Variant = Literal["video", "thumbnail", "spritesheet"]
VideoStatus = Literal["queued", "in_progress", "completed", "failed", "cancelled"]
VIDEO_PROVIDERS = {ProviderType.RUNWAY, ProviderType.KLING}
VIDEO_NAMES = re.compile(r"veo|sora|video|kling|gen-?[34]|hailuo|seedance|luma|ray-|wan-?2|hunyuan", re.IGNORECASE)
KNOWN = {"model", "prompt", "seconds", "size", "input_reference", "metadata", "webhook_url", "webhook_events"}


@dataclass(slots=True)
class VideoCreate:
    model: str
    prompt: str
    seconds: int
    size: str
    metadata: dict[str, str] | None
    webhook_url: str | None
    webhook_events: list[str] | None
    input_reference: dict[str, Any] | None = None
    upload: UploadFile | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"seconds": self.seconds, "size": self.size, "extra": self.extra}
        if self.input_reference is not None:
            params["input_reference"] = self.input_reference
        return params


class InputReference(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An image to start from, by URL or by an uploaded file's id (exactly one)."""

    image_url: Annotated[str, msgspec.Meta(max_length=20_000, pattern=NO_NUL)] | None = None
    file_id: Annotated[str, msgspec.Meta(max_length=200, pattern=NO_NUL)] | None = None


class VideoCreateBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """POST /v1/videos (JSON, or multipart with `input_reference` as a file). Other scalar fields are
    passed to the provider as they are (`extra`)."""

    prompt: Annotated[Prompt, msgspec.Meta(examples=["A paper boat on a rainy street"])]
    model: Annotated[ModelName, msgspec.Meta(examples=["local-video", "sora-2"])] | None = None
    seconds: Seconds | SecondsText | None = None
    size: VideoSize | None = None
    input_reference: InputReference | None = None
    metadata: Metadata | None = None
    webhook_url: WebhookUrl | None = None
    webhook_events: WebhookEvents | None = None


def parse_seconds(value: int | str | None) -> int:
    if value is None:
        return DEFAULT_SECONDS
    seconds = int(value)
    if not 1 <= seconds <= MAX_SECONDS:
        raise InvalidRequest(
            f"'seconds' must be between 1 and {MAX_SECONDS}; got {seconds}.", param="seconds", code="invalid_value"
        )
    return seconds


def video_create(data: VideoCreateBody, body: dict[str, Any], upload: UploadFile | None) -> VideoCreate:
    """The typed body (`data`), the object it came from (`body`: the vendor's extra fields) and the
    multipart file, if one was sent."""
    reference = data.input_reference
    if reference is not None and (reference.image_url is None) == (reference.file_id is None):
        raise InvalidRequest(
            "'input_reference' needs exactly one of image_url or file_id.",
            param="input_reference",
            code="invalid_value",
        )
    webhook_url, webhook_events = parse_webhook(data.webhook_url, data.webhook_events, "video")
    return VideoCreate(
        model=data.model or DEFAULT_MODEL,
        prompt=parse_prompt(data.prompt),
        seconds=parse_seconds(data.seconds),
        size=data.size or DEFAULT_SIZE,
        metadata=dict(data.metadata) if data.metadata is not None else None,
        webhook_url=webhook_url,
        webhook_events=webhook_events,
        input_reference=msgspec.to_builtins(reference) if reference is not None else None,
        upload=upload,
        extra={k: v for k, v in body.items() if k not in KNOWN and isinstance(v, str | int | float | bool)},
    )


def video_models(catalog: Catalog) -> list[str]:
    """The models of the catalog that make videos, as far as their names and providers tell."""
    return sorted(
        model
        for model, routes in catalog.routes.items()
        if any(r.provider in VIDEO_PROVIDERS or VIDEO_NAMES.search(f"{model} {r.upstream_model}") for r in routes)
    )


def check_not_retired(catalog: Catalog, model: str) -> None:
    """A Sora model no channel serves: 404 naming OpenAI's retirement of the Videos API and what serves
    video here instead (a channel that still serves a Sora model, e.g. a compatible upstream, is used)."""
    if model in catalog.routes or not model.lower().startswith("sora"):
        return
    served = video_models(catalog)
    alternatives = f" Models that serve video here: {', '.join(served)}." if served else ""
    raise NotFound(
        f"The model '{model}' is retired: OpenAI shut down the Videos API and the Sora 2 models on "
        f"2026-09-24, and no channel of this gateway serves it.{alternatives}",
        param="model",
        code="model_retired",
    )


def video_object(job: Job, *, with_task_id: bool = False) -> dict[str, Any]:
    """OpenAI's `Video` (every key present, nullable ones as null) plus metadata and webhook_url."""
    params = job.params or {}
    video: dict[str, Any] = {
        "id": job.id,
        "object": "video",
        "model": job.model,
        "status": job.status,
        "progress": job.progress,
        "created_at": to_unix(job.created_at),
        "completed_at": to_unix(job.completed_at),
        "expires_at": to_unix(job.expires_at),
        "prompt": job.prompt,
        "size": params.get("size", DEFAULT_SIZE),
        "seconds": str(params.get("seconds", DEFAULT_SECONDS)),
        "remixed_from_video_id": None,
        "error": error_of(job),
        "metadata": job.user_metadata or {},
        "webhook_url": job.webhook_url,
    }
    if job.webhook_events is not None:
        video["webhook_events"] = job.webhook_events
    if with_task_id:
        video["task_id"] = job.id
    return video


class VideoObject(msgspec.Struct, kw_only=True):
    """OpenAI's `Video`, plus metadata, webhook_url, webhook_events (when set) and, on
    POST /v1/videos/generations, `task_id`."""

    id: str
    object: Literal["video"]
    model: str
    status: VideoStatus
    progress: int
    created_at: int | None
    completed_at: int | None
    expires_at: int | None
    prompt: str | None
    size: str
    seconds: str
    remixed_from_video_id: str | None
    error: JobError | None
    metadata: dict[str, str]
    webhook_url: str | None
    webhook_events: list[str] | None = None
    task_id: str | None = None


class VideoList(msgspec.Struct, kw_only=True):
    object: Literal["list"]
    data: list[VideoObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class VideoDeleted(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["video.deleted"]
    deleted: bool
