"""Copying a job's result files into our storage, and completing the job once they are there."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from app.channels.catalog import Route
from app.channels.models import ProviderType
from app.core.db import utcnow
from app.core.upstream_errors import ProviderError, UpstreamRejected
from app.jobs import service
from app.jobs.billing import HELD
from app.jobs.callbacks import callback_url
from app.jobs.events import ResultLinks
from app.jobs.models import Job, Stage
from app.providers.base import MediaProvider, MediaRequest, Output, Reference
from app.providers.midjourney import SOURCE_TASK
from storage import StoredObject, object_key
from storage.base import read_all

if TYPE_CHECKING:
    from app.jobs.deps import JobDeps

REFERENCE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
EXTENSIONS = {"video/mp4": "mp4", "image/webp": "webp", "image/png": "png", "image/jpeg": "jpg"}


def media_request(job: Job, route: Route) -> MediaRequest:
    params = job.params or {}
    return MediaRequest(
        kind=job.kind,
        model=route.upstream_model,
        prompt=job.prompt or "",
        size=params.get("size"),
        seconds=params.get("seconds"),
        n=int(params.get("n") or 1),
        quality=params.get("quality"),
        style=params.get("style"),
        output_format=str(params.get("output_format") or "png"),
        input_reference=params.get("input_reference"),
        extra=dict(params.get("extra") or {}),
    )


async def submit_request(deps: JobDeps, job: Job, route: Route) -> MediaRequest:
    """The request of the submit step: the job's parameters plus what only the submit needs: our copy
    of an uploaded reference image (bytes and a signed link) and the callback URL."""
    request = media_request(job, route)
    request.callback_url = callback_url(deps.settings, route, job.id)
    if route.provider == ProviderType.MIDJOURNEY and isinstance(source_id := request.extra.get("source_id"), str):
        request.extra[SOURCE_TASK] = await _source_task(deps, job, source_id)
    key = (job.params or {}).get("input_reference_key")
    if isinstance(key, str):
        try:
            data = await read_all(deps.store, key)
        except Exception as exc:
            raise StepFailed(f"storage: reading the input reference: {type(exc).__name__}: {exc}") from exc
        # Stored under the extension of what its bytes are (app/media/sniff.py).
        content_type = REFERENCE_TYPES.get(key.rpartition(".")[2], "application/octet-stream")
        url = deps.store.signed_url(key, deps.settings.reference_link_ttl_seconds)
        request.reference = Reference(data, content_type, url)
    return request


async def _source_task(deps: JobDeps, job: Job, source_id: str) -> str:
    """The upstream task of a follow-up's source image: a completed image job of the same account, on
    the same channel (a Midjourney upscale presses a button on the grid it came from)."""
    async with deps.sessionmaker() as session:
        source = await service.load_job(session, source_id)
    if (
        source is None
        or source.account_id != job.account_id
        or source.channel_id != job.channel_id
        or source.stage != Stage.COMPLETED.value
        or source.upstream_id is None
    ):
        raise UpstreamRejected(
            f"'source_id' names no completed image of this model: {source_id}.",
            status=400,
            error={"code": "invalid_source", "message": f"No completed image '{source_id}' to act on."},
        )
    return source.upstream_id


class StepFailed(Exception):
    """A transient failure of a step (storage hiccup), retried with back-off."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


async def complete(
    deps: JobDeps, session: Any, job: Job, assets: list[dict[str, Any]], via: Stage | None = None
) -> bool:
    """Complete the claimed `job` (the row a step claimed: its billing state is the row's at the
    version the transition compares, so a job that holds nothing skips billing's settle)."""
    now = utcnow()
    return await service.transition(
        session,
        job,
        Stage.COMPLETED,
        via=via,
        unheld=job.billing_state != HELD,
        links=ResultLinks(deps.store, deps.settings.signed_url_ttl_seconds),
        assets=assets,
        progress=100,
        attempts=0,
        completed_at=now,
        expires_at=now + dt.timedelta(seconds=deps.settings.media_retention_seconds),
    )


async def discard_if_orphaned(deps: JobDeps, job: Job | None, assets: list[dict[str, Any]]) -> None:
    """Another writer changed the job while we worked. If it was cancelled or failed meanwhile, our
    files are orphans: remove them. (If a duplicate completed it, they are its files: keep them.)"""
    if job is None or job.stage in (Stage.CANCELLED.value, Stage.FAILED.value):
        for asset in assets:
            await deps.store.delete(str(asset["key"]))


def asset_name(output: Output, content_type: str) -> str:
    extension = EXTENSIONS.get(content_type, "bin")
    if output.variant == "image":
        return f"image-{output.index}.{extension}"
    return f"{output.variant}.{extension}"


async def store_outputs(
    deps: JobDeps, job: Job, route: Route, provider: MediaProvider, task_id: str | None, outputs: list[Output]
) -> list[dict[str, Any]]:
    assets: list[dict[str, Any]] = []
    for output in outputs:
        try:
            if output.data is not None:
                content_type = output.content_type or "application/octet-stream"
                key = object_key(job.id, asset_name(output, content_type))
                stored = await deps.store.put_bytes(key, output.data, content_type)
            else:
                stored = await _download(deps, job, route, provider, task_id, output)
        except (ProviderError, ValueError):
            raise
        except Exception as exc:
            # Storage errors (S3 5xx, disk full) are worth retrying; the step's attempts bound them.
            raise StepFailed(f"storage: {type(exc).__name__}: {exc}") from exc
        asset: dict[str, Any] = {"variant": output.variant, "index": output.index, **stored.as_dict()}
        if output.revised_prompt:
            asset["revised_prompt"] = output.revised_prompt
        assets.append(asset)
    return assets


async def _download(
    deps: JobDeps, job: Job, route: Route, provider: MediaProvider, task_id: str | None, output: Output
) -> StoredObject:
    request = media_request(job, route)
    async with provider.download(route, task_id, request, output) as download:
        key = object_key(job.id, asset_name(output, download.content_type))
        return await deps.store.put_stream(key, download.chunks, download.content_type)
