"""Webhook tables: each account's signing secret, its endpoints, the events (exact bytes), one
delivery per (event, target) and every attempt of every delivery.

    job transition ──► event (evt_…, body bytes) ──► delivery per target ──► attempts
                        once per public status       pending → delivered | failed | disabled
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.db import BigIntId, JSONType, UTCDateTime, utcnow


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    """Due at `next_attempt_at` (a claimed attempt pushes it ahead: a lease)."""
    DELIVERED = "delivered"
    FAILED = "failed"
    """Every attempt of the schedule failed."""
    DISABLED = "disabled"
    """Its endpoint answered 410 Gone, or was disabled or deleted, before it got through."""


class EndpointStatus(enum.StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class WebhookSecret(SQLModel, table=True):
    """An account's signing secret (`whsec_…`, sealed with the instance secret by app/core/crypto.py: it
    must be recoverable to sign). During a rotation's overlap the previous secret signs too."""

    __tablename__ = "webhook_secrets"

    account_id: str = Field(primary_key=True, foreign_key="accounts.id", max_length=40, ondelete="CASCADE")
    secret: str = Field(sa_type=Text)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revealed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When the secret was shown to the account (once); None while it never was."""
    previous_secret: str | None = Field(default=None, sa_type=Text)
    previous_expires_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookEndpoint(SQLModel, table=True):
    """An account-level receiver: a URL and the event types it wants."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_account_id", "account_id", "id"),)

    id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="accounts.id", max_length=40, ondelete="CASCADE")
    url: str = Field(max_length=2000)
    events: list[str] | None = Field(default=None, sa_type=JSONType)
    """Event types sent here; None: every terminal event."""
    description: str | None = Field(default=None, max_length=500)
    status: str = Field(default=EndpointStatus.ENABLED, max_length=20)
    disabled_reason: str | None = Field(default=None, max_length=500)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deleted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookEvent(SQLModel, table=True):
    """One event, created in the transaction of the job transition that caused it. `payload` holds
    the exact bytes every attempt sends (and signs)."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("job_id", "type", name="uq_webhook_events_job_type"),
        Index("ix_webhook_events_account_id", "account_id", "id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="accounts.id", max_length=40, ondelete="CASCADE")
    job_id: str = Field(foreign_key="jobs.id", max_length=64, ondelete="CASCADE")
    type: str = Field(max_length=60)
    payload: bytes = Field(sa_type=LargeBinary)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookDelivery(SQLModel, table=True):
    """An event on its way to one target: an account endpoint (`endpoint_id`) or the job's own
    `webhook_url` (`url`). Writes are compare-and-set on `version`."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_state_due", "state", "next_attempt_at"),)

    id: str = Field(primary_key=True, max_length=40)
    event_id: str = Field(foreign_key="webhook_events.id", index=True, max_length=40, ondelete="CASCADE")
    endpoint_id: str | None = Field(default=None, foreign_key="webhook_endpoints.id", max_length=40)
    url: str | None = Field(default=None, max_length=2000)
    state: str = Field(default=DeliveryState.PENDING, max_length=20)
    attempts: int = Field(default=0)
    next_attempt_at: dt.datetime | None = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_status: int | None = Field(default=None)
    last_error: str | None = Field(default=None, max_length=500)
    delivered_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = Field(default=0)


class WebhookAttempt(SQLModel, table=True):
    """One HTTP attempt (or one refused before connecting): when, what came back, how long it took."""

    __tablename__ = "webhook_attempts"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    delivery_id: str = Field(foreign_key="webhook_deliveries.id", index=True, max_length=40, ondelete="CASCADE")
    attempted_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    address: str | None = Field(default=None, max_length=64)
    """The checked IP address the request went to (None: refused before connecting)."""
    status_code: int | None = Field(default=None)
    latency_ms: int = Field(default=0)
    error: str | None = Field(default=None, max_length=500)
    response_body: str | None = Field(default=None, sa_type=Text)
    """The start of the answer (at most RESPONSE_STORED bytes, decoded leniently)."""
