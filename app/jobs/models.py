"""The one `jobs` table: every request (chat, embedding, image, video) is a row here.

Chat and embedding rows are written once, finished (app/jobs/recorder.py). Image and video rows live
through the stage machine below; every stage change goes through `app.jobs.service.transition`, a
compare-and-set on `version`, so two workers can never both complete (or bill, or notify) a job.

    queued ──► submitted ──► running ──► storing ──► completed        public status: queued
      │  └──────────┴───────────┴──►storing             │             submitted/running/storing:
      └──────────┴───────────┴───────────┴──► failed | cancelled      in_progress
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import BigInteger, Index, text
from sqlmodel import Field, SQLModel

from app.core.db import JSONType, UTCDateTime, utcnow


class JobKind(enum.StrEnum):
    CHAT = "chat"
    EMBEDDING = "embedding"
    IMAGE = "image"
    VIDEO = "video"
    REALTIME = "realtime"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class Stage(enum.StrEnum):
    """Where a media job is; the public status is derived from it (`STATUS_OF`)."""

    QUEUED = "queued"
    """Created; not yet accepted by the upstream."""
    SUBMITTED = "submitted"
    """The upstream accepted it and gave a task id; it may still sit in the upstream's queue."""
    RUNNING = "running"
    """The upstream is generating."""
    STORING = "storing"
    """The upstream finished; the result is being copied into our storage."""
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


STATUS_OF: dict[Stage, JobStatus] = {
    Stage.QUEUED: JobStatus.QUEUED,
    Stage.SUBMITTED: JobStatus.IN_PROGRESS,
    Stage.RUNNING: JobStatus.IN_PROGRESS,
    Stage.STORING: JobStatus.IN_PROGRESS,
    Stage.COMPLETED: JobStatus.COMPLETED,
    Stage.FAILED: JobStatus.FAILED,
    Stage.CANCELLED: JobStatus.CANCELLED,
}

_ENDS = frozenset({Stage.FAILED, Stage.CANCELLED})
STAGE_TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    # QUEUED → STORING: upstreams that answer the submit with the result itself (OpenAI images).
    Stage.QUEUED: frozenset({Stage.SUBMITTED, Stage.STORING}) | _ENDS,
    Stage.SUBMITTED: frozenset({Stage.RUNNING, Stage.STORING}) | _ENDS,
    Stage.RUNNING: frozenset({Stage.STORING}) | _ENDS,
    Stage.STORING: frozenset({Stage.COMPLETED}) | _ENDS,
    Stage.COMPLETED: frozenset(),
    Stage.FAILED: frozenset(),
    Stage.CANCELLED: frozenset(),
}
TERMINAL_STAGES = frozenset({Stage.COMPLETED, Stage.FAILED, Stage.CANCELLED})


