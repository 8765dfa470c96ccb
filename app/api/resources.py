"""Per-process resources of the web app, opened in the lifespan and passed to handlers via app.state."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from litestar.datastructures import State
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.accounts.auth import KeyAuthenticator
from app.accounts.limits import Limits
from app.accounts.models import Account
from app.billing.limits.pipelined import PipelinedRedis, UnsupportedURL
from app.billing.limits.service import Gate
from app.billing.reconciler import BillingReconciler
from app.cache.store import CacheStore, cache_redis_url
from app.channels.catalog import CatalogCache
from app.channels.cooldowns import CooldownBoard
from app.channels.names import LOCAL_MODELS
from app.core.adapters import hiredis_packing
from app.core.db import SessionMaker, create_engine, create_sessionmaker
from app.core.deadlines import Reaper
from app.core.errors import database_unavailable
from app.core.http import create_upstream_session
from app.core.outage import is_database_outage
from app.core.queue import BrokerSender, create_producer
from app.core.settings import Settings
from app.core.ssrf import Policy, UrlGuard
from app.jobs.capture import capture_records, settler
from app.jobs.preview import JobPreview
from app.jobs.recorder import JobRecorder
from app.jobs.retention import JobLogRetention
from app.providers.base import Provider
from app.providers.registry import build_providers
from storage import ObjectStore, S3Options, open_store

BLOBS_PATH = "/blobs"
"""Where the API serves the local storage backend's signed links (app/api/routes/files.py)."""

log = logging.getLogger("heytoken.app")


def create_object_store(settings: Settings) -> ObjectStore:
    secret = settings.s3_secret_access_key
    return open_store(
        settings.storage_url,
        default_dir=settings.var_dir / "storage",
        signing_base_url=settings.resolved_public_base_url() + BLOBS_PATH,
        secret=settings.resolved_secret_key(),
        s3=S3Options(
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
        ),
    )


def create_url_guard(settings: Settings) -> UrlGuard:
    """The SSRF guard for webhook URLs, with the system resolver."""
    policy = Policy.of(settings.webhook_allow_http, settings.webhook_allowed_ports, settings.webhook_trusted_networks)
    return UrlGuard(policy)


REDIS_TIMEOUT = 5.0
"""Longest wait for a Redis reply (or, for redis-py, a free connection) before the call fails."""
REDIS_CONNECT_TIMEOUT = 2.0


def create_redis(settings: Settings, url: str | None = None) -> Redis:
    # A blocking pool: a burst beyond `redis_max_connections` waits for a free connection (up to the
    # socket timeout) instead of failing at once, as redis-py's default pool does past its limit.
    pool = BlockingConnectionPool.from_url(
        url or settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
        health_check_interval=30,
    )
    pool.connection_class = hiredis_packing(pool.connection_class)
    return Redis(connection_pool=pool)


def create_cache(settings: Settings) -> CacheStore:
    """The response cache, on a Redis connection of its own (app/cache/store.py says why). Connecting is
    lazy: a process whose requests never ask for the cache never opens a connection to it."""
    if not settings.cache_redis_url and settings.env == "production":
        log.warning(
            "cache.shares_main_redis: the response cache is on database 1 of HEYTOKEN_REDIS_URL's server; "
            "Redis evicts per server, so give the cache a server of its own (HEYTOKEN_CACHE_REDIS_URL, "
            "maxmemory-policy allkeys-lru) before it sees load: docs/caching.md"
        )
    return CacheStore(create_redis(settings, cache_redis_url(settings)), settings)


def create_pipelined_redis(settings: Settings) -> PipelinedRedis | None:
    """The admission's pipelining client, or None: switched off, or a URL it does not speak (then the
    Gate uses redis-py, as correct and a little slower)."""
    if settings.redis_pipeline_connections <= 0:
        return None
    try:
        return PipelinedRedis.from_url(
            settings.redis_url,
            timeout=REDIS_TIMEOUT,
            connect_timeout=REDIS_CONNECT_TIMEOUT,
            connections=settings.redis_pipeline_connections,
        )
    except UnsupportedURL as exc:
        log.warning("limits.pipelined_redis_off reason=%r: admission goes through redis-py", str(exc))
        return None


