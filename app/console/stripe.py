"""Top-up by card through Stripe Checkout: create a Checkout Session, and take Stripe's signed
`checkout.session.completed` webhook as the proof of payment. The credit goes through the same
top-up as the admin API, under the idempotency key `stripe:<session id>`: however often Stripe sends
the event, the ledger takes it once."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlmodel import col, update

from app.billing.operations import Operations
from app.console.models import StripeCheckout
from app.core.db import SessionMaker, unit_of_work, utcnow
from app.core.errors import InvalidRequest, ServiceUnavailable
from app.core.money import UNITS_PER_USD
from app.core.settings import Settings

SIGNATURE_TOLERANCE_SECONDS = 300
"""Stripe's own libraries refuse a signature older than this (a replayed request)."""
TIMEOUT = aiohttp.ClientTimeout(total=15)
MICROS_PER_CENT = UNITS_PER_USD // 100


def enabled(settings: Settings) -> bool:
    return settings.stripe_secret_key is not None and settings.stripe_webhook_secret is not None


@dataclass(frozen=True, slots=True)
class Checkout:
    id: str
    url: str


async def create_checkout(
    http: aiohttp.ClientSession,
    sessionmaker: SessionMaker,
    settings: Settings,
    *,
    account_id: str,
    cents: int,
    return_url: str,
) -> Checkout:
    """POST /v1/checkout/sessions, then remember the session (what it will credit, to whom)."""
    assert settings.stripe_secret_key is not None
    if not settings.stripe_min_topup_cents <= cents <= settings.stripe_max_topup_cents:
        low, high = settings.stripe_min_topup_cents / 100, settings.stripe_max_topup_cents / 100
        raise InvalidRequest(f"A top-up is between ${low:.2f} and ${high:.2f}.", param="amount")
    form = {
        "mode": "payment",
        "success_url": f"{return_url}?checkout=success",
        "cancel_url": f"{return_url}?checkout=cancelled",
        "client_reference_id": account_id,
        "metadata[account_id]": account_id,
        "metadata[amount_micros]": str(cents * MICROS_PER_CENT),
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": settings.stripe_currency,
        "line_items[0][price_data][unit_amount]": str(cents),
        "line_items[0][price_data][product_data][name]": "HeyToken credit",
    }
    headers = {"Authorization": f"Bearer {settings.stripe_secret_key.get_secret_value()}"}
    url = settings.stripe_api_base.rstrip("/") + "/v1/checkout/sessions"
    try:
        async with http.post(url, data=form, headers=headers, timeout=TIMEOUT, allow_redirects=False) as answer:
            body = await answer.read()
            status = answer.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ServiceUnavailable("The payment provider cannot be reached; try again shortly.") from exc
    try:
        session = json.loads(body)
        checkout = Checkout(str(session["id"]), str(session["url"]))
    except (ValueError, KeyError, TypeError):
        checkout = None
    if status != 200 or checkout is None:
        raise ServiceUnavailable(f"The payment provider refused the checkout (HTTP {status}).")
    async with unit_of_work(sessionmaker) as db:
        db.add(StripeCheckout(id=checkout.id, account_id=account_id, amount=cents * MICROS_PER_CENT))
    return checkout


def verify_signature(payload: bytes, header: str | None, secret: str, *, now: float | None = None) -> dict[str, Any]:
    """Stripe's scheme: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.payload">[,v1=…]`."""
    timestamp, signatures = None, []
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamp = value
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not timestamp.isdigit() or not signatures:
        raise InvalidRequest("Missing or malformed Stripe-Signature header.", code="invalid_signature")
    if abs((now or time.time()) - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
        raise InvalidRequest("The Stripe signature is too old.", code="invalid_signature")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + payload, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise InvalidRequest("The Stripe signature does not match.", code="invalid_signature")
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise InvalidRequest("The Stripe event is not JSON.", code="invalid_json") from exc
    if not isinstance(event, dict):
        raise InvalidRequest("The Stripe event is not an object.", code="invalid_json")
    return event


async def handle_event(sessionmaker: SessionMaker, ops: Operations, event: dict[str, Any]) -> str:
    """Credit a paid checkout once; returns what happened (for the log and the answer)."""
    if event.get("type") not in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        return "ignored"
    obj = (event.get("data") or {}).get("object") or {}
    if obj.get("payment_status") != "paid" or not isinstance(obj.get("id"), str):
        return "not_paid"
    async with sessionmaker() as db:
        checkout = await db.get(StripeCheckout, obj["id"])
    if checkout is None:
        # Paid, but our row is missing (the database failed after Stripe made the session): the
        # metadata we gave Stripe says whom and how much; the signature says it is Stripe's.
        checkout = _from_metadata(obj)
        if checkout is None:
            return "unknown_session"
        async with unit_of_work(sessionmaker) as db:
            db.add(checkout)
    await ops.topup(checkout.account_id, checkout.amount, reason=f"Stripe Checkout {checkout.id}",
                    key=f"stripe:{checkout.id}")  # fmt: skip
    async with unit_of_work(sessionmaker) as db:
        await db.exec(
            update(StripeCheckout)
            .where(col(StripeCheckout.id) == checkout.id, col(StripeCheckout.completed_at).is_(None))
            .values(completed_at=utcnow(), last_event_id=str(event.get("id") or "")[:255])
        )
    return "credited"


def _from_metadata(obj: dict[str, Any]) -> StripeCheckout | None:
    metadata = obj.get("metadata") or {}
    account, amount = metadata.get("account_id"), str(metadata.get("amount_micros") or "")
    if not isinstance(account, str) or not account or not amount.isdigit() or int(amount) <= 0:
        return None
    return StripeCheckout(id=str(obj["id"]), account_id=account, amount=int(amount))
