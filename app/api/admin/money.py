"""Admin API: accounts, keys, limits, top-ups and adjustments, prices, tiers, redemption codes.

Amounts are integers in micro-dollars (`amount`), or a dollar string (`amount_usd`: "10.50").
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody
from msgspec import UNSET

from app.accounts.limits import LIMIT_NAMES
from app.accounts.models import AccountStatus, ApiKey
from app.api.admin.answers import (
    AccountList,
    AdminAccount,
    AdminApiKey,
    ApiKeyList,
    Balance,
    CodeList,
    CreatedApiKey,
    LedgerVerification,
    PriceList,
    PriceObject,
    TierList,
    TierObject,
)
from app.api.admin.schemas import (
    AccountCreateBody,
    AccountUpdateBody,
    AmountBody,
    CodesBody,
    KeyCreateBody,
    KeyUpdateBody,
    PriceBody,
    TierBody,
    account_public,
    key_public,
    price_public,
    tier_public,
)
from app.api.api_docs import docs
from app.api.deps import resources_of
from app.api.lists import list_page
from app.billing.operations import Operations
from app.billing.schemas import LedgerPage, entry_public
from app.core.db import to_unix
from app.core.edge import is_clean_id
from app.core.errors import InvalidRequest
from app.core.money import format_usd, parse_usd
from app.core.params import Cursor64, IdQuery, NamePath, PageLimit


def _ops(request: Request[Any, Any, Any]) -> Operations:
    res = resources_of(request)
    return Operations(res.sessionmaker, res.gate)


def _amount(body: AmountBody) -> int:
    if body.amount_usd is not None:
        try:
            return parse_usd(body.amount_usd)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="amount_usd") from exc
    if body.amount is None:
        raise InvalidRequest(
            "Missing 'amount' (micro-dollars) or 'amount_usd'.", param="amount", code="missing_required_parameter"
        )
    return body.amount


def _model_path(model: str) -> str:
    model = model.lstrip("/")
    if not is_clean_id(model):
        raise InvalidRequest("'model' must be a model name.", param="model", code="invalid_value")
    return model


@post("/accounts", status_code=201, operation_id="adminCreateAccount", responses=docs(AdminAccount, 409, status=201))
async def create_account(request: Request[Any, Any, Any], data: JSONBody[AccountCreateBody]) -> dict[str, Any]:
    return account_public(await _ops(request).create_account(data.name, data.tier))


@get("/accounts", operation_id="adminListAccounts", responses=docs(AccountList))
async def list_accounts(
    request: Request[Any, Any, Any], limit: PageLimit = 100, after: IdQuery = None
) -> dict[str, Any]:
    """Accounts in the order they were made, `limit` a page; the next page is `after=<last_id>`."""
    found = await _ops(request).accounts_page(after, limit=limit + 1)
    return list_page([account_public(a) for a in found[:limit]], has_more=len(found) > limit)


@get("/accounts/{account:str}", operation_id="adminGetAccount", responses=docs(AdminAccount, 404))
async def get_account(request: Request[Any, Any, Any], account: NamePath) -> dict[str, Any]:
    return account_public(await _ops(request).get_account(account))


@patch("/accounts/{account:str}", operation_id="adminUpdateAccount", responses=docs(AdminAccount, 404))
async def update_account(
    request: Request[Any, Any, Any], account: NamePath, data: JSONBody[AccountUpdateBody]
) -> dict[str, Any]:
    ops = _ops(request)
    if data.status is not UNSET:
        await ops.set_account_status(account, AccountStatus(data.status))
    if data.tier is not UNSET:
        await ops.set_account_tier(account, data.tier)
    limits = data.named()
    if limits:
        await ops.set_limits("account", account, limits)
    return account_public(await ops.get_account(account))


@post(
    "/accounts/{account:str}/keys",
    status_code=201,
    operation_id="adminCreateKey",
    responses=docs(CreatedApiKey, 404, status=201),
)
async def create_key(
    request: Request[Any, Any, Any], account: NamePath, data: JSONBody[KeyCreateBody | None] = None
) -> dict[str, Any]:
    name = data.name if data is not None else None
    api_key, plaintext = await _ops(request).create_key(account, name)
    return {**key_public(api_key), "key": plaintext}


@get("/accounts/{account:str}/keys", operation_id="adminListKeys", responses=docs(ApiKeyList, 404))
async def list_keys(request: Request[Any, Any, Any], account: NamePath) -> dict[str, Any]:
    return {"object": "list", "data": [key_public(k) for k in await _ops(request).list_keys(account)]}


@post("/keys/{key_id:str}/revoke", status_code=200, operation_id="adminRevokeKey", responses=docs(AdminApiKey, 404))
async def revoke_key(request: Request[Any, Any, Any], key_id: NamePath) -> dict[str, Any]:
    return key_public(await _ops(request).revoke_key(key_id))


@patch("/keys/{key_id:str}", operation_id="adminUpdateKey", responses=docs(AdminApiKey, 404))
async def update_key(
    request: Request[Any, Any, Any], key_id: NamePath, data: JSONBody[KeyUpdateBody]
) -> dict[str, Any]:
    updated = await _ops(request).set_limits("key", key_id, data.named())
    assert isinstance(updated, ApiKey)
    return key_public(updated)


@post(
    "/accounts/{account:str}/topups",
    status_code=201,
    operation_id="adminTopUp",
    responses=docs(Balance, 404, 409, status=201),
)
async def topup(request: Request[Any, Any, Any], account: NamePath, data: JSONBody[AmountBody]) -> dict[str, Any]:
    key = request.headers.get("idempotency-key")
    balance = await _ops(request).topup(account, _amount(data), data.reason, key=f"topup:{key}" if key else None)
    return {"object": "balance", "account": account, "balance": balance, "balance_usd": format_usd(balance)}


@post(
    "/accounts/{account:str}/adjustments",
    status_code=201,
    operation_id="adminAdjust",
    responses=docs(Balance, 404, 409, status=201),
)
async def adjust(request: Request[Any, Any, Any], account: NamePath, data: JSONBody[AmountBody]) -> dict[str, Any]:
    if not data.reason:
        raise InvalidRequest("Missing required parameter: 'reason'.", param="reason", code="missing_required_parameter")
    key = request.headers.get("idempotency-key")
    balance = await _ops(request).adjust(account, _amount(data), data.reason, key=f"adjust:{key}" if key else None)
    return {"object": "balance", "account": account, "balance": balance, "balance_usd": format_usd(balance)}


@get("/accounts/{account:str}/ledger", operation_id="adminLedger", responses=docs(LedgerPage, 404))
async def account_ledger(
    request: Request[Any, Any, Any], account: NamePath, limit: PageLimit = 100, before: Cursor64 = None
) -> dict[str, Any]:
    """An account's ledger, newest first, `limit` entries a page; the next page is `before=<last_id>`."""
    ops = _ops(request)
    found = await ops.get_account(account)
    entries = await ops.ledger_page(found.id, limit=limit + 1, before=before)
    return list_page([entry_public(e) for e in entries[:limit]], has_more=len(entries) > limit)


