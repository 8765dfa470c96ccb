"""The admin API's view of a channel (never its secret) and the checks on admin request bodies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from app.channels.cooldowns import Cooldown, public
from app.channels.models import Channel, ChannelModel
from app.core.db import to_unix
from app.core.edge import NO_NUL, Name

Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=NO_NUL)]
Secret = Annotated[str, msgspec.Meta(max_length=10_000, pattern=NO_NUL)]
ModelSpec = Annotated[str, msgspec.Meta(min_length=1, max_length=400, pattern=NO_NUL)]
"""MODEL, or MODEL=UPSTREAM_MODEL."""
Priority = Annotated[int, msgspec.Meta(ge=-1_000_000, le=1_000_000)]
Weight = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]


class ChannelModelsBody(msgspec.Struct, kw_only=True):
    models: Annotated[list[ModelSpec], msgspec.Meta(min_length=1, max_length=1000)]


class ChannelCreateBody(ChannelModelsBody, kw_only=True):
    name: Name
    provider: Name
    base_url: Url
    api_key: Secret | None = None
    priority: Priority | None = None
    weight: Weight | None = None
    options: dict[str, Any] | None = None

    def fields(self) -> dict[str, Any]:
        """The arguments of `channels.add_channel`."""
        return {
            "name": self.name,
            "provider": self.provider,
            "base_url": self.base_url,
            "api_key": self.api_key,
            "models": self.models,
            "priority": self.priority or 0,
            "weight": self.weight or 1,
            "options": self.options,
        }


class ChannelUpdateBody(msgspec.Struct, kw_only=True):
    priority: Priority | None = None
    weight: Weight | None = None
    enabled: bool | None = None
    base_url: Url | None = None
    api_key: Secret | None = None
    options: dict[str, Any] | None = None

    def fields(self) -> dict[str, Any]:
        """The arguments of `channels.update_channel` (None: unchanged)."""
        return {f: getattr(self, f) for f in self.__struct_fields__}


def channel_public(channel: Channel, models: list[ChannelModel], cooldown: Cooldown | None) -> dict[str, Any]:
    return {
        "id": channel.id,
        "object": "channel",
        "name": channel.name,
        "provider": channel.provider,
        "base_url": channel.base_url,
        "has_api_key": channel.secret_encrypted is not None,
        "priority": channel.priority,
        "weight": channel.weight,
        "enabled": channel.enabled,
        "options": channel.options,
        "models": [{"model": m.model, "upstream_model": m.upstream_model} for m in models],
        "cooldown": None if cooldown is None else public(channel.id, cooldown),
        "created_at": to_unix(channel.created_at),
    }


class ChannelModelObject(msgspec.Struct, kw_only=True):
    model: str
    upstream_model: str | None


class ChannelObject(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["channel"]
    name: str
    provider: str
    base_url: str | None
    has_api_key: bool
    priority: int
    weight: int
    enabled: bool
    options: dict[str, Any] | None
    models: list[ChannelModelObject]
    cooldown: dict[str, Any] | None
    created_at: int | None


class Removed(msgspec.Struct, kw_only=True):
    object: str
    deleted: bool
    id: str | None = None
    channel_id: str | None = None


class ChannelList(msgspec.Struct, kw_only=True):
    object: Literal["list"]
    data: list[ChannelObject]


class CooldownList(msgspec.Struct, kw_only=True):
    object: Literal["list"]
    data: list[dict[str, Any]]
