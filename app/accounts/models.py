"""Accounts own balances, keys and jobs; API keys are stored only as a SHA-256 hash."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Column, String
from sqlmodel import Field, SQLModel

from app.core.db import UTCDateTime, utcnow


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Account(SQLModel, table=True):
    __tablename__ = "accounts"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(sa_column=Column(String(200), unique=True, nullable=False))
    status: str = Field(default=AccountStatus.ACTIVE, max_length=20)
    tier: str = Field(default="default", max_length=40)
    balance: int = Field(default=0, sa_type=BigInteger)
    """Available micro-dollars: a cache of the sum of this account's ledger entries, changed only in
    the transaction that inserts an entry (`heytoken ledger verify` proves it)."""
    rpm: int | None = Field(default=None)
    """Limit overrides for every key of the account (None: the tier's; 0: no limit)."""
    rph: int | None = Field(default=None)
    tpm: int | None = Field(default=None)
    max_streams: int | None = Field(default=None)
    cache_ttl_seconds: int | None = Field(default=None)
    """The response cache's default for every key of the account (docs/caching.md): None or 0 off
    (a request still opts in with `x-heytoken-cache: on`), else cached that long."""
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=40, ondelete="CASCADE")
    name: str | None = Field(default=None, max_length=200)
    key_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    prefix: str = Field(max_length=16)
    last4: str = Field(max_length=4)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    rpm: int | None = Field(default=None)
    """Limit overrides for this key (None: the account's; 0: no limit)."""
    rph: int | None = Field(default=None)
    tpm: int | None = Field(default=None)
    max_streams: int | None = Field(default=None)
    cache_ttl_seconds: int | None = Field(default=None)
    """The response cache's default for this key: None the account's, 0 off, else cached that long."""


class Tier(SQLModel, table=True):
    """A class of accounts: a price multiplier and default limits (None: the instance default)."""

    __tablename__ = "tiers"

    name: str = Field(primary_key=True, max_length=40)
    price_multiplier_bp: int = Field(default=10_000)
    """Basis points: 10000 = prices as listed, 8000 = 20 % off."""
    rpm: int | None = Field(default=None)
    rph: int | None = Field(default=None)
    tpm: int | None = Field(default=None)
    max_streams: int | None = Field(default=None)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
