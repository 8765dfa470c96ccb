"""Per-process resources of a worker, opened at boot on the AsyncIO event loop and closed at shutdown.

DB engine, httpx clients (upstreams; webhooks), object store, catalog of routes and the reconciler
loop all live on the one event loop that runs the async actors, so everything async is bound to the
right loop.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from redis.asyncio import Redis

from app.api.resources import create_object_store, create_redis, create_url_guard
from app.billing.limits.service import Gate
from app.channels.catalog import CatalogCache
from app.core.db import create_engine, create_sessionmaker
from app.core.http import create_upstream_client, create_webhook_client
from app.core.queue import BrokerSender
from app.core.settings import Settings
from app.jobs.deps import JobDeps
from app.jobs.reconciler import run_reconciler
from app.observability import dump
from app.providers.media_registry import build_media_providers
from app.webhooks.delivery import WebhookDeps, reconcile_deliveries

log = logging.getLogger("heytoken.worker")


class WorkerResources(dramatiq.Middleware):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.deps: JobDeps | None = None
        self.webhooks: WebhookDeps | None = None
        self._closers: list[Any] = []
        self._reconciler: asyncio.Task[None] | None = None

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # Before, not after: Dramatiq starts the consumers and worker threads between the two hooks, so
        # resources opened after boot let messages already waiting in Redis (jobs sent while the worker
        # was starting) run first and fail with "worker resources are not open", then wait for a retry.
        thread = get_event_loop_thread()
        assert thread is not None, "the AsyncIO middleware must come before WorkerResources"
        thread.run_coroutine(self._open(broker))
        # The objects of start-up (modules, actors, resources) live as long as the process: moved out of
        # the collector's sight, as the web process does (app/api/main.py). A full collection over them
        # held the event loop, and with it every step, for ~90 ms in the middle of the jobs bench.
        gc.freeze()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        thread = get_event_loop_thread()
        if thread is not None:
            dump.install_for_thread(thread.loop)  # kill -USR1 <worker process>: where it waits
        consumed = getattr(worker, "queues", None) or broker.get_declared_queues()
        log.info("worker.ready queues=%s", ",".join(sorted(consumed)))

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # Only the reconciler stops here: Dramatiq calls this *before* it waits for the steps under
        # way, which still need the database, HTTP clients and storage (closing them here made every
        # step in flight at a SIGTERM fail instead of finishing).
        thread = get_event_loop_thread()
        if thread is not None:
            thread.run_coroutine(self._stop_reconciler())

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # After the steps finished (or the shutdown timeout passed); before the AsyncIO middleware
        # stops the event loop, as Dramatiq runs the after_ hooks in reverse order.
        thread = get_event_loop_thread()
        if thread is not None:
            thread.run_coroutine(self._close())

    async def _open(self, broker: dramatiq.Broker) -> None:
        settings = self.settings
        engine = create_engine(settings)
        http = create_upstream_client(settings)
        catalog = CatalogCache(create_sessionmaker(engine), settings)
        await catalog.start()
        store = create_object_store(settings)
        redis: Redis = create_redis(settings)
        sender = BrokerSender(broker, mirror=Gate(redis, settings))
        self.deps = JobDeps(
            settings=settings,
            sessionmaker=create_sessionmaker(engine),
            sender=sender,
            store=store,
            catalog=catalog,
            media=build_media_providers(http, settings),
        )
        hooks_http = create_webhook_client(settings)
        webhooks = self.webhooks = WebhookDeps(
            settings=settings,
            sessionmaker=self.deps.sessionmaker,
            sender=sender,
            http=hooks_http,
            guard=create_url_guard(settings),
        )
        self._reconciler = asyncio.create_task(
            run_reconciler(self.deps, redis, extra=[lambda: reconcile_deliveries(webhooks)]), name="reconciler"
        )
        self._closers = [catalog.stop, http.aclose, hooks_http.aclose, redis.aclose, store.close, engine.dispose]

    async def _stop_reconciler(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()
            await asyncio.gather(self._reconciler, return_exceptions=True)

    async def _close(self) -> None:
        await self._stop_reconciler()
        for close in self._closers:
            try:
                await close()
            except Exception:
                log.warning("worker.close_failed", exc_info=True)


_resources: WorkerResources | None = None


def install(resources: WorkerResources) -> None:
    global _resources
    _resources = resources


def deps() -> JobDeps:
    """The running worker's resources (set at boot; an actor never runs before it)."""
    if _resources is None or _resources.deps is None:
        raise RuntimeError("worker resources are not open")
    return _resources.deps


def webhook_deps() -> WebhookDeps:
    """The running worker's webhook resources (set at boot)."""
    if _resources is None or _resources.webhooks is None:
        raise RuntimeError("worker resources are not open")
    return _resources.webhooks
