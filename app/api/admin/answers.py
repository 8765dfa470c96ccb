"""The admin API's answers, for the OpenAPI document (the handlers build the same shapes as dicts:
app.api.admin.schemas, app.channels.schemas)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

LimitValues = dict[str, int | None]
"""rpm, rph, tpm, max_streams: null inherits (key → account → tier → defaults), 0 is unlimited."""


class AdminAccount(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["account"]
    name: str
    status: str
    tier: str
    balance: int
    balance_usd: str
    limits: LimitValues
    created_at: int | None


class AdminApiKey(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["api_key"]
    account_id: str
    name: str | None
    masked: str
    revoked: bool
    limits: LimitValues
    created_at: int | None


class CreatedApiKey(AdminApiKey, kw_only=True):
    key: str
    """The key itself (`sk-ht-…`): shown in this answer only."""


class Balance(msgspec.Struct, kw_only=True):
    object: Literal["balance"]
    account: str
    balance: int
    balance_usd: str


class PriceObject(msgspec.Struct, kw_only=True):
    model: str
    object: Literal["price"]
    input_per_mtok: int | None
    output_per_mtok: int | None
    cached_input_per_mtok: int | None
    audio_input_per_mtok: int | None
    audio_output_per_mtok: int | None
    per_image: dict[str, Any] | None
    per_video_second: int | None
    per_video_second_by_size: dict[str, int]
    max_output_tokens: int | None
    per_request: int | None = None


class TierObject(msgspec.Struct, kw_only=True):
    name: str
    object: Literal["tier"]
    price_multiplier_bp: int | None
    limits: LimitValues


class CodeObject(msgspec.Struct, kw_only=True):
    id: str
    code: str
    """The code itself: shown in this answer only."""
    amount: int
    note: str | None
    expires_at: int | None


class LedgerVerification(msgspec.Struct, kw_only=True):
    object: Literal["ledger.verification"]
    ok: bool
    mismatches: list[dict[str, Any]]


class AdminStatus(msgspec.Struct, kw_only=True):
    object: Literal["admin.status"]
    models: int
    job_log_pending: int
    local_cooldowns: list[dict[str, Any]]


class AccountList(msgspec.Struct, kw_only=True):
    object: Literal["list"]
    data: list[AdminAccount]
    has_more: bool
    first_id: str | None
    last_id: str | None


class ApiKeyList(msgspec.Struct, kw_only=True):
    object: Literal["list"]
    data: list[AdminApiKey]


class PriceList(msgspec.Struct, kw_only=True):
    object: Literal["list"]
    data: list[PriceObject]


class TierList(msgspec.Struct, kw_only=True):
    object: Literal["list"]
    data: list[TierObject]


class CodeList(msgspec.Struct, kw_only=True):
    object: Literal["list"]
    data: list[CodeObject]