@dataclass(slots=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: SessionMaker
    redis: Redis
    pipelined_redis: PipelinedRedis | None
    """The Gate's client for admission and settlement (None: the Gate uses `redis`)."""
    upstream: aiohttp.ClientSession
    """Chat and embeddings upstream calls (the hot path). The media adapters and their httpx client
    are the workers' (workers/middleware.py): no web request calls them."""
    catalog: CatalogCache
    auth: KeyAuthenticator
    recorder: JobRecorder
    providers: dict[str, Provider]
    gate: Gate
    billing_reconciler: BillingReconciler
    sender: BrokerSender
    store: ObjectStore
    url_guard: UrlGuard
    cooldowns: CooldownBoard
    reaper: Reaper
    cache: CacheStore
    retention: JobLogRetention

    async def load_balance(self, account_id: str) -> int:
        """The database balance (the truth), to seed the Redis mirror when it is missing."""
        try:
            async with self.sessionmaker() as session:
                account = await session.get(Account, account_id)
        except Exception as exc:
            # Reached from the hot path (admission): an outage must answer 503 there too.
            if is_database_outage(exc):
                raise database_unavailable(exc, "balance_load") from exc
            raise
        return account.balance if account is not None else 0

    @classmethod
    async def open(cls, settings: Settings) -> Resources:
        engine = create_engine(settings)
        sessionmaker = create_sessionmaker(engine)
        upstream = create_upstream_session(settings)
        catalog = CatalogCache(sessionmaker, settings)
        await catalog.start()
        redis = create_redis(settings)
        pipelined_redis = create_pipelined_redis(settings)
        gate = Gate(redis, settings, pipelined_redis)
        await gate.start()
        recorder = JobRecorder(
            engine,
            flush_ms=settings.job_log_flush_ms,
            batch_size=settings.job_log_batch_size,
            max_pending=settings.job_log_max_pending,
            on_write=capture_records,
            after_write=settler(gate),
        )
        await recorder.start()
        if settings.job_log_preview:
            recorder.preview = JobPreview(redis, lambda job_id: gate.key("jobpreview", job_id))
            await recorder.preview.start()
        reconciler = BillingReconciler(redis, gate, sessionmaker, settings.billing_reconcile_seconds)
        await reconciler.start()
        cooldowns = CooldownBoard(redis, settings)
        await cooldowns.start()
        reaper = Reaper()
        await reaper.start()
        retention = JobLogRetention(
            engine,
            days=settings.job_retention_days,
            batch=settings.job_retention_batch,
            interval=settings.job_retention_interval_seconds,
        )
        await retention.start()
        if settings.local_provider:
            log.info(
                "The built-in local provider is serving: %s (no network, deterministic answers).",
                ", ".join([*LOCAL_MODELS, *settings.extra_local_models]),
            )
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            redis=redis,
            pipelined_redis=pipelined_redis,
            upstream=upstream,
            catalog=catalog,
            auth=KeyAuthenticator(
                sessionmaker,
                settings.key_cache_ttl_seconds,
                Limits(settings.default_rpm, settings.default_rph, settings.default_tpm, settings.default_max_streams),
                invalid_key_limit=settings.invalid_key_limit,
                invalid_key_window_seconds=settings.invalid_key_window_seconds,
                redis=redis,
                redis_prefix=settings.redis_prefix,
            ),
            recorder=recorder,
            providers=build_providers(upstream, settings),
            gate=gate,
            billing_reconciler=reconciler,
            sender=create_producer(settings, mirror=gate),
            store=create_object_store(settings),
            url_guard=create_url_guard(settings),
            cooldowns=cooldowns,
            reaper=reaper,
            cache=create_cache(settings),
            retention=retention,
        )

    async def close(self) -> None:
        await self.retention.stop()
        await self.billing_reconciler.stop()
        await self.catalog.stop()
        await self.reaper.stop()
        await self.cooldowns.stop()
        await self.recorder.stop()
        if self.recorder.preview is not None:
            await self.recorder.preview.stop()
            with contextlib.suppress(Exception):
                await self.recorder.preview.send()  # the entries of the rows the last flush wrote
        await self.gate.stop()
        await self.upstream.close()
        await self.redis.aclose()
        await self.cache.aclose()
        if self.pipelined_redis is not None:
            await self.pipelined_redis.aclose()
        await self.store.close()
        self.sender.close()
        await self.engine.dispose()


def get_resources(state: State | Any) -> Resources:
    resources: Resources = state.resources
    return resources
