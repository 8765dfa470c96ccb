"""A job-log record: what a synchronous request (chat, embeddings) leaves behind, and its row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from app.core.db import DriverSQL, utcnow

JOB_COLUMNS = (
    "id",
    "kind",
    "status",
    "account_id",
    "api_key_id",
    "model",
    "channel_id",
    "stream",
    "usage",
    "latency_ms",
    "ttft_ms",
    "http_status",
    "error_code",
    "error_message",
    "attempts_log",
    "created_at",
    "completed_at",
    "prompt_tokens",
    "completion_tokens",
    "hold_amount",
    "cost",
    "billing_state",
    "cache_status",
    "cache_saved",
)
"""The columns a job-log row sets; the others (media jobs only) keep their defaults."""


@dataclass(slots=True)
class JobRecord:
    id: str
    kind: str
    status: str
    account_id: str
    api_key_id: str | None
    model: str
    channel_id: str | None = None
    stream: bool = False
    usage: dict[str, Any] | None = None
    latency_ms: int | None = None
    ttft_ms: int | None = None
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts_log: list[dict[str, Any]] | None = None
    created_at: dt.datetime = field(default_factory=utcnow)
    completed_at: dt.datetime | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    hold_amount: int | None = None
    cost: int | None = None
    """The charge to the account: never more than `hold_amount`."""
    overrun: int = 0
    """What the upstream's usage cost beyond the hold: booked to the house, not the account."""
    cache_status: str | None = None
    """`hit`, `coalesced` or `miss` when the response cache was on (app/cache/)."""
    cache_saved: int | None = None
    admission: Any = None
    """The request's admission (app.billing.limits.service.Admission), settled after the row is committed."""

    @property
    def billing_state(self) -> str | None:
        if self.cost:
            return "captured"
        return "released" if self.hold_amount else None

    def values(self, sql: DriverSQL) -> tuple[Any, ...]:
        """The row, in JOB_COLUMNS order, as the driver must receive it (see DriverSQL)."""
        timestamp, to_json = sql.timestamp, sql.json
        return (
            self.id,
            self.kind,
            self.status,
            self.account_id,
            self.api_key_id,
            self.model,
            self.channel_id,
            self.stream,
            to_json(self.usage),
            self.latency_ms,
            self.ttft_ms,
            self.http_status,
            # Upstreams send error codes as numbers too (Gemini: 400); the column is text.
            None if self.error_code is None else str(self.error_code),
            self.error_message,
            to_json(self.attempts_log),
            timestamp(self.created_at),
            timestamp(self.completed_at or utcnow()),
            self.prompt_tokens,
            self.completion_tokens,
            self.hold_amount,
            self.cost,
            self.billing_state,
            self.cache_status,
            self.cache_saved,
        )
