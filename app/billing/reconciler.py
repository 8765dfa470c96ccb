"""Keeps the Redis balance mirror honest (a periodic task in each web process; one runs at a time).

- Holds whose process died before settling are dropped when they expire.
- Each mirrored account that is quiet (no hold in flight, nothing settled since we looked) is set to its
  database balance, the truth. So whatever went wrong — a crash between commit and settle, a Redis
  restart that lost holds — the mirror converges back to the ledger.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlmodel import col, select

from app.accounts.models import Account
from app.billing.limits.service import Gate
from app.core.db import SessionMaker
from app.core.outage import is_database_outage, outages
from app.core.tasks import Loop

log = logging.getLogger("heytoken.billing.reconciler")


class BillingReconciler:
    def __init__(self, redis: Redis, gate: Gate, sessionmaker: SessionMaker, interval: float) -> None:
        self._redis = redis
        self._gate = gate
        self._sessionmaker = sessionmaker
        self._interval = interval
        self._token = uuid.uuid4().hex
        self._loop = Loop("billing-reconciler", self._step, interval, on_error=self._failed)

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _step(self) -> None:
        # One process reconciles per interval (a lock that lapses before the next one).
        if await self._redis.set(self._gate.key("lock", "billing"), self._token, nx=True, px=int(self._interval * 900)):
            await self.run_once()

    @staticmethod
    def _failed(exc: Exception) -> None:
        if is_database_outage(exc):
            outages.warn("billing_reconcile", exc)
        elif isinstance(exc, RedisError | OSError):
            log.warning("billing.reconcile_skipped redis unreachable")
        else:
            log.error("billing.reconcile_failed", exc_info=exc)

    async def run_once(self) -> dict[str, Any]:
        expired = await self._gate.scripts["expire"](keys=[self._gate.key("holds")], args=[self._gate.key(""), 1000])
        if expired:
            log.warning("billing.holds_expired count=%d (their processes never settled them)", len(expired))
        accounts = sorted(_text(a) for a in await self._redis.smembers(self._gate.key("mirrors")))
        resynced = 0
        for start in range(0, len(accounts), 200):
            chunk = accounts[start : start + 200]
            # `seq` before the database read: any settlement in between changes it and the resync declines.
            seqs = await self._redis.mget([self._gate.key("seq", a) for a in chunk])
            async with self._sessionmaker() as session:
                stmt = select(col(Account.id), col(Account.balance)).where(col(Account.id).in_(chunk))
                rows = (await session.exec(stmt)).all()
            balances = {r[0]: int(r[1]) for r in rows}
            for account_id, seq in zip(chunk, seqs, strict=True):
                if account_id not in balances:
                    await self._redis.delete(self._gate.balance_key(account_id))
                    await self._redis.srem(self._gate.key("mirrors"), account_id)
                    continue
                keys = [
                    self._gate.balance_key(account_id),
                    self._gate.key("inflight", account_id),
                    self._gate.key("seq", account_id),
                ]
                changed = await self._gate.scripts["resync"](keys=keys, args=[_text(seq or b"0"), balances[account_id]])
                if changed == 2:
                    resynced += 1
                    log.warning("billing.mirror_resynced account=%s balance=%d", account_id, balances[account_id])
        return {"expired": len(expired), "resynced": resynced, "accounts": len(accounts)}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
