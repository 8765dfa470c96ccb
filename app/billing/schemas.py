"""The caller's account, usage and ledger as the API shows them (documentation Structs: the routes
build the same shapes as dicts)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.edge import NO_NUL
from app.jobs.schemas import LedgerEntryObject


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
