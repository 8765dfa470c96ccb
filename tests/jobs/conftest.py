"""Drive the job steps in-process: the real database and storage, fake upstreams on loopback, and a
recording sender in place of the broker, whose messages the test delivers itself (honouring delays)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.accounts.auth import Principal
from app.accounts.limits import Limits
from app.channels.catalog import CatalogCache
from app.core.db import SessionMaker
from app.core.queue import ActorName, Credit, Send, transaction
from app.core.settings import Settings
from app.jobs import pipeline, service
from app.jobs.models import Job, JobKind
from app.providers.media_registry import build_media_providers
from storage.local import LocalStore
from tests.conftest import Tenant
from tests.fakes.media import FakeMediaUpstream

STEPS = {
    ActorName.JOB_SUBMIT: pipeline.submit_job,
    ActorName.JOB_POLL: pipeline.poll_job,
    ActorName.JOB_STORE: pipeline.store_job,
    ActorName.JOB_CANCEL_UPSTREAM: pipeline.cancel_upstream,
}


@dataclass
class RecordingSender:
    sent: list[Send] = field(default_factory=list)
    credits: list[Credit] = field(default_factory=list)

    async def send(self, sends: list[Send]) -> None:
        self.sent.extend(sends)

    async def credit(self, credits: list[Credit]) -> None:
        self.credits.extend(credits)


@pytest.fixture(scope="session")
def media_upstream() -> Iterator[FakeMediaUpstream]:
    server = FakeMediaUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def fake_media(media_upstream: FakeMediaUpstream) -> Iterator[FakeMediaUpstream]:
    media_upstream.reset()
    yield media_upstream
    media_upstream.reset()


@pytest.fixture
async def deps(settings: Settings, sessionmaker: SessionMaker, tmp_path: Path) -> AsyncIterator[pipeline.JobDeps]:
    fast = settings.model_copy(
        update={"job_poll_initial_seconds": 0.01, "job_poll_max_seconds": 0.05, "reconcile_grace_seconds": 0.0}
    )
    catalog = CatalogCache(
        sessionmaker, settings.model_copy(update={"local_provider": True, "catalog_refresh_seconds": 60})
    )
    await catalog.refresh()
    async with httpx.AsyncClient() as http:
        yield pipeline.JobDeps(
            settings=fast,
            sessionmaker=sessionmaker,
            sender=RecordingSender(),
            store=LocalStore(tmp_path / "store", base_url="http://127.0.0.1/blobs", secret=b"k"),
            catalog=catalog,
            media=build_media_providers(http, fast),
        )


def sender_of(deps: pipeline.JobDeps) -> RecordingSender:
    assert isinstance(deps.sender, RecordingSender)
    return deps.sender


async def create_job(deps: pipeline.JobDeps, tenant: Tenant, kind: JobKind, model: str, **params: Any) -> Job:
    await deps.catalog.refresh()
    route = deps.catalog.current.routes[model][0]
    job = service.new_media_job(
        kind=kind,
        principal=Principal(tenant.key_id, tenant.account_id, "active", "default", Limits(0, 0, 0, 0)),
        model=model,
        channel_id=route.channel_id,
        prompt=params.pop("prompt", "a test prompt"),
        params=params,
        metadata=None,
        webhook_url=None,
        webhook_events=None,
        deadline_seconds=params.pop("deadline", 600),
    )
    async with transaction(deps.sessionmaker, deps.sender) as session:
        await service.create_media_job(session, job)
    return job


async def deliver(deps: pipeline.JobDeps, *, max_steps: int = 50, duplicate: bool = False) -> list[Send]:
    """Deliver recorded messages in order (after their delay) until none is left; with `duplicate`,
    every message is delivered twice, the copies concurrently."""
    sender = sender_of(deps)
    delivered: list[Send] = []
    for _ in range(max_steps):
        if not sender.sent:
            return delivered
        message = sender.sent.pop(0)
        if message.delay_ms:
            await asyncio.sleep(message.delay_ms / 1000)
        step = STEPS[message.actor]
        if duplicate:
            await asyncio.gather(step(deps, message.object_id), step(deps, message.object_id))
        else:
            await step(deps, message.object_id)
        delivered.append(message)
    raise AssertionError(f"still sending after {max_steps} steps: {sender.sent}")


async def reload(deps: pipeline.JobDeps, job_id: str) -> Job:
    async with deps.sessionmaker() as session:
        job = await service.load_job(session, job_id)
    assert job is not None
    return job
