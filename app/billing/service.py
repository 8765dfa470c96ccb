"""Top-ups, adjustments, redemption codes and prices. Functions take a session and never commit; after
the commit the caller moves the Redis mirror (`Gate.credit`) by the amount returned."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import uuid
from typing import Any

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import Account, Tier
from app.billing import ledger
from app.billing.models import EntryKind, Price, RedemptionCode
from app.core.db import utcnow
from app.core.errors import Conflict, InvalidRequest, NotFound
from app.core.ids import new_id

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_CODE_RE = re.compile(r"^HT(-[A-Z0-9]{4}){4}$")


async def topup(
    session: AsyncSession, account: Account, amount: int, *, reason: str | None = None, key: str | None = None
) -> int:
    """Credit `amount` (> 0). `key` makes a retried top-up a no-op; returns the amount posted (0 if so)."""
    if amount <= 0:
        raise InvalidRequest("A top-up must be a positive amount.", param="amount")
    row = ledger.entry(account.id, EntryKind.TOPUP, amount, key or f"topup:{uuid.uuid4()}", reason=reason)
    return amount if await ledger.post(session, row) else 0


async def adjust(session: AsyncSession, account: Account, amount: int, *, reason: str, key: str | None = None) -> int:
    """A manual correction, either sign, always with a reason."""
    if amount == 0:
        raise InvalidRequest("An adjustment must not be zero.", param="amount")
    if not reason or not reason.strip():
        raise InvalidRequest("An adjustment needs a reason.", param="reason")
    row = ledger.entry(account.id, EntryKind.ADJUSTMENT, amount, key or f"adjust:{uuid.uuid4()}", reason=reason)
    return amount if await ledger.post(session, row) else 0


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def _new_code() -> str:
    groups = ["".join(secrets.choice(_CODE_ALPHABET) for _ in range(4)) for _ in range(4)]
    return "HT-" + "-".join(groups)


async def create_codes(
    session: AsyncSession,
    amount: int,
    count: int = 1,
    *,
    note: str | None = None,
    expires_at: dt.datetime | None = None,
) -> list[tuple[RedemptionCode, str]]:
    """Codes are shown once (only their hash is stored), each redeemable once."""
    if amount <= 0:
        raise InvalidRequest("A code must be worth a positive amount.", param="amount")
    if not 1 <= count <= 1000:
        raise InvalidRequest("count must be between 1 and 1000.", param="count")
    out = []
    for _ in range(count):
        plaintext = _new_code()
        code = RedemptionCode(
            id=new_id("code_"), code_hash=_hash_code(plaintext), amount=amount, note=note, expires_at=expires_at
        )
        session.add(code)
        out.append((code, plaintext))
    await session.flush()
    return out


async def redeem(session: AsyncSession, account: Account, code: str) -> int:
    """Credit the code's amount to the account; a code works once (compare-and-set on redeemed_at)."""
    if not isinstance(code, str) or not _CODE_RE.match(code.strip().upper()):
        raise InvalidRequest(
            "That is not a redemption code (HT-XXXX-XXXX-XXXX-XXXX).", param="code", code="invalid_code"
        )
    found = (await session.exec(select(RedemptionCode).where(RedemptionCode.code_hash == _hash_code(code)))).first()
    if found is None:
        raise NotFound("Unknown redemption code.", param="code", code="code_not_found")
    if found.expires_at is not None and found.expires_at <= utcnow():
        raise Conflict("This redemption code has expired.", param="code", code="code_expired")
    claimed = await session.exec(
        update(RedemptionCode)
        .where(col(RedemptionCode.id) == found.id, col(RedemptionCode.redeemed_at).is_(None))
        .values(redeemed_at=utcnow(), redeemed_by=account.id)
    )
    if claimed.rowcount != 1:
        raise Conflict("This redemption code was already used.", param="code", code="code_already_redeemed")
    row = ledger.entry(account.id, EntryKind.REDEMPTION, found.amount, f"code:{found.id}", reason=found.note)
    await ledger.post(session, row)
    return found.amount


async def set_price(session: AsyncSession, model: str, **fields: Any) -> Price:
    price = await session.get(Price, model) or Price(model=model)
    for name, value in fields.items():
        if value is not None:
            if name not in ("per_image", "per_video_second_by_size") and (not isinstance(value, int) or value < 0):
                raise InvalidRequest(f"{name} must be a non-negative integer (micro-dollars).", param=name)
            setattr(price, name, value)
    price.updated_at = utcnow()
    session.add(price)
    await session.flush()
    return price


async def list_prices(session: AsyncSession) -> list[Price]:
    return list((await session.exec(select(Price).order_by(col(Price.model)))).all())


async def delete_price(session: AsyncSession, model: str) -> Price:
    price = await session.get(Price, model)
    if price is None:
        raise NotFound(f"No price for model {model!r}.", param="model", code="price_not_found")
    await session.delete(price)
    await session.flush()
    return price


async def set_tier(session: AsyncSession, name: str, **fields: Any) -> Tier:
    tier = await session.get(Tier, name) or Tier(name=name)
    for field_name, value in fields.items():
        if value is not None:
            setattr(tier, field_name, value)
    session.add(tier)
    await session.flush()
    return tier
