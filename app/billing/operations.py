"""Operator actions, shared by the admin API and the `heytoken` CLI. Each is one unit of work; what
must follow in Redis (a revoked key refused everywhere at once, a top-up spendable at once) happens
after the commit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from app.accounts import service as accounts
from app.accounts.limits import LIMIT_NAMES
from app.accounts.models import Account, AccountStatus, ApiKey, Tier
from app.billing import ledger
from app.billing import service as billing
from app.billing.limits.service import Gate
from app.billing.models import LedgerEntry, Price, RedemptionCode
from app.core.db import SessionMaker, unit_of_work
from app.core.errors import InvalidRequest, NotFound


@dataclass(slots=True)
class Operations:
    sessionmaker: SessionMaker
    gate: Gate

    # accounts and keys --------------------------------------------------------------------------
    async def create_account(self, name: str, tier: str = "default") -> Account:
        async with unit_of_work(self.sessionmaker) as session:
            if await session.get(Tier, tier) is None:
                raise InvalidRequest(f"No tier named {tier!r}.", param="tier")
            return await accounts.create_account(session, name, tier=tier)

    async def accounts_page(self, after: str | None, *, limit: int) -> list[Account]:
        async with self.sessionmaker() as session:
            return await accounts.list_accounts(session, after=after, limit=limit)

    async def find_accounts(
        self, search: str | None, *, limit: int, offset: int = 0, hidden: str | None = None
    ) -> list[Account]:
        async with self.sessionmaker() as session:
            return await accounts.find_accounts(session, search, limit=limit, offset=offset, hidden=hidden)

    async def get_account(self, name_or_id: str) -> Account:
        async with self.sessionmaker() as session:
            return await accounts.get_account(session, name_or_id)

    async def set_account_status(self, name_or_id: str, status: AccountStatus) -> Account:
        async with unit_of_work(self.sessionmaker) as session:
            account = await accounts.set_account_status(session, name_or_id, status)
        await self.gate.deny("acct", account.id, status != AccountStatus.ACTIVE)
        return account

    async def set_account_tier(self, name_or_id: str, tier: str) -> Account:
        async with unit_of_work(self.sessionmaker) as session:
            if await session.get(Tier, tier) is None:
                raise InvalidRequest(f"No tier named {tier!r}.", param="tier")
            account = await accounts.get_account(session, name_or_id)
            account.tier = tier
            session.add(account)
            return account

    async def create_key(self, account_name_or_id: str, name: str | None = None) -> tuple[ApiKey, str]:
        async with unit_of_work(self.sessionmaker) as session:
            owner = await accounts.get_account(session, account_name_or_id)
            return await accounts.create_key(session, owner, name=name)

    async def list_keys(self, account_name_or_id: str | None = None) -> list[ApiKey]:
        async with self.sessionmaker() as session:
            owner = await accounts.get_account(session, account_name_or_id) if account_name_or_id else None
            return await accounts.list_keys(session, owner)

    async def revoke_key(self, key_id: str) -> ApiKey:
        async with unit_of_work(self.sessionmaker) as session:
            api_key = await accounts.revoke_key(session, key_id)
        await self.gate.deny("key", api_key.id, True)
        return api_key

    async def set_limits(self, target: str, ident: str, limits: dict[str, int | None]) -> Account | ApiKey:
        """Override limits of a key (`key_…`) or an account; None inherits, 0 switches a limit off.
        Processes pick the change up within the key cache TTL."""
        unknown = set(limits) - set(LIMIT_NAMES)
        if unknown:
            raise InvalidRequest(f"Unknown limits: {', '.join(sorted(unknown))}.", param="limits")
        for name, value in limits.items():
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise InvalidRequest(f"{name} must be a non-negative integer (0 = no limit) or null.", param=name)
        async with unit_of_work(self.sessionmaker) as session:
            obj: Account | ApiKey | None
            if target == "key":
                obj = await session.get(ApiKey, ident)
                if obj is None:
                    raise NotFound(f"No API key {ident!r}.", param="key", code="key_not_found")
            else:
                obj = await accounts.get_account(session, ident)
            for name, value in limits.items():
                setattr(obj, name, value)
            session.add(obj)
            return obj

    # money ---------------------------------------------------------------------------------------
    async def topup(
        self, account_name_or_id: str, amount: int, reason: str | None = None, key: str | None = None
    ) -> int:
        async with unit_of_work(self.sessionmaker) as session:
            account = await accounts.get_account(session, account_name_or_id)
            posted = await billing.topup(session, account, amount, reason=reason, key=key)
        if posted:
            await self.gate.credit(account.id, posted)
        return await self.balance(account.id)

    async def adjust(self, account_name_or_id: str, amount: int, reason: str, key: str | None = None) -> int:
        async with unit_of_work(self.sessionmaker) as session:
            account = await accounts.get_account(session, account_name_or_id)
            posted = await billing.adjust(session, account, amount, reason=reason, key=key)
        if posted:
            await self.gate.credit(account.id, posted)
        return await self.balance(account.id)

    async def redeem(self, account_id: str, code: str) -> int:
        async with unit_of_work(self.sessionmaker) as session:
            account = await accounts.get_account(session, account_id)
            amount = await billing.redeem(session, account, code)
        await self.gate.credit(account.id, amount)
        return amount

    async def create_codes(
        self, amount: int, count: int = 1, note: str | None = None, expires_at: dt.datetime | None = None
    ) -> list[tuple[RedemptionCode, str]]:
        async with unit_of_work(self.sessionmaker) as session:
            return await billing.create_codes(session, amount, count, note=note, expires_at=expires_at)

    async def balance(self, account_id: str) -> int:
        async with self.sessionmaker() as session:
            return await ledger.balance(session, account_id)

    async def ledger_page(self, account_id: str, *, limit: int = 20, before: int | None = None) -> list[LedgerEntry]:
        async with self.sessionmaker() as session:
            stmt = select(LedgerEntry).where(LedgerEntry.account_id == account_id)
            if before is not None:
                stmt = stmt.where(col(LedgerEntry.id) < before)
            stmt = stmt.order_by(col(LedgerEntry.id).desc()).limit(limit)
            return list((await session.exec(stmt)).all())

    async def verify_ledger(self) -> list[tuple[str, int, int]]:
        async with self.sessionmaker() as session:
            return await ledger.verify(session)

    # prices and tiers ----------------------------------------------------------------------------
    async def set_price(self, model: str, **fields: Any) -> Price:
        async with unit_of_work(self.sessionmaker) as session:
            return await billing.set_price(session, model, **fields)

    async def list_prices(self) -> list[Price]:
        async with self.sessionmaker() as session:
            return await billing.list_prices(session)

    async def delete_price(self, model: str) -> Price:
        async with unit_of_work(self.sessionmaker) as session:
            return await billing.delete_price(session, model)

    async def set_tier(self, name: str, **fields: Any) -> Tier:
        async with unit_of_work(self.sessionmaker) as session:
            return await billing.set_tier(session, name, **fields)

    async def list_tiers(self) -> list[Tier]:
        async with self.sessionmaker() as session:
            return list((await session.exec(select(Tier).order_by(col(Tier.name)))).all())
