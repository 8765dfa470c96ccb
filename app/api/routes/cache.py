"""DELETE /admin/accounts/{account}/cache: drop an account's response-cache entries (docs/caching.md)."""

from __future__ import annotations

from typing import Any

from litestar import Request, delete

from app.accounts import service as accounts
from app.api.api_docs import docs
from app.api.deps import resources_of
from app.cache.schemas import CacheCleared
from app.core.params import NamePath


@delete(
    "/accounts/{account:str}/cache",
    operation_id="adminClearAccountCache",
    summary="Delete an account's cached answers",
    responses=docs(CacheCleared, 404),
    status_code=200,
)
async def clear_account_cache(request: Request[Any, Any, Any], account: NamePath) -> dict[str, Any]:
    res = resources_of(request)
    async with res.sessionmaker() as session:
        row = await accounts.get_account(session, account)
    deleted = await res.cache.delete_account(row.id)
    return {"object": "cache", "account_id": row.id, "deleted": deleted}


CACHE_ADMIN_HANDLERS = [clear_account_cache]
