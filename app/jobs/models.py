"""The one `jobs` table: every request (chat, embedding, image, video) is a row here."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import BigInteger, Index
from sqlmodel import Field, SQLModel

from app.db import JSONType, UTCDateTime, utcnow


class JobKind(enum.StrEnum):
    CHAT = "chat"
    EMBEDDING = "embedding"
    IMAGE = "image"
    VIDEO = "video"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})

ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.IN_PROGRESS, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.IN_PROGRESS: frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_account_created", "account_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=20)
    status: str = Field(max_length=20)
    account_id: str = Field(foreign_key="accounts.id", max_length=40, ondelete="CASCADE")
    api_key_id: str | None = Field(default=None, max_length=40)
    model: str = Field(max_length=200)
    channel_id: str | None = Field(default=None, max_length=40)
    stream: bool = Field(default=False)
    usage: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    latency_ms: int | None = Field(default=None)
    ttft_ms: int | None = Field(default=None)
    """Time to first token (streams)."""
    http_status: int | None = Field(default=None)
    error_code: str | None = Field(default=None, max_length=100)
    error_message: str | None = Field(default=None)
    attempts_log: list[dict[str, Any]] | None = Field(default=None, sa_type=JSONType)
    """Upstream attempts in order: channel, outcome, status, latency."""
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    completed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    prompt_tokens: int | None = Field(default=None)
    completion_tokens: int | None = Field(default=None)
    hold_amount: int | None = Field(default=None, sa_type=BigInteger)
    """Micro-dollars held before the upstream call."""
    cost: int | None = Field(default=None, sa_type=BigInteger)
    """Micro-dollars captured (the price of what the upstream produced)."""
    billing_state: str | None = Field(default=None, max_length=20)
    """held → captured | released (compare-and-set; async jobs only move once)."""
