"""GET /v1/jobs/{id}: any job of the caller's account (a chat completion's id is its job id)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from app.api.api_docs import docs
from app.api.deps import principal_of, resources_of
from app.billing import ledger
from app.billing.schemas import entry_public
from app.core.errors import NotFound
from app.core.params import IdPath
from app.jobs.models import Job
from app.jobs.pending import pending_job
from app.jobs.schemas import JobObject, job_public


@get("/jobs/{job_id:str}", operation_id="retrieveJob", responses=docs(JobObject, 404))
async def retrieve_job(request: Request[Any, Any, Any], job_id: IdPath) -> dict[str, Any]:
    principal = principal_of(request)
    pending = await pending_job(resources_of(request).recorder, principal, job_id)
    if pending is not None:
        return pending
    async with resources_of(request).sessionmaker() as session:
        job = await session.get(Job, job_id)
        # Another account's job reads as unknown: ids must not leak across accounts.
        if job is None or job.account_id != principal.account_id or job.deleted_at is not None:
            raise NotFound(f"No job found with id '{job_id}'.", param="id", code="job_not_found")
        entries = await ledger.entries_for_job(session, job.id)
    return {
        **job_public(job),
        "billing": {
            "state": job.billing_state,
            "hold": job.hold_amount,
            "captured": job.cost,
            "unit": "usd_micros",
            "ledger": [entry_public(e) for e in entries],
        },
    }
