"""Every request of the account, one job's whole life (attempts, hold and capture, files, webhook
events with every attempt and a redeliver button), and the gallery of stored images and videos."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from sqlmodel import col, select

from app.billing import ledger
from app.billing.schemas import entry_public
from app.console.pages import redirect, render
from app.console.resources import account_id, resources
from app.core.errors import GatewayError, NotFound
from app.core.params import FormQuery, IdPath, PageNumber
from app.core.queue import transaction
from app.jobs.models import Job, JobKind, JobStatus
from app.jobs.schemas import job_public
from app.webhooks import service as webhooks

PAGE = 50
LINK_TTL_SECONDS = 3600


async def _own_job(request: Request[Any, Any, Any], job_id: str) -> Job:
    async with resources(request).sessionmaker() as session:
        job = await session.get(Job, job_id)
    # Another account's job reads as unknown, as it does in the API.
    if job is None or job.account_id != account_id(request) or job.deleted_at is not None:
        raise NotFound(f"No job found with id '{job_id}'.", param="id", code="job_not_found")
    return job


@get("/jobs")
async def jobs_page(
    request: Request[Any, Any, Any],
    kind: FormQuery = None,
    status: FormQuery = None,
    model: FormQuery = None,
    page: PageNumber = 1,
) -> Response[Any]:
    stmt = select(Job).where(col(Job.account_id) == account_id(request), col(Job.deleted_at).is_(None))
    if kind:
        stmt = stmt.where(col(Job.kind) == kind)
    if status:
        stmt = stmt.where(col(Job.status) == status)
    if model:
        stmt = stmt.where(col(Job.model) == model)
    stmt = stmt.order_by(col(Job.created_at).desc(), col(Job.id).desc()).offset((page - 1) * PAGE).limit(PAGE + 1)
    async with resources(request).sessionmaker() as session:
        rows = list((await session.exec(stmt)).all())
    return render(
        request, "jobs.html", jobs=rows[:PAGE], page=page, has_more=len(rows) > PAGE,
        filters={"kind": kind or "", "status": status or "", "model": model or ""},
        kinds=[k.value for k in JobKind], statuses=[s.value for s in JobStatus],
    )  # fmt: skip


def _files(request: Request[Any, Any, Any], job: Job) -> list[dict[str, Any]]:
    store = resources(request).store
    files = []
    for asset in job.assets or []:
        name = asset["key"].rsplit("/", 1)[-1]
        files.append(
            {
                **asset,
                "name": name,
                "url": store.signed_url(asset["key"], LINK_TTL_SECONDS),
                "download": store.signed_url(asset["key"], LINK_TTL_SECONDS, filename=name),
            }
        )
    return files


@get("/jobs/{job_id:str}")
async def job_page(request: Request[Any, Any, Any], job_id: IdPath) -> Response[Any]:
    job = await _own_job(request, job_id)
    async with resources(request).sessionmaker() as session:
        entries = await ledger.entries_for_job(session, job.id)
        events, _ = await webhooks.list_events(session, job.account_id, job_id=job.id, limit=100, descending=False)
        rendered = await webhooks.render_events(session, events)
    history = [("created", job.created_at), ("started", job.started_at), (job.status, job.completed_at)]
    return render(
        request, "job.html", job=job, public=job_public(job), files=_files(request, job),
        ledger=[{**entry_public(e), "created": e.created_at} for e in entries], events=rendered,
        history=[(what, when) for what, when in history if when is not None],
    )  # fmt: skip


@post("/jobs/{job_id:str}/events/{event_id:str}/redeliver", status_code=303)
async def redeliver(request: Request[Any, Any, Any], job_id: IdPath, event_id: IdPath) -> Response[Any]:
    job = await _own_job(request, job_id)
    res = resources(request)
    back = f"/console/jobs/{job.id}"
    try:
        async with transaction(res.sessionmaker, res.sender) as session:
            event = await webhooks.get_event(session, job.account_id, event_id)
            if event.job_id != job.id:
                raise NotFound(f"No webhook event found with id '{event_id}'.", code="webhook_event_not_found")
            await webhooks.redeliver(session, job.account_id, event_id, None)
    except GatewayError as exc:
        if isinstance(exc, NotFound):
            raise
        return redirect(request, back, error=exc.message)
    return redirect(request, back, notice=f"Event {event_id} is being sent again.")


@get("/gallery")
async def gallery_page(request: Request[Any, Any, Any]) -> Response[Any]:
    stmt = (
        select(Job)
        .where(
            col(Job.account_id) == account_id(request),
            col(Job.deleted_at).is_(None),
            col(Job.kind).in_([JobKind.IMAGE.value, JobKind.VIDEO.value]),
            col(Job.status) == JobStatus.COMPLETED.value,
        )
        .order_by(col(Job.created_at).desc())
        .limit(60)
    )
    async with resources(request).sessionmaker() as session:
        jobs = list((await session.exec(stmt)).all())
    items = []
    for job in jobs:
        for f in _files(request, job):
            if f.get("variant") in ("image", "video"):
                items.append({"job": job, **f})
    return render(request, "gallery.html", items=items)


HANDLERS = [jobs_page, job_page, redeliver, gallery_page]
