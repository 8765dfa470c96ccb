"""GET /v1/jobs/{id} for a chat or embedding request whose job row is not written yet.

The hot path writes its job rows in the background, in batches (app/jobs/recorder.py), so for up to
`job_log_flush_ms` (longer while the database is down) the row does not exist; the record waiting in
this process's recorder answers instead. A request served by another web process is found through
Redis when `job_log_preview` is on (app/jobs/preview.py), else once its row is written.
"""

from __future__ import annotations

from typing import Any

from app.accounts.auth import Principal
from app.core.db import utcnow
from app.jobs.models import Job
from app.jobs.preview import PreviewRow
from app.jobs.recorder import JobRecorder
from app.jobs.records import JOB_COLUMNS, JobRecord
from app.jobs.schemas import job_public


async def pending_job(recorder: JobRecorder, principal: Principal, job_id: str) -> dict[str, Any] | None:
    """The job as GET /v1/jobs/{id} shows it, from its pending record (this process's, else, with
    `job_log_preview` on, any process's through Redis); None when there is none (or it is another
    account's: ids must not leak across accounts)."""
    rec: JobRecord | PreviewRow | None = recorder.find(job_id)
    if rec is None and recorder.preview is not None:
        rec = await recorder.preview.find(job_id)
    if rec is None or rec.account_id != principal.account_id:
        return None
    job = Job(**{name: getattr(rec, name) for name in JOB_COLUMNS})
    job.completed_at = job.completed_at or utcnow()
    return {
        **job_public(job),
        "billing": {
            "state": rec.billing_state,
            "hold": rec.hold_amount,
            "captured": rec.cost,
            "unit": "usd_micros",
            # The capture's ledger entries are written with the row.
            "ledger": [],
        },
    }
