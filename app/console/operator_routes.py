"""The operator's view: accounts with balances (top-up, adjust, suspend), people, prices, tiers,
redemption codes and the ledger verification. Every action is one of app.billing.operations, as
the admin API's and the CLI's are."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.params import QueryParameter

from app.accounts.models import AccountStatus
from app.console import users
from app.console.models import Role
from app.console.pages import redirect, render, usd
from app.console.resources import operations, resources
from app.core.db import unit_of_work
from app.core.errors import GatewayError, InvalidRequest
from app.core.money import parse_usd
from app.core.params import FormQuery, NamePath, PageNumber

HOME = "/console/operator"
HOUSE = "__house__"
PAGE = 50
Verify = Annotated[bool, QueryParameter()]


def _text(form: Any, name: str) -> str:
    return str(form.get(name) or "").strip()


def _usd(form: Any, name: str) -> int:
    try:
        return parse_usd(_text(form, name))
    except (ValueError, GatewayError) as exc:
        raise InvalidRequest(f"'{name}': give dollars, e.g. 10 or 10.50.", param=name) from exc


async def _act(request: Request[Any, Any, Any], back: str, work: Any, notice: str) -> Response[Any]:
    """Run an operator action; its refusal (400, 404, 409) comes back as a message on the page."""
    try:
        result = await work
    except GatewayError as exc:
        return redirect(request, back, error=exc.message)
    return redirect(request, back, notice=notice.format(result=result))


def _showing(account: str) -> str:
    """The accounts page showing this account, wherever its name puts it among the pages."""
    return f"{HOME}?{urlencode({'q': account})}"


async def _balance_text(work: Any) -> str:
    return usd(await work)


@get("/operator")
async def operator_home(
    request: Request[Any, Any, Any], q: FormQuery = None, page: PageNumber = 1, verify: Verify = False
) -> Response[Any]:
    """One page of accounts (by name, or those `q` finds) and their people. The ledger check sums every
    ledger entry, a table that only grows: it runs when asked (`verify`), not on every load (issue #23)."""
    ops = operations(request)
    found = await ops.find_accounts(q, limit=PAGE + 1, offset=(page - 1) * PAGE, hidden=HOUSE)
    accounts = found[:PAGE]
    async with resources(request).sessionmaker() as session:
        people = await users.list_people(session, [a.id for a in accounts])
    mismatches = await ops.verify_ledger() if verify else None
    names = {a.id: a.name for a in accounts}
    return render(
        request, "operator.html", accounts=accounts, people=people, names=names, mismatches=mismatches,
        tiers=[t.name for t in await ops.list_tiers()], q=q or "", page=page, has_more=len(found) > PAGE,
    )  # fmt: skip


@post("/operator/accounts", status_code=303)
async def create_account(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    work = operations(request).create_account(_text(form, "name"), _text(form, "tier") or "default")
    return await _act(request, HOME, work, "Account created.")


@post("/operator/accounts/{account:str}/money", status_code=303)
async def move_money(request: Request[Any, Any, Any], account: NamePath) -> Response[Any]:
    form = await request.form()
    ops = operations(request)
    reason = _text(form, "reason") or None
    try:
        amount = _usd(form, "amount")
    except GatewayError as exc:
        return redirect(request, _showing(account), error=exc.message)
    if form.get("kind") == "adjust":
        work = ops.adjust(account, amount, reason or "")
    else:
        work = ops.topup(account, amount, reason)
    return await _act(request, _showing(account), _balance_text(work), "Done: the balance is now {result}.")


@post("/operator/accounts/{account:str}/status", status_code=303)
async def set_status(request: Request[Any, Any, Any], account: NamePath) -> Response[Any]:
    form = await request.form()
    status = AccountStatus.SUSPENDED if form.get("status") == "suspended" else AccountStatus.ACTIVE
    work = operations(request).set_account_status(account, status)
    return await _act(request, _showing(account), work, f"Account {status.value}.")


@post("/operator/users", status_code=303)
async def invite_user(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    res = resources(request)

    async def work() -> str:
        role = Role(_text(form, "role") or Role.OWNER)
        async with unit_of_work(res.sessionmaker) as session:
            account = None
            if role is not Role.OPERATOR:
                account = await operations(request).get_account(_text(form, "account"))
            user = await users.create_user(session, _text(form, "email"), str(form.get("password") or ""),
                                           account=account, role=role)  # fmt: skip
        return user.email

    return await _act(request, HOME, work(), "{result} can sign in now.")


@get("/operator/prices")
async def prices_page(request: Request[Any, Any, Any]) -> Response[Any]:
    ops = operations(request)
    return render(request, "operator_prices.html", prices=await ops.list_prices(), tiers=await ops.list_tiers())


@post("/operator/prices", status_code=303)
async def set_price(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    back = "/console/operator/prices"
    try:
        fields = {
            name: _usd(form, name)
            for name in ("input_per_mtok", "output_per_mtok", "per_video_second")
            if _text(form, name)
        }
        if _text(form, "per_image"):
            fields["per_image"] = {"default": _usd(form, "per_image")}  # type: ignore[assignment]
    except GatewayError as exc:
        return redirect(request, back, error=exc.message)
    model = _text(form, "model")
    if not model:
        return redirect(request, back, error="Name the model.")
    return await _act(request, back, operations(request).set_price(model, **fields), f"Price of {model} set.")


@post("/operator/tiers", status_code=303)
async def set_tier(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    back = "/console/operator/prices"
    try:
        multiplier = int(_text(form, "price_multiplier_bp") or "10000")
    except ValueError:
        return redirect(request, back, error="The multiplier is a whole number of basis points.")
    work = operations(request).set_tier(_text(form, "name"), price_multiplier_bp=multiplier)
    return await _act(request, back, work, "Tier saved.")


@get("/operator/codes")
async def codes_page(request: Request[Any, Any, Any]) -> Response[Any]:
    return render(request, "operator_codes.html", created=[])


@post("/operator/codes", status_code=200)
async def create_codes(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    try:
        count = int(_text(form, "count") or "1")
        codes = await operations(request).create_codes(_usd(form, "amount"), count, note=_text(form, "note") or None)
    except (GatewayError, ValueError) as exc:
        message = exc.message if isinstance(exc, GatewayError) else "count is a whole number."
        return render(request, "operator_codes.html", status=400, created=[], error=message)
    # Shown in this answer only: the codes are stored hashed.
    return render(request, "operator_codes.html", created=[plaintext for _, plaintext in codes])


HANDLERS = [
    operator_home, create_account, move_money, set_status, invite_user,
    prices_page, set_price, set_tier, codes_page, create_codes,
]  # fmt: skip
