"""Public shapes of the response cache's admin answers."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec


class CacheCleared(msgspec.Struct, kw_only=True):
    object: Literal["cache"]
    account_id: str
    deleted: int
    """How many entries were deleted (the model-shared ones stay: they belong to no account)."""


class CacheDefaultBody(msgspec.Struct, kw_only=True):
    ttl_seconds: Annotated[int, msgspec.Meta(ge=0, le=31_536_000)] | None
    """Cache every request of the key or account this long without an opt-in (0: off; null: a key
    inherits its account's default, an account has none)."""


class CacheDefault(msgspec.Struct, kw_only=True):
    object: Literal["cache.default"]
    account_id: str
    key_id: str | None = None
    ttl_seconds: int | None
