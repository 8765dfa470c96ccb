"""Public shapes of the response cache's admin answers."""

from __future__ import annotations

from typing import Literal

import msgspec


class CacheCleared(msgspec.Struct, kw_only=True):
    object: Literal["cache"]
    account_id: str
    deleted: int
    """How many entries were deleted (the model-shared ones stay: they belong to no account)."""
