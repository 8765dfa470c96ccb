"""The caller's own account: GET /v1/account, /v1/usage, /v1/ledger and POST /v1/redeem."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, get, post
from litestar.params import FromQuery, JSONBody

from app.api.api_docs import docs
from app.api.deps import principal_of, resources_of
from app.api.lists import list_page
from app.billing.operations import Operations
from app.billing.schemas import AccountObject, LedgerPage, RedeemBody, Redemption, Usage, entry_public
from app.core.money import format_usd
from app.core.params import Cursor64, PageLimit
from app.jobs import usage


def _ops(request: Request[Any, Any, Any]) -> Operations:
    res = resources_of(request)
    return Operations(res.sessionmaker, res.gate)


@get("/account", operation_id="retrieveAccount", responses=docs(AccountObject))
async def retrieve_account(request: Request[Any, Any, Any]) -> dict[str, Any]:
    principal = principal_of(request)
    res = resources_of(request)
    account = await _ops(request).get_account(principal.account_id)
    return {
        "object": "account",
        "id": account.id,
        "name": account.name,
        "status": account.status,
        "tier": account.tier,
        "price_multiplier_bp": principal.multiplier_bp,
        "balance": account.balance,
        "balance_usd": format_usd(account.balance),
        "unit": "usd_micros",
        "limits": {**principal.limits.as_dict(), "reads_per_minute": res.settings.default_reads_per_minute},
    }


@get("/usage", operation_id="retrieveUsage", responses=docs(Usage))
async def retrieve_usage(
    request: Request[Any, Any, Any], start: FromQuery[dt.date | None] = None, end: FromQuery[dt.date | None] = None
) -> dict[str, Any]:
    """Requests, tokens and cost by UTC day and model, `start` to `end` inclusive (default: 30 days)."""
    start_date, end_date = usage.date_range(start, end)
    async with resources_of(request).engine.connect() as conn:
        data = await usage.usage_by_day(conn, principal_of(request).account_id, start_date, end_date)
    return {
        "object": "list",
        "start": start_date.isoformat(),
        "end": end_date.isoformat(),
        "data": data,
        "total_cost": sum(d["cost"] for d in data),
        "unit": "usd_micros",
    }


@get("/ledger", operation_id="listLedger", responses=docs(LedgerPage))
async def list_ledger(
    request: Request[Any, Any, Any], limit: PageLimit = 20, before: Cursor64 = None
) -> dict[str, Any]:
    entries = await _ops(request).ledger_page(principal_of(request).account_id, limit=limit + 1, before=before)
    return list_page([entry_public(e) for e in entries[:limit]], has_more=len(entries) > limit)


@post("/redeem", status_code=200, operation_id="redeemCode", responses=docs(Redemption, 404, 409))
async def redeem_code(request: Request[Any, Any, Any], data: JSONBody[RedeemBody]) -> dict[str, Any]:
    code = data.code
    principal = principal_of(request)
    ops = _ops(request)
    amount = await ops.redeem(principal.account_id, code)
    return {"object": "redemption", "amount": amount, "balance": await ops.balance(principal.account_id)}
