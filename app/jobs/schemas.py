"""Public shapes of jobs, and the request fields every media job shares (metadata, webhooks)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from app.billing.schemas import LedgerEntryObject
from app.core.db import to_unix
from app.core.edge import NO_NUL
from app.core.errors import InvalidRequest
from app.core.validation import wrong_type
from app.jobs.events import parse_events
from app.jobs.models import Job

MAX_PROMPT = 32_000

Prompt = Annotated[str, msgspec.Meta(max_length=MAX_PROMPT, pattern=NO_NUL)]
ModelName = Annotated[str, msgspec.Meta(max_length=200, pattern=NO_NUL)]
"""A model name in a job request; empty means the endpoint's default model."""
MetadataKey = Annotated[str, msgspec.Meta(max_length=64, pattern=NO_NUL)]
MetadataValue = Annotated[str, msgspec.Meta(max_length=512, pattern=NO_NUL)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], msgspec.Meta(max_length=16)]
"""OpenAI `Metadata`: at most 16 pairs, keys ≤ 64 characters, values ≤ 512, strings only."""
WebhookUrl = Annotated[str, msgspec.Meta(max_length=2000, pattern=NO_NUL)]
"""Whether it is a usable https:// URL is `parse_webhook`'s call (code `invalid_webhook_url`)."""
EventName = Annotated[str, msgspec.Meta(max_length=64, pattern=NO_NUL)]
WebhookEvents = list[EventName] | EventName
"""Event types (`video.completed`, …); a single string is a list of one. Checked by `parse_events`."""


def job_public(job: Job) -> dict[str, Any]:
    """GET /v1/jobs/{id}: any kind of job, in one shape."""
    error = {"code": job.error_code, "message": job.error_message} if job.error_code else None
    public: dict[str, Any] = {
        "id": job.id,
        "object": "job",
        "kind": job.kind,
        "model": job.model,
        "status": job.status,
        "stream": job.stream,
        "channel_id": job.channel_id,
        "usage": job.usage,
        "latency_ms": job.latency_ms,
        "ttft_ms": job.ttft_ms,
        "http_status": job.http_status,
        "error": error,
        "attempts": job.attempts_log or [],
        "created_at": to_unix(job.created_at),
        "completed_at": to_unix(job.completed_at),
    }
    if job.cache_status is not None:
        public["cache"] = {"status": job.cache_status, "saved": job.cache_saved, "unit": "usd_micros"}
    if job.stage is not None:
        public.update(
            progress=job.progress,
            expires_at=to_unix(job.expires_at),
            metadata=job.user_metadata or {},
            webhook_url=job.webhook_url,
        )
    return public


def error_of(job: Job) -> dict[str, str] | None:
    if not job.error_code:
        return None
    return {"code": job.error_code, "message": job.error_message or ""}


def parse_prompt(value: Any, limit: int = MAX_PROMPT) -> str:
    if value is None:
        raise InvalidRequest("Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter")
    if not isinstance(value, str):
        raise wrong_type("prompt", "a string", value)
    if not value.strip():
        raise InvalidRequest("'prompt' must not be empty.", param="prompt", code="invalid_value")
    if len(value) > limit:
        raise InvalidRequest(
            f"'prompt' is too long: {len(value)} characters, at most {limit}.",
            param="prompt",
            code="string_above_max_length",
        )
    return value


def parse_webhook(url: Any, events: Any, kind: str) -> tuple[str | None, list[str] | None]:
    """`webhook_url` must look like a URL here; whether it may be called (the SSRF guard, which
    resolves it) is checked by the route. `webhook_events` narrows what that URL is sent."""
    if url is not None:
        if not isinstance(url, str):
            raise wrong_type("webhook_url", "a string", url)
        if not url.startswith(("https://", "http://")) or len(url) > 2000 or " " in url:
            raise InvalidRequest(
                "'webhook_url' must be an https:// URL of at most 2000 characters.",
                param="webhook_url",
                code="invalid_webhook_url",
            )
    return url, parse_events(events, "webhook_events", kind)


class JobError(msgspec.Struct, kw_only=True):
    code: str
    message: str | None


class JobBilling(msgspec.Struct, kw_only=True):
    state: str | None
    hold: int | None
    captured: int | None
    unit: Literal["usd_micros"]
    ledger: list[LedgerEntryObject]


class JobObject(msgspec.Struct, kw_only=True):
    """GET /v1/jobs/{id}: any request of the account (chat, embedding, image, video) in one shape; the
    last four fields are present for media jobs only."""

    id: str
    object: Literal["job"]
    kind: str
    model: str
    status: str
    stream: bool
    channel_id: str | None
    usage: dict[str, Any] | None
    latency_ms: int | None
    ttft_ms: int | None
    http_status: int | None
    error: JobError | None
    attempts: list[dict[str, Any]]
    created_at: int | None
    completed_at: int | None
    billing: JobBilling
    progress: int | None = None
    expires_at: int | None = None
    metadata: dict[str, str] | None = None
    webhook_url: str | None = None
