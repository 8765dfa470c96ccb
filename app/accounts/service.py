"""Accounts and API keys: create, list, revoke. Functions take a session and never commit."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import Account, AccountStatus, ApiKey
from app.core.db import utcnow
from app.core.errors import Conflict, InvalidRequest, NotFound
from app.core.ids import new_id

KEY_PREFIX = "sk-ht-"
# 32 random bytes, URL-safe base64 without padding: always 43 characters.
KEY_PATTERN = re.compile(r"^sk-ht-[A-Za-z0-9_-]{43}$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,199}$")


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    # A fast hash is enough: the key is 256 random bits, there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def mask_key(api_key: ApiKey) -> str:
    return f"{api_key.prefix}…{api_key.last4}"


async def create_account(session: AsyncSession, name: str, *, tier: str = "default") -> Account:
    if not NAME_PATTERN.match(name):
        raise InvalidRequest(
            "Account name must be 1-200 characters of letters, digits, '.', '_', '@' or '-'.", param="name"
        )
    if await find_account(session, name) is not None:
        raise Conflict(f"An account named {name!r} already exists.", param="name", code="account_exists")
    account = Account(id=new_id("acct_"), name=name, tier=tier)
    session.add(account)
    await session.flush()
    return account


async def find_account(session: AsyncSession, name_or_id: str) -> Account | None:
    stmt = select(Account).where((col(Account.name) == name_or_id) | (col(Account.id) == name_or_id))
    return (await session.exec(stmt)).first()


async def get_account(session: AsyncSession, name_or_id: str) -> Account:
    account = await find_account(session, name_or_id)
    if account is None:
        raise NotFound(f"No account {name_or_id!r}.", param="account", code="account_not_found")
    return account


async def list_accounts(session: AsyncSession, *, after: str | None = None, limit: int | None = None) -> list[Account]:
    """Accounts in the order they were made (ids are ULIDs); `limit` of them from the one after `after`."""
    stmt = select(Account).order_by(col(Account.id))
    if after is not None:
        stmt = stmt.where(col(Account.id) > after)
    return list((await session.exec(stmt.limit(limit))).all())


async def find_accounts(
    session: AsyncSession, search: str | None, *, limit: int, offset: int = 0, hidden: str | None = None
) -> list[Account]:
    """Accounts by name, `limit` of them from `offset`: those whose name contains `search` (any case) or
    whose id it is, every one without it; never the one named `hidden`."""
    stmt = select(Account)
    if search:
        name = col(Account.name)
        stmt = stmt.where((name.icontains(search, autoescape=True)) | (col(Account.id) == search))
    if hidden is not None:
        stmt = stmt.where(col(Account.name) != hidden)
    stmt = stmt.order_by(col(Account.name)).offset(offset).limit(limit)
    return list((await session.exec(stmt)).all())


async def set_account_status(session: AsyncSession, name_or_id: str, status: AccountStatus) -> Account:
    account = await get_account(session, name_or_id)
    account.status = status
    session.add(account)
    await session.flush()
    return account


async def create_key(session: AsyncSession, account: Account, *, name: str | None = None) -> tuple[ApiKey, str]:
    """Create a key; the plaintext is returned here and never again (only its hash is stored)."""
    plaintext = generate_key()
    api_key = ApiKey(
        id=new_id("key_"),
        account_id=account.id,
        name=name,
        key_hash=hash_key(plaintext),
        prefix=plaintext[:10],
        last4=plaintext[-4:],
    )
    session.add(api_key)
    await session.flush()
    return api_key, plaintext


async def list_keys(session: AsyncSession, account: Account | None = None) -> list[ApiKey]:
    stmt = select(ApiKey).order_by(col(ApiKey.created_at))
    if account is not None:
        stmt = stmt.where(ApiKey.account_id == account.id)
    return list((await session.exec(stmt)).all())


async def revoke_key(session: AsyncSession, key_id: str) -> ApiKey:
    api_key = await session.get(ApiKey, key_id)
    if api_key is None:
        raise NotFound(f"No API key {key_id!r}.", param="key", code="key_not_found")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        session.add(api_key)
        await session.flush()
    return api_key
