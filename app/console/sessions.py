"""Console sessions (an opaque cookie token, stored hashed, with its CSRF token) and the sign-in
throttle (counters in Redis, shared by every web process)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlmodel import col, delete

from app.console.models import ConsoleSession, ConsoleUser, Role
from app.core.db import SessionMaker, unit_of_work, utcnow
from app.core.errors import RateLimited

COOKIE = "ht_console"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking at a console page."""

    session_id: str
    csrf: str
    user_id: str | None
    email: str
    role: str
    account_id: str | None

    @property
    def is_operator(self) -> bool:
        return self.role == Role.OPERATOR

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(sessionmaker: SessionMaker, user: ConsoleUser | None, hours: float) -> str:
    """A new session for `user` (None: the operator by admin token); returns the cookie's token."""
    token = secrets.token_urlsafe(32)
    async with unit_of_work(sessionmaker) as session:
        # Sign-ins clear the expired sessions as they go: the table holds live ones and a few more.
        await session.exec(delete(ConsoleSession).where(col(ConsoleSession.expires_at) <= utcnow()))
        session.add(
            ConsoleSession(
                id=_digest(token),
                user_id=user.id if user else None,
                csrf=secrets.token_urlsafe(24),
                expires_at=utcnow() + dt.timedelta(hours=hours),
            )
        )
    return token


async def load_viewer(sessionmaker: SessionMaker, token: str | None) -> Viewer | None:
    if not token or len(token) > 100:
        return None
    async with sessionmaker() as session:
        row = await session.get(ConsoleSession, _digest(token))
        if row is None or row.expires_at <= utcnow():
            return None
        if row.user_id is None:
            return Viewer(row.id, row.csrf, None, "operator", Role.OPERATOR, None)
        user = await session.get(ConsoleUser, row.user_id)
        if user is None or user.disabled_at is not None:
            return None
        return Viewer(row.id, row.csrf, user.id, user.email, user.role, user.account_id)


async def close_session(sessionmaker: SessionMaker, session_id: str) -> None:
    async with unit_of_work(sessionmaker) as session:
        await session.exec(delete(ConsoleSession).where(col(ConsoleSession.id) == session_id))


def csrf_ok(viewer: Viewer, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(viewer.csrf.encode(), (given or "").encode())


@dataclass(slots=True)
class SignInThrottle:
    """Failed sign-ins counted per e-mail address and per client address over a fixed window."""

    redis: Redis
    prefix: str
    limit: int
    window: int

    def _keys(self, email: str, client: str | None) -> list[str]:
        keys = [f"{self.prefix}console:signin:email:{_digest(email.strip().lower())}"]
        if client:
            keys.append(f"{self.prefix}console:signin:addr:{client}")
        return keys

    async def check(self, email: str, client: str | None) -> None:
        if self.limit <= 0:
            return
        for key in self._keys(email, client):
            count = await self.redis.get(key)
            if count is not None and int(count) >= self.limit:
                ttl = await self.redis.ttl(key)
                wait = max(int(ttl), 1)
                raise RateLimited(
                    f"Too many failed sign-ins; try again in {wait} seconds.",
                    code="too_many_sign_ins",
                    headers={"Retry-After": str(wait)},
                )

    async def failed(self, email: str, client: str | None) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in self._keys(email, client):
                pipe.incr(key)
                pipe.expire(key, self.window, nx=True)
            await pipe.execute()

    async def succeeded(self, email: str) -> None:
        await self.redis.delete(self._keys(email, None)[0])
