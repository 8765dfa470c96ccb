"""Per-process resources of the web app, opened in the lifespan and passed to handlers via app.state."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from litestar.datastructures import State
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.accounts.auth import KeyAuthenticator
from app.channels.catalog import CatalogCache
from app.channels.cooldowns import CooldownBoard
from app.db import SessionMaker, create_engine, create_sessionmaker
from app.deadlines import Reaper
from app.http import create_upstream_client
from app.jobs.recorder import JobRecorder
from app.providers.base import Provider
from app.providers.local import LOCAL_MODELS
from app.providers.registry import build_providers
from app.settings import Settings

log = logging.getLogger("heytoken.app")


def create_redis(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)


@dataclass(slots=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: SessionMaker
    redis: Redis
    http: httpx.AsyncClient
    catalog: CatalogCache
    auth: KeyAuthenticator
    recorder: JobRecorder
    providers: dict[str, Provider]
    cooldowns: CooldownBoard
    reaper: Reaper

    @classmethod
    async def open(cls, settings: Settings) -> Resources:
        engine = create_engine(settings)
        sessionmaker = create_sessionmaker(engine)
        http = create_upstream_client(settings)
        catalog = CatalogCache(sessionmaker, settings)
        await catalog.start()
        recorder = JobRecorder(
            engine,
            flush_ms=settings.job_log_flush_ms,
            batch_size=settings.job_log_batch_size,
            max_pending=settings.job_log_max_pending,
        )
        await recorder.start()
        redis = create_redis(settings)
        cooldowns = CooldownBoard(redis, settings)
        await cooldowns.start()
        reaper = Reaper()
        await reaper.start()
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
            http=http,
            catalog=catalog,
            auth=KeyAuthenticator(sessionmaker, settings.key_cache_ttl_seconds),
            recorder=recorder,
            providers=build_providers(http, settings),
            cooldowns=cooldowns,
            reaper=reaper,
        )

    async def close(self) -> None:
        await self.catalog.stop()
        await self.reaper.stop()
        await self.cooldowns.stop()
        await self.recorder.stop()
        await self.http.aclose()
        await self.redis.aclose()
        await self.engine.dispose()


def get_resources(state: State | Any) -> Resources:
    resources: Resources = state.resources
    return resources
