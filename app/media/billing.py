"""Creating a paid media job: price it, admit it (the Redis hold, in the request's one round trip),
then write the job and its ledger hold in one transaction. The hold then lives in the ledger; the
Redis record of it is dropped (`durable`). If the transaction fails, the Redis hold is given back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from anyio import CancelScope

from app.accounts.auth import Principal
from app.billing.limits.service import Admission
from app.core.money import ModelPrice, image_cost, video_cost
from app.core.queue import transaction
from app.jobs import billing as job_billing
from app.jobs import service
from app.jobs.models import Job, JobKind

if TYPE_CHECKING:
    from app.billing.limits.service import Gate
    from app.channels.catalog import CatalogCache
    from app.core.db import SessionMaker
    from app.core.queue import BrokerSender


class MediaResources(Protocol):
    """What a media job's admission and creation use of the process's resources (passed in)."""

    catalog: CatalogCache
    gate: Gate
    sessionmaker: SessionMaker
    sender: BrokerSender

    async def load_balance(self, account_id: str) -> int: ...


# A media job's Redis hold outlives its deadline by this much before the reconciler may drop it.
HOLD_MARGIN_MS = 3_600_000


def media_cost(price: ModelPrice, kind: str, params: dict[str, Any], multiplier_bp: int) -> int:
    if kind == JobKind.VIDEO:
        return video_cost(price, int(params.get("seconds") or 0), params.get("size"), multiplier_bp)
    return image_cost(price, int(params.get("n") or 1), params.get("size"), params.get("quality"), multiplier_bp)


async def admit_media(res: MediaResources, principal: Principal, job: Job, deadline_seconds: float) -> Admission:
    """402/429 before anything is created; prices the whole job (fixed by its parameters)."""
    price = res.catalog.current.price_for(job.model)
    cost = 0 if price.is_free else media_cost(price, job.kind, job.params or {}, principal.multiplier_bp)
    return await res.gate.admit(
        principal,
        job.id,
        hold=cost,
        hold_ttl_ms=int(deadline_seconds * 1000) + HOLD_MARGIN_MS,
        load_balance=res.load_balance,
    )


async def create_paid_job(res: MediaResources, job: Job, admission: Admission) -> None:
    """Insert the job (its submit step is sent after the commit) with its ledger hold."""
    try:
        async with transaction(res.sessionmaker, res.sender) as session:
            await service.create_media_job(session, job)
            await job_billing.hold(
                await session.connection(),
                account_id=job.account_id,
                job_id=job.id,
                amount=admission.hold,
                model=job.model,
            )
    except BaseException:
        with CancelScope(shield=True):
            await res.gate.settle_many([(admission, 0, 0, "apply")])
        raise
    await res.gate.settle_many([(admission, 0, 0, "durable")])
