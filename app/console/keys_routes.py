"""API keys of the signed-in person's account: list, create (the key shown once), revoke. Through
the same operations as the admin API and the CLI (app.billing.operations)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, Response, get, post
from sqlalchemy import func, select

from app.accounts.limits import LIMIT_NAMES, Limits, resolve_limits
from app.accounts.models import Account, ApiKey, Tier
from app.accounts.service import mask_key
from app.console.pages import redirect, render
from app.console.resources import account_id, operations, resources
from app.core.errors import GatewayError, NotFound
from app.core.params import IdPath
from app.jobs.models import JOBS


async def _last_used(request: Request[Any, Any, Any], account: str) -> dict[str, dt.datetime]:
    c = JOBS.c
    stmt = select(c.api_key_id, func.max(c.created_at)).where(c.account_id == account).group_by(c.api_key_id)
    async with resources(request).sessionmaker() as session:
        rows = (await (await session.connection()).execute(stmt)).all()
    return {r[0]: r[1] for r in rows if r[0]}


async def _account_limits(request: Request[Any, Any, Any], account_ident: str) -> Limits:
    """What a key of this account gets unless it says otherwise: the account's, its tier's, the
    instance's (the resolution the key check makes, app.accounts.limits)."""
    s = resources(request).settings
    async with resources(request).sessionmaker() as session:
        account = await session.get(Account, account_ident)
        tier = await session.get(Tier, account.tier) if account is not None else None
    defaults = Limits(s.default_rpm, s.default_rph, s.default_tpm, s.default_max_streams)
    return resolve_limits(defaults, account, tier)


def _row(key: ApiKey, last_used: dt.datetime | str | None, limits: Limits) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name or "",
        "masked": mask_key(key),
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
        "last_used": last_used,
        "limits": resolve_limits(limits, key).as_dict(),
        "own": {name for name in LIMIT_NAMES if getattr(key, name) is not None},
    }


async def _page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Response[Any]:
    account = account_id(request)
    ops = operations(request)
    keys = await ops.list_keys(account)
    used = await _last_used(request, account)
    inherited = await _account_limits(request, account)
    rows = [_row(k, used.get(k.id), inherited) for k in reversed(keys)]
    return render(request, "keys.html", status=status, keys=rows, **context)


@get("/keys")
async def keys_page(request: Request[Any, Any, Any]) -> Response[Any]:
    return await _page(request)


@post("/keys", status_code=200)
async def create_key(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    name = str(form.get("name") or "").strip()[:200] or None
    try:
        api_key, plaintext = await operations(request).create_key(account_id(request), name)
    except GatewayError as exc:
        return await _page(request, status=exc.status_code, error=exc.message)
    # Rendered, not redirected: the key must not travel in a cookie or a URL. It is never shown again.
    return await _page(request, created={"id": api_key.id, "name": name or "", "key": plaintext})


@post("/keys/{key_id:str}/revoke", status_code=303)
async def revoke_key(request: Request[Any, Any, Any], key_id: IdPath) -> Response[Any]:
    ops = operations(request)
    owned = {k.id for k in await ops.list_keys(account_id(request))}
    if key_id not in owned:
        raise NotFound(f"No API key {key_id!r}.", param="key", code="key_not_found")
    await ops.revoke_key(key_id)
    return redirect(request, "/console/keys", notice=f"Key {key_id} revoked: it is refused from now on.")


HANDLERS = [keys_page, create_key, revoke_key]
