"""Billing: balance, what requests in flight hold, the ledger with its running balance, redeem a code,
top up by card (Stripe Checkout), and Stripe's webhook."""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Request, Response, get, post

from app.billing.schemas import entry_public
from app.console import stripe
from app.console.pages import redirect, render
from app.console.resources import account_id, operations, resources
from app.core.errors import GatewayError, InvalidRequest
from app.core.money import format_usd
from app.core.params import Cursor64

log = logging.getLogger("heytoken.console")
PAGE = 50


async def _held(request: Request[Any, Any, Any], account: str, balance: int) -> int:
    """The balance minus what its Redis mirror has left to spend: the holds of requests in flight."""
    res = resources(request)
    mirror = await res.redis.get(res.gate.balance_key(account))
    try:
        return max(0, balance - int(mirror)) if mirror is not None else 0
    except ValueError:
        return 0


@get("/billing")
async def billing_page(request: Request[Any, Any, Any], before: Cursor64 = None) -> Response[Any]:
    account_ident = account_id(request)
    ops = operations(request)
    account = await ops.get_account(account_ident)
    entries = await ops.ledger_page(account_ident, limit=PAGE + 1, before=before)
    page = entries[:PAGE]
    # The running balance after each entry, newest first: the newest is the balance itself.
    running = await ops.balance(account_ident) if before is None else await _balance_before(request, before)
    rows = []
    for entry in page:
        rows.append({**entry_public(entry), "created": entry.created_at, "balance_after": running})
        running -= entry.amount
    checkout = request.query_params.get("checkout")
    return render(
        request, "billing.html", account=account, balance=account.balance,
        held=await _held(request, account_ident, account.balance), entries=rows,
        next_before=page[-1].id if len(entries) > PAGE and page else None,
        stripe_enabled=stripe.enabled(resources(request).settings),
        notice=("Payment received: your balance is credited as soon as Stripe confirms it."
                if checkout == "success" else None),
    )  # fmt: skip


async def _balance_before(request: Request[Any, Any, Any], before: int) -> int:
    """The balance just after the entry preceding id `before` (later pages of the ledger)."""
    ops = operations(request)
    account_ident = account_id(request)
    later = 0
    cursor: int | None = None
    balance = await ops.balance(account_ident)
    while True:
        chunk = await ops.ledger_page(account_ident, limit=500, before=cursor)
        for entry in chunk:
            if entry.id is not None and entry.id < before:
                return balance - later
            later += entry.amount
        if len(chunk) < 500:
            return balance - later
        cursor = chunk[-1].id


@post("/billing/redeem", status_code=303)
async def redeem(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    try:
        amount = await operations(request).redeem(account_id(request), str(form.get("code") or ""))
    except GatewayError as exc:
        return redirect(request, "/console/billing", error=exc.message)
    return redirect(request, "/console/billing", notice=f"Code redeemed: {format_usd(amount)} credited.")


def parse_dollars(value: str) -> int:
    try:
        amount = Decimal(value.strip().lstrip("$"))
    except InvalidOperation as exc:
        raise InvalidRequest("Give an amount in dollars, e.g. 20 or 20.50.", param="amount") from exc
    cents = amount * 100
    if cents != cents.to_integral_value() or cents <= 0:
        raise InvalidRequest("Give an amount in dollars and whole cents.", param="amount")
    return int(cents)


@post("/billing/checkout", status_code=303)
async def start_checkout(request: Request[Any, Any, Any]) -> Response[Any]:
    res = resources(request)
    if not stripe.enabled(res.settings):
        return redirect(request, "/console/billing", error="Top-up by card is not configured on this gateway.")
    form = await request.form()
    try:
        checkout = await stripe.create_checkout(
            res.upstream, res.sessionmaker, res.settings, account_id=account_id(request),
            cents=parse_dollars(str(form.get("amount") or "")),
            return_url=res.settings.resolved_public_base_url() + "/console/billing",
        )  # fmt: skip
    except GatewayError as exc:
        return redirect(request, "/console/billing", error=exc.message)
    # To Stripe's own page: its Checkout URL is the one place a card number is typed.
    return redirect(request, checkout.url)


@post("/stripe/webhook", status_code=200)
async def stripe_webhook(request: Request[Any, Any, Any]) -> dict[str, str]:
    res = resources(request)
    if not stripe.enabled(res.settings):
        raise InvalidRequest("Stripe is not configured.", code="stripe_not_configured")
    assert res.settings.stripe_webhook_secret is not None
    payload = await request.body()
    event = stripe.verify_signature(
        payload, request.headers.get("stripe-signature"), res.settings.stripe_webhook_secret.get_secret_value()
    )
    outcome = await stripe.handle_event(res.sessionmaker, operations(request), event)
    log.info("console.stripe_event id=%s type=%s outcome=%s", event.get("id"), event.get("type"), outcome)
    return {"received": "true", "outcome": outcome}


HANDLERS = [billing_page, redeem, start_checkout, stripe_webhook]
