"""Embeddings through the response cache (app/cache/): a stored answer, a wait for an identical
request in flight, or the first request, whose answer is stored. Billed as chat hits are
(app/chat/cached.py): the cache price, an exact hold, no tokens against TPM."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from app.accounts.auth import Principal
from app.cache.flights import Abandoned
from app.cache.keys import entry_key
from app.channels.routing import resolve
from app.chat.admission import AdmissionResources, Admitted, admit_embeddings
from app.core.db import utcnow
from app.core.errors import GatewayError
from app.core.money import ModelPrice, token_cost
from app.core.tokens import input_token_bound
from app.embeddings import service
from app.embeddings.schemas import EmbeddingRequest
from app.embeddings.service import EmbeddingResources, with_usage_cost
from app.jobs.models import JobKind, JobStatus
from app.jobs.records import JobRecord

if TYPE_CHECKING:
    from app.cache.policy import CacheMode
    from app.cache.store import CacheStore

Headers = list[tuple[bytes, bytes]]


class CachedEmbeddingResources(EmbeddingResources, AdmissionResources, Protocol):
    cache: CacheStore


def _entry(body: bytes, prompt_tokens: int) -> bytes:
    """The stored form: the prompt tokens on a line of their own, then the body as the upstream sent
    it (the vectors are never decoded)."""
    return b"%d\n" % prompt_tokens + body


def _parse(raw: bytes | None) -> tuple[int, bytes] | None:
    if raw is None:
        return None
    tokens, newline, body = raw.partition(b"\n")
    if not newline or not tokens.isdigit():
        return None
    return int(tokens), body


async def serve(
    res: CachedEmbeddingResources,
    principal: Principal,
    job_id: str,
    params: EmbeddingRequest,
    body: dict[str, Any],
    mode: CacheMode,
    set_headers: Callable[[Headers], None],
) -> tuple[str, bytes]:
    """(`hit` | `coalesced` | `miss`, the response body)."""
    catalog = res.catalog.current
    resolve(catalog, params.model)
    price = catalog.price_for(params.model)
    cache = res.cache
    key = entry_key(cache.prefix, "shared" if mode.shared else principal.account_id, "embeddings", body)
    served = _Served(res, principal, job_id, params, price, mode, set_headers, body["input"])
    while mode.read:
        flight = cache.flights.get(key)
        if flight is None:
            stored = _parse(await cache.get(key))
            if stored is not None:
                cache.metrics.hits += 1
                return "hit", await served.stored("hit", *stored)
            flight = cache.flights.get(key)
        if flight is None:
            break
        cache.metrics.coalesced += 1
        flight.join()
        try:
            result = await flight.outcome()
        except Abandoned:
            continue
        except GatewayError as exc:
            raise served.failed(exc) from None
        finally:
            flight.leave()
        return "coalesced", await served.stored("coalesced", *result)

    cache.metrics.misses += 1
    flight = cache.flights.lead(key)
    admitted: Admitted | None = None
    try:
        admitted = await admit_embeddings(res, principal, job_id, params.model, body["input"])
        set_headers(admitted.admission.headers)
        result, cost = await service.embed_result(res, principal, job_id, params, body, admitted, "miss")
    except BaseException as exc:
        # Refused by its own limits: the waiters try for themselves. An upstream failure is theirs too.
        flight.fail(exc if isinstance(exc, GatewayError) and admitted is not None else Abandoned())
        cache.flights.land(key, flight)
        raise
    flight.finish((result.usage.prompt_tokens, result.body))
    if mode.store:
        await cache.put(key, _entry(result.body, result.usage.prompt_tokens), mode.ttl)
    cache.flights.land(key, flight)
    return "miss", with_usage_cost(result.body, cost)


class _Served:
    """One request answered from a stored (or a flight's) answer."""

    def __init__(
        self,
        res: CachedEmbeddingResources,
        principal: Principal,
        job_id: str,
        params: EmbeddingRequest,
        price: ModelPrice,
        mode: CacheMode,
        set_headers: Callable[[Headers], None],
        raw_input: Any,
    ) -> None:
        self.res, self.principal, self.job_id, self.params = res, principal, job_id, params
        self.price, self.mode, self.set_headers = price, mode, set_headers
        self.started, self.created_at = time.perf_counter(), utcnow()
        self.raw_input = raw_input

    async def stored(self, status: str, prompt_tokens: int, body: bytes) -> bytes:
        full = 0
        if not self.price.is_free:
            # What the request would have been charged upstream: its usage, within its hold's bound.
            bound = input_token_bound(self.raw_input)
            tokens = min(prompt_tokens, bound)
            full = token_cost(self.price, tokens, 0, 0, self.principal.multiplier_bp)
        charge = full * self.mode.price_bp // 10_000
        admission = await self.res.gate.admit(
            self.principal, self.job_id, hold=charge, load_balance=self.res.load_balance
        )
        self.set_headers(admission.headers)
        self._record(status, JobStatus.COMPLETED, prompt_tokens, full, charge, admission)
        return with_usage_cost(body, charge)

    def failed(self, exc: GatewayError) -> GatewayError:
        error = copy.copy(exc)
        error.headers = {**exc.headers, "x-request-id": self.job_id}
        detail = (error.code or "upstream_error", error.message)
        self._record("coalesced", JobStatus.FAILED, None, 0, 0, None, detail, error.status_code)
        return error

    def _record(
        self,
        status: str,
        job_status: JobStatus,
        prompt_tokens: int | None,
        full: int,
        charge: int,
        admission: Any,
        error: tuple[str, str] | None = None,
        http_status: int = 200,
    ) -> None:
        self.res.cache.metrics.saved += full - charge
        usage = None if prompt_tokens is None else {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
        self.res.recorder.record(
            JobRecord(
                id=self.job_id,
                kind=JobKind.EMBEDDING,
                status=job_status,
                account_id=self.principal.account_id,
                api_key_id=self.principal.key_id,
                model=self.params.model,
                usage=usage,
                latency_ms=round((time.perf_counter() - self.started) * 1000),
                http_status=http_status,
                error_code=None if error is None else error[0],
                error_message=None if error is None else error[1],
                created_at=self.created_at,
                attempts_log=[],
                prompt_tokens=prompt_tokens,
                completion_tokens=0 if prompt_tokens is not None else None,
                hold_amount=charge if admission is not None else None,
                cost=charge,
                cache_status=status,
                cache_saved=full - charge,
                admission=admission,
            )
        )
