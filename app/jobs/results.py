"""Copying a job's result files into our storage, and completing the job once they are there."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from app.channels.catalog import Route
from app.core.db import utcnow
from app.core.upstream_errors import ProviderError
from app.jobs import service
from app.jobs.events import ResultLinks
from app.jobs.models import Job, Stage
from app.providers.base import MediaProvider, MediaRequest, Output
from storage import StoredObject, object_key

if TYPE_CHECKING:
    from app.jobs.deps import JobDeps

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


class StepFailed(Exception):
    """A transient failure of a step (storage hiccup), retried with back-off."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


async def complete(deps: JobDeps, session: Any, job: Job, assets: list[dict[str, Any]]) -> bool:
    now = utcnow()
    return await service.transition(
        session,
        job,
        Stage.COMPLETED,
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
