"""Idempotency-Key (Stripe's semantics, the IETF draft's status codes).

The first request with a key claims it (a unique row per account and key). A retry with the same body
gets the first answer replayed (`idempotent-replayed: true`) — no second job, hold or charge; with a
different body, 422 `idempotency_key_reused`; while the first is still running, 409 with Retry-After.
Only successful answers are kept: a request that failed (validation, 402, 429, upstream error) created
nothing, so its key is released and a retry runs for real. Keys live `idempotency_ttl_hours` (≥ 24 h).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request, Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select

from app.api.calls import Call, Reply
from app.api.deps import call_of, to_response
from app.core.db import SessionMaker, unit_of_work, utcnow
from app.core.errors import Conflict, InvalidRequest, Unprocessable
from app.idempotency.models import IdempotencyRecord, IdempotencyState

HEADER = "idempotency-key"
REPLAYED = "idempotent-replayed"


@dataclass(frozen=True, slots=True)
class Claim:
    record_id: int
    account_id: str


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: bytes
    headers: dict[str, str]


def _describe(value: Any) -> Any:
    """Uploaded files take part in the fingerprint by name, type and size, not their bytes."""
    return {"file": getattr(value, "filename", None), "type": getattr(value, "content_type", None)}


def fingerprint(method: str, path: str, body: Any) -> str:
    """Same request = same method, path (without /v1) and body, whatever the key order."""
    canonical = body if isinstance(body, bytes) else msgspec.json.encode(body, order="sorted", enc_hook=_describe)
    digest = hashlib.sha256(f"{method} {path.removeprefix('/v1')}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not 1 <= len(key) <= 255 or not key.isprintable() or not key.isascii():
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            param="Idempotency-Key",
            code="invalid_idempotency_key",
        )
    return key


async def begin(sessionmaker: SessionMaker, account_id: str, key: str, fp: str, ttl: dt.timedelta) -> Claim | Replay:
    """Claim the key, or say how the earlier request with it answers (raises 409 / 422)."""
    key = check_key(key)
    for _ in range(3):
        try:
            async with unit_of_work(sessionmaker) as session:
                record = IdempotencyRecord(account_id=account_id, key=key, fingerprint=fp, expires_at=utcnow() + ttl)
                session.add(record)
                await session.flush()
                assert record.id is not None
                return Claim(record.id, account_id)
        except IntegrityError:
            pass
        async with unit_of_work(sessionmaker) as session:
            stmt = select(IdempotencyRecord).where(
                IdempotencyRecord.account_id == account_id, IdempotencyRecord.key == key
            )
            existing = (await session.exec(stmt)).first()
            if existing is None:
                continue
            if existing.expires_at <= utcnow():
                await session.delete(existing)
                continue
            if existing.fingerprint != fp:
                raise Unprocessable(
                    "This Idempotency-Key was already used with a different request.",
                    param="Idempotency-Key",
                    code="idempotency_key_reused",
                )
            if existing.state != IdempotencyState.COMPLETED:
                raise Conflict(
                    "A request with this Idempotency-Key is still being processed; retry shortly.",
                    param="Idempotency-Key",
                    code="idempotency_key_in_use",
                    headers={"retry-after": "1"},
                )
            return Replay(
                existing.response_status or 200, existing.response_body or b"", dict(existing.response_headers or {})
            )
    raise Conflict(
        "Could not claim the Idempotency-Key; retry shortly.",
        param="Idempotency-Key",
        code="idempotency_key_in_use",
        headers={"retry-after": "1"},
    )


async def complete(
    sessionmaker: SessionMaker,
    claim: Claim,
    status: int,
    body: bytes,
    headers: dict[str, str],
    job_id: str | None = None,
) -> None:
    async with unit_of_work(sessionmaker) as session:
        record = await session.get(IdempotencyRecord, claim.record_id)
        if record is None:
            return
        record.state = IdempotencyState.COMPLETED
        record.response_status, record.response_body, record.response_headers = status, body, headers
        record.job_id = job_id
        session.add(record)


async def release(sessionmaker: SessionMaker, claim: Claim) -> None:
    async with unit_of_work(sessionmaker) as session:
        await session.exec(delete(IdempotencyRecord).where(col(IdempotencyRecord.id) == claim.record_id))


async def purge_expired(sessionmaker: SessionMaker) -> int:
    async with unit_of_work(sessionmaker) as session:
        result = await session.exec(delete(IdempotencyRecord).where(col(IdempotencyRecord.expires_at) <= utcnow()))
        return int(result.rowcount or 0)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: bytes
    headers: dict[str, str]
    job_id: str | None = None


async def run_idempotent(
    sessionmaker: SessionMaker, ttl: dt.timedelta, account_id: str, key: str | None, fp: str, work: Any
) -> tuple[Outcome, bool]:
    """Run `work()` (→ Outcome) at most once per key; returns (outcome, replayed)."""
    if key is None:
        return await work(), False
    claimed = await begin(sessionmaker, account_id, key, fp, ttl)
    if isinstance(claimed, Replay):
        return Outcome(claimed.status, claimed.body, claimed.headers), True
    try:
        outcome: Outcome = await work()
    except BaseException:
        # Nothing was created: free the key so the client's retry runs for real.
        from anyio import CancelScope

        with CancelScope(shield=True):
            await release(sessionmaker, claimed)
        raise
    if 200 <= outcome.status < 300:
        await complete(sessionmaker, claimed, outcome.status, outcome.body, outcome.headers, outcome.job_id)
    else:
        await release(sessionmaker, claimed)
    return outcome, False


async def idempotent_reply(call: Call, body: Any, work: Callable[[], Awaitable[Outcome]]) -> Reply:
    """Run a work-creating route under its `Idempotency-Key` (if any) and answer with the outcome."""
    key = call.idempotency_key
    if key is None:
        # The common case: no key, nothing to claim, so no fingerprint (a sorted re-encode of the body).
        outcome, replayed = await work(), False
    else:
        fp = fingerprint(call.method, call.path, body)
        ttl = dt.timedelta(hours=call.res.settings.idempotency_ttl_hours)
        outcome, replayed = await run_idempotent(call.res.sessionmaker, ttl, call.principal.account_id, key, fp, work)
    headers = {**outcome.headers, REPLAYED: "true"} if replayed else outcome.headers
    headers.pop("content-length", None)
    return Reply(outcome.status, outcome.body, headers)


async def idempotent_response(
    request: Request[Any, Any, Any], body: Any, work: Callable[[], Awaitable[Outcome]]
) -> Response[Any]:
    return to_response(await idempotent_reply(call_of(request), body, work))