LOG_ROW = text("stage IS NULL")
"""A job-log row (chat, embedding): written once, finished, by the job recorder; pruned after the retention window."""
MEDIA_ROW = text("stage IS NOT NULL")
"""A media job (image, video): lives through the stages; a query of media rows says so, for the partial indexes."""


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    # Chat and embedding rows (the job log, `stage` NULL) are most rows by far and are written once:
    # they keep one index besides the key (retention's, by age). The media jobs' indexes are partial,
    # so a job-log row costs nothing to maintain in them however many there are (issue #23):
    # ix_jobs_log_created WHERE LOG_ROW, the three ix_jobs_media_* WHERE MEDIA_ROW. The WHERE of each
    # is in migration 0016, which makes the schema on both databases, and not here: a `sqlite_where`
    # or `postgresql_where` makes SQLAlchemy import that dialect's package when the class is defined,
    # in every process on the other database (SQLite's is 0.5 MB; Alembic's comparison of the models
    # with the migrated schema does not read an index's WHERE).
    __table_args__ = (
        Index("ix_jobs_log_created", "created_at"),
        Index("ix_jobs_media_account_created", "account_id", "created_at"),
        Index("ix_jobs_media_kind_account_id", "kind", "account_id", "id"),
        Index("ix_jobs_media_stage_poll", "stage", "next_poll_at"),
    )

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
    started_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    """Media jobs: when a worker first claimed the submit step (created_at → started_at is the wait
    in our queue)."""
    completed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    prompt_tokens: int | None = Field(default=None)
    completion_tokens: int | None = Field(default=None)
    hold_amount: int | None = Field(default=None, sa_type=BigInteger)
    """Micro-dollars held before the upstream call."""
    cost: int | None = Field(default=None, sa_type=BigInteger)
    """Micro-dollars captured (the price of what the upstream produced)."""
    billing_state: str | None = Field(default=None, max_length=20)
    """held → captured | released (compare-and-set; async jobs only move once)."""
    cache_status: str | None = Field(default=None, max_length=10)
    """Chat and embeddings with the response cache on: `hit`, `coalesced` (waited for an identical
    request in flight) or `miss`; NULL when the request did not use the cache (app/cache/)."""
    cache_saved: int | None = Field(default=None, sa_type=BigInteger)
    """Micro-dollars a hit or coalesced request did not cost: the answer's price minus `cost`."""

    # Media jobs only (NULL or the default on chat/embedding rows).
    stage: str | None = Field(default=None, max_length=20)
    """Internal sub-state (`Stage`); `status` is the public one derived from it."""
    progress: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    prompt: str | None = Field(default=None)
    params: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    """The normalised request (size, seconds, n, quality, …), as the worker needs it."""
    user_metadata: dict[str, str] | None = Field(default=None, sa_type=JSONType)
    """The caller's `metadata` (≤ 16 string pairs), echoed back."""
    webhook_url: str | None = Field(default=None, max_length=2000)
    webhook_events: list[str] | None = Field(default=None, sa_type=JSONType)
    upstream_id: str | None = Field(default=None, max_length=200)
    """The upstream's task id. Never shown to clients."""
    upstream_result: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    """Where the upstream keeps the result (URLs), between the poll that saw it and the store step. Private."""
    assets: list[dict[str, Any]] | None = Field(default=None, sa_type=JSONType)
    """Our copies: [{variant, index, key, bytes, sha256, content_type}]."""
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    """Failed submit/store steps in a row (reset when the job moves on)."""
    next_poll_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When the job's next step is due; a step in flight pushes it ahead (a lease). The reconciler
    re-sends the step of any job overdue by more than `reconcile_grace()`."""
    deadline_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    """Bumped by every write of a media job; writes are compare-and-set on it."""


class UsageRollup(SQLModel, table=True):
    """The job log summed by account × UTC day × model × latency bucket (app/jobs/rollups.py), added to
    in the transaction that writes the rows: GET /v1/usage reads these, never the rows, and they stay
    when retention removes the rows. A bucket is a latency range (`rollups.bucket_of`): the counts of
    the buckets are the latency sketch (percentiles within a few per cent)."""

    __tablename__ = "usage_rollups"

    account_id: str = Field(primary_key=True, foreign_key="accounts.id", max_length=40, ondelete="CASCADE")
    day: str = Field(primary_key=True, max_length=10)
    """YYYY-MM-DD (UTC), as /v1/usage shows it."""
    model: str = Field(primary_key=True, max_length=200)
    bucket: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    """Latency bucket; -1: latency unknown (no latency recorded, or rows rolled up by the migration)."""
    requests: int = Field(default=0, sa_type=BigInteger)
    prompt_tokens: int = Field(default=0, sa_type=BigInteger)
    completion_tokens: int = Field(default=0, sa_type=BigInteger)
    cost: int = Field(default=0, sa_type=BigInteger)


JOBS = SQLModel.metadata.tables[Job.__tablename__]
USAGE_ROLLUPS = SQLModel.metadata.tables[UsageRollup.__tablename__]
"""The jobs table itself, for Core statements on the hot paths (no ORM objects built)."""


def stage_of(job: Job) -> Stage:
    if job.stage is None:
        raise ValueError(f"job {job.id} ({job.kind}) has no stage: not a media job")
    return Stage(job.stage)
