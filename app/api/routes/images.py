"""POST /v1/images/generations: a job behind a synchronous façade; GET /v1/images/generations/{id}."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import JSONBody

from app.api import idempotency
from app.api.api_docs import docs
from app.api.api_edge import body_of
from app.api.deps import principal_of, resources_of, set_rate_headers
from app.api.idempotency import idempotent_response
from app.api.resources import Resources
from app.channels.routing import pick
from app.core.errors import GatewayError, GenerationTimeout, InvalidRequest, UpstreamFailed
from app.core.params import IdempotencyKey, IdPath, Prefer
from app.jobs import service
from app.jobs.models import Job, JobKind
from app.media.billing import admit_media, create_paid_job
from app.media.images import (
    ImageCreateBody,
    ImageGeneration,
    ImagesResponse,
    image_create,
    image_job_object,
    images_response,
)
from app.webhooks.service import check_url

_encode = msgspec.json.Encoder().encode
# Failures that describe the request itself (a 400 for the caller), not the service.
CLIENT_FAULTS = ("upstream_rejected", "content_policy_violation", "moderation_blocked", "invalid_request")


def _json(payload: Any, job: Job, status: int = 200) -> Response[bytes]:
    return Response(
        content=_encode(payload), status_code=status, media_type="application/json", headers={"x-request-id": job.id}
    )


def _wants_async(prefer: str | None) -> bool:
    return any(part.strip().lower() == "respond-async" for part in (prefer or "").split(","))


async def wait_for_job(res: Resources, job_id: str, timeout_s: float) -> Job:
    """Poll the row (cheap, indexed by id) until the job is terminal or `timeout_s` has passed."""
    deadline = time.monotonic() + timeout_s
    pause = 0.05
    while True:
        async with res.sessionmaker() as session:
            job = await service.load_job(session, job_id)
        assert job is not None
        if job.status in ("completed", "failed", "cancelled") or time.monotonic() >= deadline:
            return job
        await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 1.5, 0.5)


def _job_error(job: Job) -> GatewayError:
    message = f"{job.error_message or 'The image generation failed.'} (job {job.id})"
    if job.error_code in CLIENT_FAULTS or (job.error_code or "").startswith("invalid"):
        return InvalidRequest(message, code=job.error_code)
    error = UpstreamFailed(message, code=job.error_code or "upstream_error")
    error.headers["x-should-retry"] = "false"
    return error


@post(
    "/images/generations",
    status_code=200,
    operation_id="createImage",
    responses={
        **docs(ImagesResponse, 402, 404, 409, 504),
        **docs(ImageGeneration, status=202, description="Accepted (`Prefer: respond-async`)", common=()),
    },
)
async def create_image(
    request: Request[Any, Any, Any],
    data: JSONBody[ImageCreateBody],
    idempotency_key: IdempotencyKey = None,
    prefer: Prefer = None,
) -> Response[bytes]:
    res = resources_of(request)
    body = await body_of(request)
    create = image_create(data, body)
    await check_url(res.url_guard, create.webhook_url, "webhook_url")
    route = pick(res.catalog.current, create.model)
    service.check_capability(route, JobKind.IMAGE)

    async def work() -> idempotency.Outcome:
        job = service.new_media_job(
            kind=JobKind.IMAGE,
            principal=principal_of(request),
            model=create.model,
            channel_id=route.channel_id,
            prompt=create.prompt,
            params=create.params(),
            metadata=create.metadata,
            webhook_url=create.webhook_url,
            webhook_events=create.webhook_events,
            deadline_seconds=res.settings.image_deadline_seconds,
        )
        admission = await admit_media(res, principal_of(request), job, res.settings.image_deadline_seconds)
        set_rate_headers(request, admission.headers)
        await create_paid_job(res, job, admission)
        ttl = res.settings.signed_url_ttl_seconds
        if _wants_async(prefer):
            response = _json(await image_job_object(job, res.store, ttl), job, status=202)
            return idempotency.Outcome(202, bytes(response.content), dict(response.headers), job.id)
        job = await wait_for_job(res, job.id, res.settings.image_wait_seconds)
        if job.status == "completed":
            response = _json(await images_response(job, res.store, ttl), job)
            return idempotency.Outcome(200, bytes(response.content), dict(response.headers), job.id)
        if job.status in ("failed", "cancelled"):
            raise _job_error(job)
        raise GenerationTimeout(
            f"The image is still being generated; fetch it later with GET /v1/images/generations/{job.id}.",
            job_id=job.id,
        )

    return await idempotent_response(request, body, work)


@get("/images/generations/{image_id:str}", operation_id="retrieveImageGeneration", responses=docs(ImageGeneration, 404))
async def retrieve_image_generation(request: Request[Any, Any, Any], image_id: IdPath) -> Response[bytes]:
    res = resources_of(request)
    async with res.sessionmaker() as session:
        job = await service.get_media_job(session, principal_of(request), JobKind.IMAGE, image_id)
    return _json(await image_job_object(job, res.store, res.settings.signed_url_ttl_seconds), job)
