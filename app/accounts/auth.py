"""Bearer-key authentication with an in-process cache.

The cache keeps the request path free of database round trips: a key is looked up once per TTL per
process. A revoked key is therefore refused on every process within `key_cache_ttl_seconds`. Unknown
keys are remembered too, and an address whose lookups keep failing (someone trying random keys) is
throttled before it costs more queries (app/accounts/throttle.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlmodel import select

from app.accounts.limits import Limits, resolve_limits
from app.accounts.models import Account, AccountStatus, ApiKey, Tier
from app.accounts.service import KEY_PATTERN, hash_key
from app.accounts.throttle import ExpiringCache, FailureThrottle
from app.core.db import SessionMaker
from app.core.errors import AuthenticationFailed, PermissionDenied, database_unavailable
from app.core.outage import is_database_outage
from app.core.singleflight import SingleFlight


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key, the account it belongs to, and what applies to them."""

    key_id: str
    account_id: str
    account_status: str
    tier: str
    limits: Limits
    multiplier_bp: int = 10_000
    """The tier's price multiplier in basis points."""
    cache_ttl: int = 0
    """The key's (else the account's) response-cache default: 0 off, else cached that long."""


_MISSING = AuthenticationFailed(
    "You didn't provide an API key. Send it as 'Authorization: Bearer sk-ht-…'.", code="missing_api_key"
)


def _invalid() -> AuthenticationFailed:
    # One message for malformed, unknown and revoked keys: it must not tell which keys exist.
    return AuthenticationFailed("Incorrect API key provided.")


class KeyAuthenticator:
    MAX_ENTRIES = 100_000
    MAX_UNKNOWN = 10_000
    """Unknown keys remembered (each for the TTL): a separate, smaller cache, so random keys evict only
    each other, never a live key's entry."""

    def __init__(
        self,
        sessionmaker: SessionMaker,
        ttl_seconds: float,
        default_limits: Limits,
        *,
        invalid_key_limit: int = 0,
        invalid_key_window_seconds: float = 60.0,
        redis: Redis | None = None,
        redis_prefix: str = "",
    ) -> None:
        self._sessionmaker = sessionmaker
        self._ttl = ttl_seconds
        self._defaults = default_limits
        self._known: ExpiringCache[Principal] = ExpiringCache(self.MAX_ENTRIES, ttl_seconds)
        self._unknown: ExpiringCache[None] = ExpiringCache(self.MAX_UNKNOWN, ttl_seconds)
        self._loading: SingleFlight[str, Principal | None] = SingleFlight()
        self.throttle = FailureThrottle(
            invalid_key_limit, invalid_key_window_seconds, redis=redis, key_prefix=redis_prefix
        )

    async def authenticate(self, authorization: str | None, client: str | None = None) -> Principal:
        """The caller's principal, or 401/403. `client` (the peer address) lets failed lookups be
        throttled per address (429 `too_many_invalid_keys`) before they cost a database query."""
        if not authorization:
            raise _MISSING
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _MISSING
        if not KEY_PATTERN.match(token):
            raise _invalid()
        digest = hash_key(token)
        now = time.monotonic()
        found, principal = self._known.get(digest, now)
        if not found:
            if self._unknown.get(digest, now)[0]:
                raise _invalid()
            await self.throttle.check(client, now)
            principal = await self._load_once(digest)
            if principal is None:
                await self.throttle.failed(client)
        if principal is None:
            raise _invalid()
        if principal.account_status != AccountStatus.ACTIVE:
            raise PermissionDenied("This account is suspended.", code="account_suspended")
        return principal

    async def _load_once(self, digest: str) -> Principal | None:
        """One database lookup per key however many requests find its entry expired at once: under load
        every in-flight request of a key would otherwise run the same query when the TTL ends."""
        try:
            return await self._loading.run(digest, lambda: self._load_and_cache(digest))
        except Exception as exc:
            if is_database_outage(exc):
                raise database_unavailable(exc, "api_key_lookup") from exc
            raise

    async def _load_and_cache(self, digest: str) -> Principal | None:
        principal = await self._load(digest)
        now = time.monotonic()
        if principal is None:
            self._unknown.put(digest, None, now)
        else:
            self._known.put(digest, principal, now)
        return principal

    async def _load(self, digest: str) -> Principal | None:
        stmt = (
            select(ApiKey, Account, Tier)
            .join(Account, Account.id == ApiKey.account_id)  # type: ignore[arg-type]
            .outerjoin(Tier, Tier.name == Account.tier)  # type: ignore[arg-type]
            .where(ApiKey.key_hash == digest)
        )
        async with self._sessionmaker() as session:
            row = (await session.exec(stmt)).first()
        if row is None:
            return None
        api_key, account, tier = row
        if api_key.revoked_at is not None:
            return None
        return Principal(
            key_id=api_key.id,
            account_id=account.id,
            account_status=account.status,
            tier=account.tier,
            limits=resolve_limits(self._defaults, api_key, account, tier),
            multiplier_bp=tier.price_multiplier_bp if tier is not None else 10_000,
            cache_ttl=_cache_ttl(api_key, account),
        )

    def forget(self, authorization: str | None) -> None:
        """Drop a cached key (admission found it revoked before the cache expired)."""
        token = (authorization or "").partition(" ")[2].strip()
        self._known.pop(hash_key(token))


def _cache_ttl(api_key: ApiKey, account: Account) -> int:
    ttl = api_key.cache_ttl_seconds if api_key.cache_ttl_seconds is not None else account.cache_ttl_seconds
    return ttl or 0
