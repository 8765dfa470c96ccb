"""The OpenAI Videos API over media jobs: create, retrieve, list, download, cancel, delete."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import FromQuery, JSONBody
from litestar.response import Redirect

from app.api import idempotency
from app.api.api_docs import docs
from app.api.api_edge import body_of, uploads_of
from app.api.deps import principal_of, resources_of, set_rate_headers
from app.api.idempotency import idempotent_response
from app.api.lists import list_page
from app.api.videos_openapi import JsonOrMultipart
from app.channels.routing import pick
from app.core.errors import NotFound, PayloadTooLarge
from app.core.params import IdempotencyKey, IdPath, IdQuery, NameQuery, Order, PageLimit
from app.core.queue import transaction
from app.jobs import service
from app.jobs.models import Job, JobKind, Stage, stage_of
from app.media.billing import admit_media, create_paid_job
from app.media.sniff import media_type_of
from app.media.videos import (
    Variant,
    VideoCreateBody,
    VideoDeleted,
    VideoList,
    VideoObject,
    VideoStatus,
    check_not_retired,
    video_create,
    video_object,
)
from app.webhooks.service import check_url
from storage import object_key

_encode = msgspec.json.Encoder().encode


def _json(payload: Any, job: Job | None = None, *, status: int = 200, poll_after_ms: int = 0) -> Response[bytes]:
    headers = {}
    if job is not None:
        headers["x-request-id"] = job.id
        if poll_after_ms and job.status in ("queued", "in_progress"):
            headers["openai-poll-after-ms"] = str(poll_after_ms)
    return Response(content=_encode(payload), status_code=status, media_type="application/json", headers=headers)


async def _create(request: Request[Any, Any, Any], data: VideoCreateBody, *, with_task_id: bool) -> Response[bytes]:
    res, principal = resources_of(request), principal_of(request)
    body, uploads = await body_of(request), uploads_of(request)
    create = video_create(data, body, uploads.get("input_reference"))
    await check_url(res.url_guard, create.webhook_url, "webhook_url")
    check_not_retired(res.catalog.current, create.model)
    route = pick(res.catalog.current, create.model)
    service.check_capability(route, JobKind.VIDEO)
    upload = upload_type = None
    if create.upload is not None:
        upload = await create.upload.read()
        limit = res.settings.input_reference_max_bytes
        if len(upload) > limit:
            raise PayloadTooLarge(f"'input_reference' is larger than {limit} bytes.", param="input_reference")
        upload_type = media_type_of(upload, "input_reference")

    async def work() -> idempotency.Outcome:
        job = service.new_media_job(
            kind=JobKind.VIDEO,
            principal=principal,
            model=create.model,
            channel_id=route.channel_id,
            prompt=create.prompt,
            params=create.params(),
            metadata=create.metadata,
            webhook_url=create.webhook_url,
            webhook_events=create.webhook_events,
            deadline_seconds=res.settings.video_deadline_seconds,
        )
        admission = await admit_media(res, principal, job, res.settings.video_deadline_seconds)
        set_rate_headers(request, admission.headers)
        if upload is not None and upload_type is not None:
            # Stored only once admitted: a refused request leaves no file behind. As what its bytes
            # are, not what the client declared (app/media/sniff.py).
            content_type, extension = upload_type
            key = object_key(job.id, f"input_reference.{extension}")
            await res.store.put_bytes(key, upload, content_type)
            job.params = {**(job.params or {}), "input_reference_key": key}
        await create_paid_job(res, job, admission)
        response = _json(
            video_object(job, with_task_id=with_task_id), job, poll_after_ms=res.settings.client_poll_after_ms
        )
        return idempotency.Outcome(200, bytes(response.content), dict(response.headers), job.id)

    # The file takes part in the fingerprint (by name and type), as a field of the request.
    return await idempotent_response(request, {**body, **uploads}, work)


@post(
    "/videos",
    status_code=200,
    operation_id="createVideo",
    responses=docs(VideoObject, 402, 404, 409, 413),
    operation_class=JsonOrMultipart,
)
async def create_video(
    request: Request[Any, Any, Any], data: JSONBody[VideoCreateBody], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    return await _create(request, data, with_task_id=False)


@post(
    "/videos/generations",
    status_code=200,
    operation_id="createVideoGeneration",
    responses=docs(VideoObject, 402, 404, 409, 413),
    operation_class=JsonOrMultipart,
)
async def create_video_generation(
    request: Request[Any, Any, Any], data: JSONBody[VideoCreateBody], idempotency_key: IdempotencyKey = None
) -> Response[bytes]:
    """The docs' path: the same job, and the response also carries `task_id`."""
    return await _create(request, data, with_task_id=True)


