"""The in-process catalog: public model id → the routes (channel + upstream name) that serve it.

Loaded at start-up and refreshed in the background every `catalog_refresh_seconds`, so a request never
waits on the database to find its upstream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import select

from app.billing.models import Price
from app.channels.models import Channel, ChannelModel, ProviderType
from app.channels.names import LOCAL_MODELS
from app.channels.policy import DEFAULT_POLICY, ChannelPolicy
from app.channels.service import LOCAL_CHANNEL_ID
from app.core import crypto
from app.core.db import SessionMaker, to_unix
from app.core.errors import NotFound, PermissionDenied
from app.core.money import FREE, ModelPrice
from app.core.outage import is_database_outage, outages
from app.core.settings import Settings
from app.core.tasks import Loop

log = logging.getLogger("heytoken.catalog")
UNKNOWN_LISTED = 20
"""Models a 404 for an unknown model names (the rest are counted)."""


@dataclass(frozen=True, slots=True)
class Route:
    channel_id: str
    channel_name: str
    provider: str
    base_url: str | None
    api_key: str | None
    upstream_model: str
    priority: int
    weight: int
    options: dict[str, Any]
    policy: ChannelPolicy = DEFAULT_POLICY


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    created: int
    owned_by: str


Tier = tuple[Route, ...]
"""The routes of one priority: weighted random among them, the next tier only when all failed."""


@dataclass(slots=True)
class Catalog:
    routes: dict[str, list[Route]] = field(default_factory=dict)
    models: dict[str, ModelInfo] = field(default_factory=dict)
    tiers: dict[str, tuple[Tier, ...]] = field(default_factory=dict)
    prices: dict[str, ModelPrice] = field(default_factory=dict)

    def price_for(self, model: str) -> ModelPrice:
        """The model's price. A model without one cannot be called, unless only the local provider
        serves it (free unless an operator prices it)."""
        price = self.prices.get(model)
        if price is not None:
            return price
        if all(r.provider == ProviderType.LOCAL for r in self.routes.get(model, ())):
            return FREE
        raise PermissionDenied(
            f"The model '{model}' has no price configured, so it cannot be called yet. An operator can set "
            f"one with '.venv/bin/heytoken price set {model} …' (from the gateway's checkout) or the admin API.",
            param="model",
            code="model_not_priced",
        )

    def unknown(self, model: str) -> NotFound:
        """The 404 for a model nobody serves: which models are served, and how an operator adds one."""
        served = sorted(self.models)
        listed = ", ".join(served[:UNKNOWN_LISTED]) or "none"
        if len(served) > UNKNOWN_LISTED:
            listed += f", and {len(served) - UNKNOWN_LISTED} more (GET /v1/models lists them all)"
        return NotFound(
            f"The model '{model}' does not exist or you do not have access to it. Models served here: "
            f"{listed}. To serve '{model}', an operator adds a channel for it and prices it "
            f"(from the gateway's checkout: .venv/bin/heytoken channel add --name NAME --provider openai "
            f"--base-url https://api.openai.com/v1 --model {model}, then .venv/bin/heytoken price set {model} "
            "--input USD --output USD; see docs/channels.md).",
            param="model",
            code="model_not_found",
        )

    def add(self, model: str, route: Route, created: int) -> None:
        self.routes.setdefault(model, []).append(route)
        if model not in self.models:
            self.models[model] = ModelInfo(id=model, created=created, owned_by=route.provider)

    def finish(self) -> None:
        for model, routes in self.routes.items():
            routes.sort(key=lambda r: -r.priority)
            tiers: dict[int, list[Route]] = {}
            for route in routes:
                tiers.setdefault(route.priority, []).append(route)
            self.tiers[model] = tuple(tuple(tier) for tier in tiers.values())


def local_catalog(extra_models: list[str]) -> list[tuple[str, Route]]:
    out = []
    for model in [*LOCAL_MODELS, *extra_models]:
        route = Route(
            channel_id=LOCAL_CHANNEL_ID,
            channel_name="local",
            provider=ProviderType.LOCAL,
            base_url=None,
            api_key=None,
            upstream_model=model,
            priority=-1000,
            weight=1,
            options={},
        )
        out.append((model, route))
    return out


async def load_catalog(sessionmaker: SessionMaker, settings: Settings, secret_key: bytes) -> Catalog:
    catalog = Catalog()
    async with sessionmaker() as session:
        channels = {c.id: c for c in (await session.exec(select(Channel).where(Channel.enabled == True))).all()}  # noqa: E712
        models = (await session.exec(select(ChannelModel))).all()
        prices = (await session.exec(select(Price))).all()
    for p in prices:
        catalog.prices[p.model] = ModelPrice(
            input_per_mtok=p.input_per_mtok,
            output_per_mtok=p.output_per_mtok,
            cached_input_per_mtok=p.cached_input_per_mtok,
            per_image=dict(p.per_image or {}),
            per_video_second=p.per_video_second,
            per_video_second_by_size=dict(p.per_video_second_by_size or {}),
            max_output_tokens=p.max_output_tokens,
            audio_input_per_mtok=p.audio_input_per_mtok,
            audio_output_per_mtok=p.audio_output_per_mtok,
            per_request=p.per_request,
        )
    for cm in models:
        channel = channels.get(cm.channel_id)
        if channel is None:
            continue
        try:
            api_key = crypto.decrypt(secret_key, channel.secret_encrypted) if channel.secret_encrypted else None
        except ValueError:
            log.error("catalog.channel_secret_unreadable channel=%s", channel.name)
            continue
        options = {**channel.options, **cm.options}
        route = Route(
            channel_id=channel.id,
            channel_name=channel.name,
            provider=channel.provider,
            base_url=channel.base_url,
            api_key=api_key,
            upstream_model=cm.upstream_model,
            priority=channel.priority,
            weight=channel.weight,
            options=options,
            policy=ChannelPolicy.build(settings, options),
        )
        catalog.add(cm.model, route, to_unix(channel.created_at) or 0)
    if settings.local_provider:
        for model, route in local_catalog(settings.extra_local_models):
            catalog.add(model, route, 1_700_000_000)
    catalog.finish()
    return catalog


class CatalogCache:
    def __init__(self, sessionmaker: SessionMaker, settings: Settings) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._secret_key = settings.resolved_secret_key()
        self._refresh_seconds = settings.catalog_refresh_seconds
        self.current = Catalog()
        self.loaded = False
        """Whether `current` was ever read from the database (until then the process is not ready)."""
        self._loop = Loop("catalog-refresh", self.refresh, self._refresh_seconds, on_error=self._refresh_failed)

    async def refresh(self) -> None:
        self.current = await load_catalog(self._sessionmaker, self._settings, self._secret_key)
        self.loaded = True

    async def ensure_loaded(self) -> bool:
        """Whether the catalog was loaded, trying once now if not (readiness need not wait for the loop)."""
        if not self.loaded:
            try:
                await self.refresh()
            except Exception as exc:
                if not is_database_outage(exc):
                    raise
        return self.loaded

    async def start(self) -> None:
        """Load the catalog, or, with the database down, start without it (the process is then not
        ready, see /readyz) and keep trying in the background: a web process that crashed at start-up
        while the database restarts would only be restarted into the same crash by its supervisor."""
        try:
            await self.refresh()
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            outages.warn("catalog_load (starting without a catalog)", exc)
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    @staticmethod
    def _refresh_failed(exc: Exception) -> None:
        # Keep serving the last good catalog; a database blip must not take routing down.
        if is_database_outage(exc):
            outages.warn("catalog_refresh", exc)
        else:
            log.error("catalog.refresh_failed", exc_info=exc)
