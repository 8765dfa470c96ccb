"""Console users: e-mail + password (argon2id), invited by the operator or an account's owner.
Functions take a session and never commit."""

from __future__ import annotations

import asyncio
import re
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import Account
from app.console.models import ConsoleUser, Role
from app.core.errors import Conflict, InvalidRequest, NotFound
from app.core.ids import new_id

if TYPE_CHECKING:
    from argon2 import PasswordHasher

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
"""argon2 hashes any length; the cap only keeps a sign-in request from costing more than it should."""


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    # argon2-cffi's defaults (RFC 9106's low-memory profile: argon2id, t=3, m=64 MiB). Imported on the
    # first sign-in or invitation, not by every web process at start-up (issue #23: argon2-cffi and
    # its cffi bindings stay out of a process that serves only the API).
    from argon2 import PasswordHasher

    return PasswordHasher()


async def hash_password(password: str) -> str:
    # ~50 ms of CPU: off the event loop, so other requests keep being served meanwhile.
    return await asyncio.to_thread(hasher().hash, password)


async def check_password(stored: str | None, password: str) -> bool:
    """Constant work whether the user exists or not (a missing user verifies against a dummy hash)."""
    target = stored or _dummy_hash()
    from argon2.exceptions import InvalidHashError, VerificationError  # loaded by hasher() already

    try:
        ok = await asyncio.to_thread(hasher().verify, target, password)
    except (VerificationError, InvalidHashError):
        return False
    return bool(ok) and stored is not None


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hasher().hash("no user has this password")


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL.match(email):
        raise InvalidRequest("That is not an e-mail address.", param="email", code="invalid_email")
    return email


def check_new_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidRequest(
            f"A password has {MIN_PASSWORD} to {MAX_PASSWORD} characters.", param="password", code="weak_password"
        )
    return password


async def create_user(
    session: AsyncSession, email: str, password: str, *, account: Account | None, role: Role
) -> ConsoleUser:
    email = normalise_email(email)
    check_new_password(password)
    if (account is None) != (role is Role.OPERATOR):
        raise InvalidRequest("An operator has no account; everyone else has one.", param="role")
    if await find_user(session, email) is not None:
        raise Conflict(f"A user {email!r} already exists.", param="email", code="user_exists")
    user = ConsoleUser(
        id=new_id("user_"),
        email=email,
        account_id=account.id if account else None,
        role=role,
        password_hash=await hash_password(password),
    )
    session.add(user)
    await session.flush()
    return user


async def find_user(session: AsyncSession, email: str) -> ConsoleUser | None:
    stmt = select(ConsoleUser).where(col(ConsoleUser.email) == email.strip().lower())
    return (await session.exec(stmt)).first()


async def list_users(
    session: AsyncSession, account_id: str | None, *, after: str | None = None, limit: int | None = None
) -> list[ConsoleUser]:
    """People in the order they were made (ids are ULIDs): an account's, or everyone; `limit` of them
    from the one after `after`."""
    stmt = select(ConsoleUser).order_by(col(ConsoleUser.id))
    if account_id is not None:
        stmt = stmt.where(col(ConsoleUser.account_id) == account_id)
    if after is not None:
        stmt = stmt.where(col(ConsoleUser.id) > after)
    return list((await session.exec(stmt.limit(limit))).all())


async def list_people(session: AsyncSession, account_ids: list[str]) -> list[ConsoleUser]:
    """The operators and the people of these accounts."""
    account = col(ConsoleUser.account_id)
    stmt = select(ConsoleUser).where(account.is_(None) | account.in_(account_ids))
    return list((await session.exec(stmt.order_by(col(ConsoleUser.created_at)))).all())


async def authenticate(session: AsyncSession, email: str, password: str) -> ConsoleUser | None:
    user = await find_user(session, email or "")
    stored = user.password_hash if user is not None and user.disabled_at is None else None
    if not await check_password(stored, (password or "")[:MAX_PASSWORD]):
        return None
    assert user is not None
    if hasher().check_needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
        session.add(user)
    return user


async def get_user(session: AsyncSession, user_id: str, account_id: str | None) -> ConsoleUser:
    user = await session.get(ConsoleUser, user_id)
    if user is None or (account_id is not None and user.account_id != account_id):
        raise NotFound(f"No user {user_id!r}.", param="user", code="user_not_found")
    return user