@get("/ledger/verify", operation_id="adminVerifyLedger", responses=docs(LedgerVerification))
async def verify_ledger(request: Request[Any, Any, Any]) -> dict[str, Any]:
    mismatches = await _ops(request).verify_ledger()
    return {
        "object": "ledger.verification",
        "ok": not mismatches,
        "mismatches": [{"account": a, "balance": b, "ledger_sum": s} for a, b, s in mismatches],
    }


@get("/prices", operation_id="adminListPrices", responses=docs(PriceList))
async def list_prices(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"object": "list", "data": [price_public(p) for p in await _ops(request).list_prices()]}


PRICE_FIELDS = (
    "input_per_mtok",
    "output_per_mtok",
    "cached_input_per_mtok",
    "audio_input_per_mtok",
    "audio_output_per_mtok",
    "per_video_second",
    "max_output_tokens",
    "per_image",
    "per_video_second_by_size",
    "per_request",
)


@put("/prices/{model:path}", operation_id="adminSetPrice", responses=docs(PriceObject))
async def set_price(request: Request[Any, Any, Any], model: FromPath[str], data: JSONBody[PriceBody]) -> dict[str, Any]:
    fields = {f: getattr(data, f) for f in PRICE_FIELDS}
    return price_public(await _ops(request).set_price(_model_path(model), **fields))


@delete("/prices/{model:path}", status_code=200, operation_id="adminDeletePrice", responses=docs(PriceObject, 404))
async def delete_price(request: Request[Any, Any, Any], model: NamePath) -> dict[str, Any]:
    return price_public(await _ops(request).delete_price(_model_path(model)))


@get("/tiers", operation_id="adminListTiers", responses=docs(TierList))
async def list_tiers(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"object": "list", "data": [tier_public(t) for t in await _ops(request).list_tiers()]}


@put("/tiers/{name:str}", operation_id="adminSetTier", responses=docs(TierObject))
async def set_tier(request: Request[Any, Any, Any], name: NamePath, data: JSONBody[TierBody]) -> dict[str, Any]:
    fields = {n: getattr(data, n) for n in ("price_multiplier_bp", *LIMIT_NAMES)}
    return tier_public(await _ops(request).set_tier(name, **fields))


@post("/codes", status_code=201, operation_id="adminCreateCodes", responses=docs(CodeList, status=201))
async def create_codes(request: Request[Any, Any, Any], data: JSONBody[CodesBody]) -> dict[str, Any]:
    expires = data.expires_at
    codes = await _ops(request).create_codes(
        _amount(data),
        data.count or 1,
        note=data.note,
        expires_at=dt.datetime.fromtimestamp(expires, dt.UTC) if expires else None,
    )
    return {
        "object": "list",
        "data": [
            {"id": c.id, "code": plaintext, "amount": c.amount, "note": c.note, "expires_at": to_unix(c.expires_at)}
            for c, plaintext in codes
        ],
    }


HANDLERS = [
    create_account,
    list_accounts,
    get_account,
    update_account,
    create_key,
    list_keys,
    revoke_key,
    update_key,
    topup,
    adjust,
    account_ledger,
    verify_ledger,
    list_prices,
    set_price,
    delete_price,
    list_tiers,
    set_tier,
    create_codes,
]