async def _own(request: Request[Any, Any, Any], video_id: str) -> Job:
    async with resources_of(request).sessionmaker() as session:
        return await service.get_media_job(session, principal_of(request), JobKind.VIDEO, video_id)


@get("/videos/{video_id:str}", operation_id="retrieveVideo", responses=docs(VideoObject, 404))
async def retrieve_video(request: Request[Any, Any, Any], video_id: IdPath) -> Response[bytes]:
    job = await _own(request, video_id)
    return _json(video_object(job), job, poll_after_ms=resources_of(request).settings.client_poll_after_ms)


@get("/videos", operation_id="listVideos", responses=docs(VideoList))
async def list_videos(
    request: Request[Any, Any, Any],
    limit: PageLimit = 20,
    order: Order = "desc",
    after: IdQuery = None,
    status: FromQuery[VideoStatus | None] = None,
    model: NameQuery = None,
) -> Response[bytes]:
    async with resources_of(request).sessionmaker() as session:
        jobs, has_more = await service.list_media_jobs(
            session,
            principal_of(request),
            JobKind.VIDEO,
            after=after,
            limit=limit,
            descending=order == "desc",
            status=status,
            model=model,
        )
    return _json(list_page([video_object(job) for job in jobs], has_more=has_more))


@get("/videos/{video_id:str}/content", operation_id="downloadVideoContent", status_code=302, responses=docs(None, 404))
async def download_video_content(
    request: Request[Any, Any, Any], video_id: IdPath, variant: FromQuery[Variant] = "video"
) -> Redirect:
    """302 to a short-lived signed URL of our copy (the SDK follows it and drops Authorization)."""
    job = await _own(request, video_id)
    if stage_of(job) is not Stage.COMPLETED:
        raise NotFound(
            f"Video '{video_id}' is {job.status}; its content is available once it is completed.",
            param="id",
            code="video_not_ready",
        )
    asset = next((a for a in job.assets or [] if a.get("variant") == variant), None)
    if asset is None:
        raise NotFound(f"This video has no {variant}.", param="variant", code="variant_unavailable")
    settings = resources_of(request).settings
    url = resources_of(request).store.signed_url(str(asset["key"]), settings.signed_url_ttl_seconds)
    return Redirect(path=url, status_code=302)


@post(
    "/videos/{video_id:str}/cancel", status_code=200, operation_id="cancelVideo", responses=docs(VideoObject, 404, 409)
)
async def cancel_video(request: Request[Any, Any, Any], video_id: IdPath) -> Response[bytes]:
    res = resources_of(request)
    async with transaction(res.sessionmaker, res.sender) as session:
        job = await service.get_media_job(session, principal_of(request), JobKind.VIDEO, video_id)
        job = await service.cancel_job(session, job, not_cancellable="video_not_cancellable")
    return _json(video_object(job), job)


@delete("/videos/{video_id:str}", status_code=200, operation_id="deleteVideo", responses=docs(VideoDeleted, 404, 409))
async def delete_video(request: Request[Any, Any, Any], video_id: IdPath) -> Response[bytes]:
    """Only finished videos; removes the stored files and hides the video (the row stays for audit)."""
    res = resources_of(request)
    async with transaction(res.sessionmaker, res.sender) as session:
        job = await service.get_media_job(session, principal_of(request), JobKind.VIDEO, video_id)
        keys = service.stored_keys(job)
        await service.mark_deleted(session, job, not_deletable="video_not_deletable")
        for key in keys:
            await res.store.delete(key)
    return _json({"id": video_id, "object": "video.deleted", "deleted": True})
