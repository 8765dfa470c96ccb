"""The caller's account, usage and ledger as the API shows them (documentation Structs: the routes
build the same shapes as dicts)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from app.billing.models import LedgerEntry
from app.core.db import to_unix
from app.core.edge import NO_NUL


class RedeemBody(msgspec.Struct, kw_only=True):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]
    """A redemption code, HT-XXXX-XXXX-XXXX-XXXX."""


class AccountObject(msgspec.Struct, kw_only=True):
    object: Literal["account"]
    id: str
    name: str
    status: str
    tier: str | None
    price_multiplier_bp: int
    balance: int
    balance_usd: str
    unit: Literal["usd_micros"]
    limits: dict[str, int | None]


class UsageRow(msgspec.Struct, kw_only=True):
    date: str
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: int


class Usage(msgspec.Struct, kw_only=True):
    object: Literal["list"]
    start: str
    end: str
    data: list[UsageRow]
    total_cost: int
    unit: Literal["usd_micros"]


class LedgerPage(msgspec.Struct, kw_only=True):
    object: Literal["list"]
    data: list[LedgerEntryObject]
    has_more: bool
    first_id: int | None
    last_id: int | None


class Redemption(msgspec.Struct, kw_only=True):
    object: Literal["redemption"]
    amount: int
    balance: int


class LedgerEntryObject(msgspec.Struct, kw_only=True):
    id: int
    object: Literal["ledger.entry"]
    kind: str
    """topup, adjustment, hold, capture, release, redemption, …"""
    amount: int
    """Micro-dollars; negative for a debit."""
    job_id: str | None
    model: str | None
    reason: str | None
    created_at: int | None


def entry_public(e: LedgerEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "object": "ledger.entry",
        "kind": e.kind,
        "amount": e.amount,
        "job_id": e.job_id,
        "model": e.model,
        "reason": e.reason,
        "created_at": to_unix(e.created_at),
    }
