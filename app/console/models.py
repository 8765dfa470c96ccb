"""People who sign in to the console, their sessions, and Stripe Checkout sessions we started."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Column, String
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime, utcnow


class Role(enum.StrEnum):
    OWNER = "owner"
    """Manages the account's users besides everything a member does."""
    MEMBER = "member"
    OPERATOR = "operator"
    """The instance's operator (no account): the operator view."""


class ConsoleUser(SQLModel, table=True):
    __tablename__ = "console_users"

    id: str = Field(primary_key=True, max_length=40)
    email: str = Field(sa_column=Column(String(320), unique=True, nullable=False))
    """Stored lower-cased: one person, one row, whatever case they type."""
    account_id: str | None = Field(
        default=None, foreign_key="accounts.id", index=True, max_length=40, ondelete="CASCADE"
    )
    """None for an operator."""
    role: str = Field(default=Role.MEMBER, max_length=20)
    password_hash: str = Field(max_length=200)
    """argon2id, with its parameters in the string (re-hashed at sign-in when they change)."""
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    disabled_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class ConsoleSession(SQLModel, table=True):
    __tablename__ = "console_sessions"

    id: str = Field(primary_key=True, max_length=64)
    """SHA-256 of the cookie's token: a database leak gives no usable session."""
    user_id: str | None = Field(
        default=None, foreign_key="console_users.id", index=True, max_length=40, ondelete="CASCADE"
    )
    """None: the operator signed in with the admin token."""
    csrf: str = Field(max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: dt.datetime = Field(sa_type=UTCDateTime)


class StripeCheckout(SQLModel, table=True):
    """A Checkout Session we created; the signed webhook completes it (once: a compare-and-set on
    `completed_at`, and the ledger entry's idempotency key besides)."""

    __tablename__ = "stripe_checkouts"

    id: str = Field(primary_key=True, max_length=255)
    """Stripe's `cs_…` id."""
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=40, ondelete="CASCADE")
    amount: int = Field(sa_type=BigInteger)
    """Micro-dollars to credit."""
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    completed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_event_id: str | None = Field(default=None, max_length=255)
