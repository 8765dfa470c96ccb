"""The public shape of a job (`GET /v1/jobs/{id}`)."""

from __future__ import annotations

from typing import Any

from app.db import to_unix
from app.jobs.models import Job


def job_public(job: Job) -> dict[str, Any]:
    error = {"code": job.error_code, "message": job.error_message} if job.error_code else None
    return {
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
