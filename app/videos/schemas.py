"""The OpenAI Videos API's shapes: the create request (JSON or multipart, as the SDK sends it) and
the `Video` object (all 13 keys, plus our additions)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from litestar.datastructures import UploadFile

from app.db import to_unix
from app.errors import InvalidRequest
from app.jobs.models import Job
from app.jobs.schemas import error_of, parse_metadata, parse_prompt, parse_webhook
from app.validation import wrong_type

DEFAULT_MODEL = "sora-2"
SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
DEFAULT_SIZE = "720x1280"
DEFAULT_SECONDS = 4
MAX_SECONDS = 20
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


def form_to_body(form: Any) -> dict[str, Any]:
    """Multipart fields → the JSON body they stand for: `metadata[k]` → metadata.k, `x[]` → a list."""
    body: dict[str, Any] = {}
    for key in form:
        values = form.getall(key)
        if key.endswith("[]"):
            body.setdefault(key[:-2], []).extend(values)
        elif key.startswith("metadata[") and key.endswith("]"):
            body.setdefault("metadata", {})[key[9:-1]] = values[-1]
        else:
            body[key] = values[-1]
    return body


def parse_seconds(value: Any) -> int:
    if value is None:
        return DEFAULT_SECONDS
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).isdigit():
        raise InvalidRequest(f"'seconds' must be a whole number, like \"4\"; got {value!r}.", param="seconds")
    seconds = int(value)
    if not 1 <= seconds <= MAX_SECONDS:
        raise InvalidRequest(f"'seconds' must be between 1 and {MAX_SECONDS}; got {seconds}.", param="seconds")
    return seconds


def _reference(value: Any) -> tuple[dict[str, Any] | None, UploadFile | None]:
    if value is None or isinstance(value, UploadFile):
        return None, value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidRequest(
                "'input_reference' must be a file, or an object with image_url or file_id.", param="input_reference"
            ) from None
    if not isinstance(value, dict) or len({"image_url", "file_id"} & set(value)) != 1:
        raise InvalidRequest("'input_reference' needs exactly one of image_url or file_id.", param="input_reference")
    return {k: value[k] for k in ("image_url", "file_id") if k in value}, None


def parse_video_create(body: dict[str, Any]) -> VideoCreate:
    model = body.get("model") or DEFAULT_MODEL
    if not isinstance(model, str):
        raise wrong_type("model", "a string", model)
    size = body.get("size") or DEFAULT_SIZE
    if size not in SIZES:
        raise InvalidRequest(f"'size' must be one of {', '.join(SIZES)}; got {size!r}.", param="size")
    reference, upload = _reference(body.get("input_reference"))
    webhook_url, webhook_events = parse_webhook(body.get("webhook_url"), body.get("webhook_events"), "video")
    return VideoCreate(
        model=model,
        prompt=parse_prompt(body.get("prompt")),
        seconds=parse_seconds(body.get("seconds")),
        size=size,
        metadata=parse_metadata(body.get("metadata")),
        webhook_url=webhook_url,
        webhook_events=webhook_events,
        input_reference=reference,
        upload=upload,
        extra={k: v for k, v in body.items() if k not in KNOWN and isinstance(v, str | int | float | bool)},
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
