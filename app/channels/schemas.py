"""The admin API's view of a channel (never its secret) and the checks on admin request bodies."""

from __future__ import annotations

from typing import Any

from app.channels.cooldowns import Cooldown, public
from app.channels.models import Channel, ChannelModel
from app.db import to_unix
from app.errors import InvalidRequest
from app.validation import optional_bool, optional_int, require_str, wrong_type


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


def model_specs(body: dict[str, Any]) -> list[str]:
    models = body.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise InvalidRequest("'models' must be a non-empty array of strings (MODEL or MODEL=UPSTREAM).", param="models")
    return models


def optional_str(body: dict[str, Any], param: str) -> str | None:
    value = body.get(param)
    if value is not None and not isinstance(value, str):
        raise wrong_type(param, "a string", value)
    return value


def optional_options(body: dict[str, Any]) -> dict[str, Any] | None:
    options = body.get("options")
    if options is not None and not isinstance(options, dict):
        raise wrong_type("options", "an object", options)
    return options


def channel_create(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": require_str(body, "name"),
        "provider": require_str(body, "provider"),
        "base_url": require_str(body, "base_url"),
        "api_key": optional_str(body, "api_key"),
        "models": model_specs(body),
        "priority": optional_int(body, "priority", -1_000_000, 1_000_000) or 0,
        "weight": optional_int(body, "weight", 1, 1_000_000) or 1,
        "options": optional_options(body),
    }


def channel_update(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "priority": optional_int(body, "priority", -1_000_000, 1_000_000),
        "weight": optional_int(body, "weight", 1, 1_000_000),
        "enabled": optional_bool(body, "enabled"),
        "base_url": optional_str(body, "base_url"),
        "api_key": optional_str(body, "api_key"),
        "options": optional_options(body),
    }
