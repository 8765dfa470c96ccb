"""The operator's side of the response cache: a key's or an account's default (docs/caching.md)."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import service as accounts
from app.accounts.models import ApiKey
from app.core.errors import NotFound


async def set_default(session: AsyncSession, target: str, ident: str, ttl: int | None) -> dict[str, Any]:
    """Set `cache_ttl_seconds` of a key (`target` "key") or an account; processes pick it up within the
    key cache TTL. Returns the public answer."""
    if target == "key":
        key = await session.get(ApiKey, ident)
        if key is None:
            raise NotFound(f"No API key {ident!r}.", param="key", code="key_not_found")
        key.cache_ttl_seconds = ttl
        session.add(key)
        return {"object": "cache.default", "account_id": key.account_id, "key_id": key.id, "ttl_seconds": ttl}
    account = await accounts.get_account(session, ident)
    account.cache_ttl_seconds = ttl
    session.add(account)
    return {"object": "cache.default", "account_id": account.id, "key_id": None, "ttl_seconds": ttl}
