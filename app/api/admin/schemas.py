"""The admin API's shapes: request bodies, and its view of accounts, keys, prices and tiers.

The handlers read only these Structs. A PATCH changes only the fields its body names: a field left
out is `UNSET`, and `null` (where allowed) clears the value."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from app.accounts.limits import LIMIT_NAMES
from app.accounts.models import Account, ApiKey, Tier
from app.accounts.service import mask_key
from app.billing.models import Price
from app.core.db import to_unix
from app.core.edge import NO_NUL, Name
from app.core.money import format_usd

MAX_MICROS = 10**15
"""$1 billion in micro-dollars: beyond any real top-up, and exact in a Lua (double) number."""
Micros = Annotated[int, msgspec.Meta(ge=-MAX_MICROS, le=MAX_MICROS)]
MAX_PRICE = 10**12
PriceMicros = Annotated[int, msgspec.Meta(ge=0, le=MAX_PRICE)]
"""Micro-dollars per million tokens (or per image, per second): up to $1M, so a hold for 2^31 tokens
stays below 2^53, exact in Lua."""
Limit = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
"""A rate limit (0 = unlimited); null in a PATCH clears it (inherit)."""
UsdText = Annotated[str, msgspec.Meta(max_length=32, pattern=NO_NUL, examples=["10.50"])]
Reason = Annotated[str, msgspec.Meta(max_length=500, pattern=NO_NUL)]
UnixTime = Annotated[int, msgspec.Meta(ge=0, le=253_402_300_799)]
"""Seconds since 1970, up to the end of year 9999 (what a datetime holds)."""


class Limits(msgspec.Struct, kw_only=True):
    rpm: Limit | None = None
    rph: Limit | None = None
    tpm: Limit | None = None
    max_streams: Limit | None = None


class AccountCreateBody(msgspec.Struct, kw_only=True):
    name: Name
    tier: Name = "default"


class LimitsPatch(msgspec.Struct, kw_only=True):
    """Limits to change: a limit left out keeps its value, `null` inherits (the tier's or the
    instance's), 0 switches it off."""

    rpm: Limit | UnsetType | None = UNSET
    rph: Limit | UnsetType | None = UNSET
    tpm: Limit | UnsetType | None = UNSET
    max_streams: Limit | UnsetType | None = UNSET

    def named(self) -> dict[str, int | None]:
        """The limits the body named (a nested `limits` object, when the body has one, wins)."""
        source = getattr(self, "limits", UNSET)
        source = source if isinstance(source, LimitsPatch) else self
        named: dict[str, int | None] = {}
        for name in LIMIT_NAMES:
            value = getattr(source, name)
            if value is not UNSET:
                named[name] = value
        return named


class AccountUpdateBody(LimitsPatch, kw_only=True):
    """Limits may also be given inside `limits`."""

    status: Literal["active", "suspended"] | UnsetType = UNSET
    tier: Name | UnsetType = UNSET
    limits: LimitsPatch | UnsetType = UNSET


class KeyCreateBody(msgspec.Struct, kw_only=True):
    name: Name | None = None


class KeyUpdateBody(LimitsPatch, kw_only=True):
    limits: LimitsPatch | UnsetType = UNSET


class AmountBody(msgspec.Struct, kw_only=True):
    """`amount` in micro-dollars, or `amount_usd` as a dollar string."""

    amount: Micros | None = None
    amount_usd: UsdText | None = None
    reason: Reason | None = None


class PriceBody(msgspec.Struct, kw_only=True):
    input_per_mtok: PriceMicros | None = None
    output_per_mtok: PriceMicros | None = None
    cached_input_per_mtok: PriceMicros | None = None
    audio_input_per_mtok: PriceMicros | None = None
    """Realtime audio input tokens (unset: the text input price)."""
    audio_output_per_mtok: PriceMicros | None = None
    """Realtime audio output tokens (unset: the text output price)."""
    per_video_second: PriceMicros | None = None
    max_output_tokens: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] | None = None
    per_image: dict[Annotated[str, msgspec.Meta(max_length=100, pattern=NO_NUL)], PriceMicros] | None = None
    """Price per image by `SIZE/QUALITY` (`"1024x1024/hd"`)."""
    per_video_second_by_size: dict[Annotated[str, msgspec.Meta(max_length=100, pattern=NO_NUL)], PriceMicros] | None = (
        None
    )
    """Price per video second by size (`"1792x1024"`) or resolution (`"1080p"`); others pay `per_video_second`."""
    per_request: PriceMicros | None = None
    """A flat price per image or video request, added to the per-image or per-second price."""


class TierBody(Limits, kw_only=True):
    price_multiplier_bp: Annotated[int, msgspec.Meta(ge=0, le=10**6)] | None = None
    """The tier's price multiplier in basis points (10000 = list price)."""


class CodesBody(AmountBody, kw_only=True):
    count: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    expires_at: UnixTime | None = None
    note: Reason | None = None


def account_public(a: Account) -> dict[str, Any]:
    return {
        "id": a.id,
        "object": "account",
        "name": a.name,
        "status": a.status,
        "tier": a.tier,
        "balance": a.balance,
        "balance_usd": format_usd(a.balance),
        "limits": {n: getattr(a, n) for n in LIMIT_NAMES},
        "created_at": to_unix(a.created_at),
    }


def key_public(k: ApiKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "object": "api_key",
        "account_id": k.account_id,
        "name": k.name,
        "masked": mask_key(k),
        "revoked": k.revoked_at is not None,
        "limits": {n: getattr(k, n) for n in LIMIT_NAMES},
        "created_at": to_unix(k.created_at),
    }


def price_public(p: Price) -> dict[str, Any]:
    return {
        "model": p.model,
        "object": "price",
        "input_per_mtok": p.input_per_mtok,
        "output_per_mtok": p.output_per_mtok,
        "cached_input_per_mtok": p.cached_input_per_mtok,
        "audio_input_per_mtok": p.audio_input_per_mtok,
        "audio_output_per_mtok": p.audio_output_per_mtok,
        "per_image": p.per_image,
        "per_video_second": p.per_video_second,
        "per_video_second_by_size": p.per_video_second_by_size or {},
        "max_output_tokens": p.max_output_tokens,
        "per_request": p.per_request,
    }


def tier_public(t: Tier) -> dict[str, Any]:
    return {
        "name": t.name,
        "object": "tier",
        "price_multiplier_bp": t.price_multiplier_bp,
        "limits": {n: getattr(t, n) for n in LIMIT_NAMES},
    }
