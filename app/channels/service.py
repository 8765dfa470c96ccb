"""Channels: add, list, update, remove, and the models they serve. Functions take a session and never
commit; running processes pick changes up with their next catalog refresh."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.channels.models import Channel, ChannelModel, ProviderType
from app.channels.policy import check_options
from app.core import crypto
from app.core.errors import Conflict, InvalidRequest, NotFound
from app.core.ids import new_id

MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")
LOCAL_CHANNEL_ID = "ch_local"
"""The built-in local provider is a virtual channel (no row), switched by HEYTOKEN_LOCAL_PROVIDER."""


def parse_model_spec(spec: str) -> tuple[str, str]:
    """`gpt-4o` serves gpt-4o as itself; `gpt-4o=gpt-4o-2024-08-06` sends the alias upstream."""
    public, _, upstream = spec.partition("=")
    public, upstream = public.strip(), (upstream.strip() or public.strip())
    for value in (public, upstream):
        if not MODEL_ID.match(value):
            raise InvalidRequest(f"Invalid model id {value!r}.", param="models")
    return public, upstream


async def add_channel(
    session: AsyncSession,
    *,
    secret_key: bytes,
    name: str,
    provider: str,
    base_url: str | None,
    api_key: str | None,
    models: list[str],
    priority: int = 0,
    weight: int = 1,
    options: dict[str, Any] | None = None,
) -> Channel:
    if provider not in {p.value for p in ProviderType} or provider == ProviderType.LOCAL:
        allowed = ", ".join(p.value for p in ProviderType if p != ProviderType.LOCAL)
        raise InvalidRequest(f"Unknown provider {provider!r}; one of: {allowed}.", param="provider")
    base_url = _check_base_url(base_url)
    if not models:
        raise InvalidRequest("A channel must serve at least one model.", param="models")
    _check_weight(weight)
    check_options(options or {})
    if (await session.exec(select(Channel).where(Channel.name == name))).first() is not None:
        raise Conflict(f"A channel named {name!r} already exists.", param="name", code="channel_exists")
    channel = Channel(
        id=new_id("ch_"),
        name=name,
        provider=provider,
        base_url=base_url,
        secret_encrypted=crypto.encrypt(secret_key, api_key) if api_key else None,
        priority=priority,
        weight=weight,
        options=options or {},
    )
    session.add(channel)
    await session.flush()
    await add_models(session, channel, models)
    return channel


def _check_base_url(base_url: str | None) -> str:
    if not base_url or not re.match(r"^https?://", base_url):
        raise InvalidRequest("base_url must be an http(s) URL.", param="base_url")
    return base_url.rstrip("/")


def _check_weight(weight: int) -> None:
    if weight < 1:
        raise InvalidRequest("weight must be at least 1.", param="weight")


async def add_models(session: AsyncSession, channel: Channel, models: list[str]) -> list[ChannelModel]:
    existing = {m.model for m in await models_of(session, channel)}
    added: list[ChannelModel] = []
    for spec in models:
        public, upstream = parse_model_spec(spec)
        if public in existing:
            raise InvalidRequest(f"Model {public!r} listed twice.", param="models")
        existing.add(public)
        added.append(ChannelModel(channel_id=channel.id, model=public, upstream_model=upstream))
        session.add(added[-1])
    await session.flush()
    return added


async def remove_model(session: AsyncSession, channel: Channel, model: str) -> None:
    stmt = select(ChannelModel).where(ChannelModel.channel_id == channel.id, ChannelModel.model == model)
    row = (await session.exec(stmt)).first()
    if row is None:
        raise NotFound(f"Channel {channel.name!r} does not serve {model!r}.", param="model", code="model_not_found")
    await session.delete(row)
    await session.flush()


async def get_channel(session: AsyncSession, name_or_id: str) -> Channel:
    stmt = select(Channel).where((col(Channel.name) == name_or_id) | (col(Channel.id) == name_or_id))
    channel = (await session.exec(stmt)).first()
    if channel is None:
        raise NotFound(f"No channel {name_or_id!r}.", param="channel", code="channel_not_found")
    return channel


async def models_of(session: AsyncSession, channel: Channel) -> list[ChannelModel]:
    stmt = select(ChannelModel).where(ChannelModel.channel_id == channel.id).order_by(col(ChannelModel.id))
    return list((await session.exec(stmt)).all())


async def update_channel(
    session: AsyncSession,
    channel: Channel,
    *,
    secret_key: bytes,
    priority: int | None = None,
    weight: int | None = None,
    enabled: bool | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    options: dict[str, Any] | None = None,
) -> Channel:
    """Change what is given. `options` is merged into the channel's options; a null value removes a key."""
    if priority is not None:
        channel.priority = priority
    if weight is not None:
        _check_weight(weight)
        channel.weight = weight
    if enabled is not None:
        channel.enabled = enabled
    if base_url is not None:
        channel.base_url = _check_base_url(base_url)
    if api_key is not None:
        channel.secret_encrypted = crypto.encrypt(secret_key, api_key) if api_key else None
    if options is not None:
        merged = {**channel.options, **options}
        channel.options = check_options({k: v for k, v in merged.items() if v is not None})
    session.add(channel)
    await session.flush()
    return channel


async def list_channels(session: AsyncSession) -> list[tuple[Channel, list[ChannelModel]]]:
    channels = (await session.exec(select(Channel).order_by(col(Channel.created_at)))).all()
    models = (await session.exec(select(ChannelModel).order_by(col(ChannelModel.id)))).all()
    by_channel: dict[str, list[ChannelModel]] = {}
    for model in models:
        by_channel.setdefault(model.channel_id, []).append(model)
    return [(channel, by_channel.get(channel.id, [])) for channel in channels]


async def remove_channel(session: AsyncSession, name_or_id: str) -> Channel:
    channel = await get_channel(session, name_or_id)
    await session.exec(delete(ChannelModel).where(col(ChannelModel.channel_id) == channel.id))
    await session.delete(channel)
    await session.flush()
    return channel
