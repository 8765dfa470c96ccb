"""Admin API for channels, their models and their cooldowns (mounted under /admin, operator token).

Changes reach every web process with its next catalog refresh (HEYTOKEN_CATALOG_REFRESH_SECONDS).
Cooldowns are read from Redis, the shared truth, not from this process's copy.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from app.api.api_docs import docs
from app.api.deps import resources_of
from app.channels import cooldowns
from app.channels import service as channels
from app.channels.schemas import (
    ChannelCreateBody,
    ChannelList,
    ChannelModelsBody,
    ChannelObject,
    ChannelUpdateBody,
    CooldownList,
    Removed,
    channel_public,
)
from app.core.db import unit_of_work
from app.core.edge import is_clean_id
from app.core.errors import NotFound
from app.core.params import NamePath

log = logging.getLogger("heytoken.channels")


async def _board(request: Request[Any, Any, Any]) -> dict[str, cooldowns.Cooldown]:
    res = resources_of(request)
    return await cooldowns.read_board(res.redis, res.settings.redis_prefix)


@get("/channels", operation_id="adminListChannels", responses=docs(ChannelList))
async def list_channels(request: Request[Any, Any, Any]) -> dict[str, Any]:
    res = resources_of(request)
    async with res.sessionmaker() as session:
        rows = await channels.list_channels(session)
    board = await _board(request)
    return {"object": "list", "data": [channel_public(c, models, board.get(c.id)) for c, models in rows]}


@post("/channels", operation_id="adminCreateChannel", responses=docs(ChannelObject, 409, status=201), status_code=201)
async def create_channel(request: Request[Any, Any, Any], data: JSONBody[ChannelCreateBody]) -> dict[str, Any]:
    res = resources_of(request)
    fields = data.fields()
    async with unit_of_work(res.sessionmaker) as session:
        channel = await channels.add_channel(session, secret_key=res.settings.resolved_secret_key(), **fields)
        models = await channels.models_of(session, channel)
    return channel_public(channel, models, None)


@get("/channels/{channel:str}", operation_id="adminRetrieveChannel", responses=docs(ChannelObject, 404))
async def retrieve_channel(request: Request[Any, Any, Any], channel: NamePath) -> dict[str, Any]:
    async with resources_of(request).sessionmaker() as session:
        row = await channels.get_channel(session, channel)
        models = await channels.models_of(session, row)
    return channel_public(row, models, (await _board(request)).get(row.id))


@patch("/channels/{channel:str}", operation_id="adminUpdateChannel", responses=docs(ChannelObject, 404))
async def update_channel(
    request: Request[Any, Any, Any], channel: NamePath, data: JSONBody[ChannelUpdateBody]
) -> dict[str, Any]:
    res = resources_of(request)
    fields = data.fields()
    async with unit_of_work(res.sessionmaker) as session:
        row = await channels.get_channel(session, channel)
        await channels.update_channel(session, row, secret_key=res.settings.resolved_secret_key(), **fields)
        models = await channels.models_of(session, row)
    return channel_public(row, models, (await _board(request)).get(row.id))


@delete("/channels/{channel:str}", operation_id="adminDeleteChannel", responses=docs(Removed, 404), status_code=200)
async def delete_channel(request: Request[Any, Any, Any], channel: NamePath) -> dict[str, Any]:
    res = resources_of(request)
    async with unit_of_work(res.sessionmaker) as session:
        removed = await channels.remove_channel(session, channel)
    try:
        await cooldowns.reset(res.redis, res.settings.redis_prefix, removed.id)
    except Exception:  # the channel is gone; a stale cooldown entry is only cosmetic
        log.warning("channels.cooldown_not_cleared channel=%s", removed.id, exc_info=True)
    return {"id": removed.id, "object": "channel", "deleted": True}


@post(
    "/channels/{channel:str}/models",
    operation_id="adminAddChannelModels",
    responses=docs(ChannelObject, 404, 409),
    status_code=200,
)
async def add_models(
    request: Request[Any, Any, Any], channel: NamePath, data: JSONBody[ChannelModelsBody]
) -> dict[str, Any]:
    res = resources_of(request)
    specs = list(data.models)
    async with unit_of_work(res.sessionmaker) as session:
        row = await channels.get_channel(session, channel)
        await channels.add_models(session, row, specs)
        models = await channels.models_of(session, row)
    return channel_public(row, models, (await _board(request)).get(row.id))


@delete(
    "/channels/{channel:str}/models/{model:path}",
    operation_id="adminRemoveChannelModel",
    responses=docs(ChannelObject, 404),
    status_code=200,
)
async def remove_model(request: Request[Any, Any, Any], channel: NamePath, model: FromPath[str]) -> dict[str, Any]:
    res = resources_of(request)
    async with unit_of_work(res.sessionmaker) as session:
        row = await channels.get_channel(session, channel)
        await channels.remove_model(session, row, model.lstrip("/") if is_clean_id(model) else "")
        models = await channels.models_of(session, row)
    return channel_public(row, models, (await _board(request)).get(row.id))


@get("/cooldowns", operation_id="adminListCooldowns", responses=docs(CooldownList))
async def list_cooldowns(request: Request[Any, Any, Any]) -> dict[str, Any]:
    res = resources_of(request)
    board = await _board(request)
    async with res.sessionmaker() as session:
        names = {c.id: c.name for c, _ in await channels.list_channels(session)}
    data = [{**cooldowns.public(cid, cd), "channel": names.get(cid)} for cid, cd in sorted(board.items())]
    return {"object": "list", "data": data}


@delete("/cooldowns/{channel:str}", operation_id="adminResetCooldown", responses=docs(Removed, 404), status_code=200)
async def reset_cooldown(request: Request[Any, Any, Any], channel: NamePath) -> dict[str, Any]:
    res = resources_of(request)
    async with res.sessionmaker() as session:
        row = await channels.get_channel(session, channel)
    if not await cooldowns.reset(res.redis, res.settings.redis_prefix, row.id):
        raise NotFound(f"Channel {row.name!r} is not cooling down.", param="channel", code="no_cooldown")
    return {"channel_id": row.id, "object": "cooldown", "deleted": True}


CHANNEL_ADMIN_HANDLERS = [
    list_channels,
    create_channel,
    retrieve_channel,
    update_channel,
    delete_channel,
    add_models,
    remove_model,
    list_cooldowns,
    reset_cooldown,
]
