"""Money tables: tiers, prices, the append-only ledger, redemption codes.

Every amount is an integer in micro-dollars (1 unit = 0.000001 USD); see app/core/money.py.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import BigInteger, Column, String
from sqlmodel import Field, SQLModel

from app.core.db import BigIntId, JSONType, UTCDateTime, utcnow

HOUSE_ACCOUNT_ID = "acct_house"
"""The gateway's own account (migration 0009): usage an upstream billed beyond a request's hold is
booked here as a `loss`, so a customer's balance never goes below zero and the ledger still sums."""


class EntryKind(enum.StrEnum):
    TOPUP = "topup"
    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    REFUND = "refund"
    ADJUSTMENT = "adjustment"
    REDEMPTION = "redemption"
    LOSS = "loss"
    """House account only: what an upstream's usage cost beyond the hold."""


class Price(SQLModel, table=True):
    """What one public model costs. A model without a row cannot be called (local models excepted)."""

    __tablename__ = "prices"

    model: str = Field(primary_key=True, max_length=200)
    input_per_mtok: int = Field(default=0, sa_type=BigInteger)
    output_per_mtok: int = Field(default=0, sa_type=BigInteger)
    cached_input_per_mtok: int | None = Field(default=None, sa_type=BigInteger)
    per_image: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    """`{"default": units}` plus `"SIZE/QUALITY"`, `"SIZE"` or `"QUALITY"` overrides."""
    per_video_second: int | None = Field(default=None, sa_type=BigInteger)
    per_video_second_by_size: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    """`{"1792x1024": units}`: a video's price per second at that size (else `per_video_second`)."""
    per_request: int | None = Field(default=None, sa_type=BigInteger)
    """A flat price per image or video request, on top of the per-image or per-second price."""
    max_output_tokens: int | None = Field(default=None)
    audio_input_per_mtok: int | None = Field(default=None, sa_type=BigInteger)
    """Realtime audio input tokens (NULL: `input_per_mtok`)."""
    audio_output_per_mtok: int | None = Field(default=None, sa_type=BigInteger)
    """Realtime audio output tokens (NULL: `output_per_mtok`)."""
    """Cap used to size a chat hold when the request sets no max_tokens."""
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LedgerEntry(SQLModel, table=True):
    """One money movement. Rows are only ever inserted; `idempotency_key` makes every movement
    happen at most once, whatever retries, duplicate messages or crashes do."""

    __tablename__ = "ledger_entries"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=40, ondelete="CASCADE")
    kind: str = Field(max_length=20)
    amount: int = Field(sa_type=BigInteger)
    """Signed effect on the account's available balance."""
    idempotency_key: str = Field(sa_column=Column(String(200), unique=True, nullable=False))
    job_id: str | None = Field(default=None, index=True, max_length=64)
    model: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=500)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RedemptionCode(SQLModel, table=True):
    __tablename__ = "redemption_codes"

    id: str = Field(primary_key=True, max_length=40)
    code_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    amount: int = Field(sa_type=BigInteger)
    note: str | None = Field(default=None, max_length=500)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    redeemed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    redeemed_by: str | None = Field(default=None, max_length=40)
