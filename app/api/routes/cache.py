"""The response cache's admin routes (docs/caching.md): delete an account's entries; set a key's or an
account's default."""

from __future__ import annotations

from typing import Any

from litestar import Request, delete, put
from litestar.params import JSONBody

from app.accounts import service as accounts
from app.api.api_docs import docs
from app.api.api_edge import body_of
from app.api.deps import resources_of
from app.cache import service
from app.cache.schemas import CacheCleared, CacheDefault, CacheDefaultBody
from app.core.db import unit_of_work
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


async def _set_default(request: Request[Any, Any, Any], target: str, ident: str) -> dict[str, Any]:
    ttl = (await body_of(request)).get("ttl_seconds")
    async with unit_of_work(resources_of(request).sessionmaker) as session:
        return await service.set_default(session, target, ident, ttl)


@put("/accounts/{account:str}/cache", operation_id="adminSetAccountCacheDefault", responses=docs(CacheDefault, 404))
async def set_account_cache_default(
    request: Request[Any, Any, Any], account: NamePath, data: JSONBody[CacheDefaultBody]
) -> dict[str, Any]:
    return await _set_default(request, "account", account)


@put("/keys/{key_id:str}/cache", operation_id="adminSetKeyCacheDefault", responses=docs(CacheDefault, 404))
async def set_key_cache_default(
    request: Request[Any, Any, Any], key_id: NamePath, data: JSONBody[CacheDefaultBody]
) -> dict[str, Any]:
    return await _set_default(request, "key", key_id)


CACHE_ADMIN_HANDLERS = [clear_account_cache, set_account_cache_default, set_key_cache_default]
