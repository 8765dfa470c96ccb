"""Drive jobs and their webhook deliveries in-process: the real database, a receiver on 127.0.0.1, the
real webhook HTTP client and SSRF guard, and a recording sender whose messages the test delivers
itself (honouring their delays: the retry schedule is test-sized)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.accounts.auth import Principal
from app.accounts.limits import Limits
from app.channels.catalog import CatalogCache
from app.core.db import SessionMaker
from app.core.http import create_webhook_client
from app.core.queue import ActorName, Send, transaction
from app.core.settings import Settings
from app.core.ssrf import Policy, UrlGuard
from app.jobs import pipeline, service
from app.jobs.models import Job, JobKind
from app.providers.media_registry import build_media_providers
from app.webhooks import delivery, signing
from storage.local import LocalStore
from tests.conftest import Tenant
from tests.jobs.conftest import STEPS, RecordingSender
from tests.webhooks.support import Receiver, SocketSpy

SCHEDULE = [0.01, 0.01, 0.01]
"""The test-sized retry schedule: four attempts in all, a few hundredths of a second apart."""


@dataclass
class Deps:
    jobs: pipeline.JobDeps
    hooks: delivery.WebhookDeps

    @property
    def sender(self) -> RecordingSender:
        assert isinstance(self.jobs.sender, RecordingSender)
        return self.jobs.sender


@pytest.fixture(scope="session")
def receiver_server() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def receiver(receiver_server: Receiver) -> Iterator[Receiver]:
    receiver_server.reset()
    yield receiver_server
    receiver_server.reset()


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> SocketSpy:
    return SocketSpy().install(monkeypatch)


def policy_of(settings: Settings) -> Policy:
    return Policy.of(settings.webhook_allow_http, settings.webhook_allowed_ports, settings.webhook_trusted_networks)


@pytest.fixture
async def wdeps(settings: Settings, sessionmaker: SessionMaker, tmp_path: Path) -> AsyncIterator[Deps]:
    fast = settings.model_copy(
        update={
            "job_poll_initial_seconds": 0.01,
            "job_poll_max_seconds": 0.05,
            "reconcile_grace_seconds": 0.0,
            "webhook_retry_schedule": SCHEDULE,
            "webhook_timeout_seconds": 5.0,
        }
    )
    catalog = CatalogCache(
        sessionmaker, settings.model_copy(update={"local_provider": True, "catalog_refresh_seconds": 60})
    )
    await catalog.refresh()
    sender = RecordingSender()
    async with httpx.AsyncClient() as http, create_webhook_client(fast) as hooks_http:
        jobs = pipeline.JobDeps(
            settings=fast,
            sessionmaker=sessionmaker,
            sender=sender,
            store=LocalStore(tmp_path / "store", base_url="http://127.0.0.1/blobs", secret=b"k"),
            catalog=catalog,
            media=build_media_providers(http, fast),
        )
        hooks = delivery.WebhookDeps(fast, sessionmaker, sender, hooks_http, UrlGuard(policy_of(fast)))
        yield Deps(jobs, hooks)


async def make_job(
    deps: Deps,
    tenant: Tenant,
    kind: JobKind = JobKind.VIDEO,
    *,
    webhook_url: str | None = None,
    webhook_events: list[str] | None = None,
    **params: Any,
) -> Job:
    """A local-provider job, created as the API creates it (without the API's URL check)."""
    model = "local-video" if kind is JobKind.VIDEO else "local-image"
    route = deps.jobs.catalog.current.routes[model][0]
    video = kind is JobKind.VIDEO
    defaults: dict[str, Any] = {"seconds": 1, "size": "720x1280"} if video else {"n": 1, "size": "256x256"}
    job = service.new_media_job(
        kind=kind,
        principal=Principal(tenant.key_id, tenant.account_id, "active", "default", Limits(0, 0, 0, 0)),
        model=model,
        channel_id=route.channel_id,
        prompt="a webhook test",
        params={**defaults, **params},
        metadata={"order": "A-17"},
        webhook_url=webhook_url,
        webhook_events=webhook_events,
        deadline_seconds=600,
    )
    async with transaction(deps.jobs.sessionmaker, deps.sender) as session:
        await service.create_media_job(session, job)
    return job


def _step(deps: Deps, message: Send) -> Callable[[str], Awaitable[None]]:
    if message.actor is ActorName.WEBHOOK_DELIVER:
        return functools.partial(delivery.deliver, deps.hooks)
    return functools.partial(STEPS[message.actor], deps.jobs)


async def drain(deps: Deps, *, max_steps: int = 100, duplicate: bool = False) -> list[Send]:
    """Deliver every recorded message (job steps and webhook attempts) in order, after its delay,
    until none is left; with `duplicate`, each one twice, the copies concurrently."""
    done: list[Send] = []
    for _ in range(max_steps):
        if not deps.sender.sent:
            return done
        message = deps.sender.sent.pop(0)
        if message.delay_ms:
            await asyncio.sleep(message.delay_ms / 1000)
        step = _step(deps, message)
        if duplicate:
            await asyncio.gather(step(message.object_id), step(message.object_id))
        else:
            await step(message.object_id)
        done.append(message)
    raise AssertionError(f"still sending after {max_steps} steps: {deps.sender.sent}")


async def reveal_secret(deps: Deps, tenant: Tenant) -> str:
    async with transaction(deps.jobs.sessionmaker, deps.sender) as session:
        _, secret = await signing.reveal(session, tenant.account_id, deps.jobs.settings.resolved_secret_key())
    return secret
