"""The operator's channels: add, edit, enable/disable, their models, and the live cooldown board
(read from Redis, the shared truth, as GET /admin/cooldowns does). Through app.channels.service."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post

from app.channels import cooldowns
from app.channels import service as channels
from app.channels.models import ProviderType
from app.channels.schemas import ChannelCreateBody, ChannelUpdateBody, channel_public
from app.console.pages import redirect, render
from app.console.resources import resources
from app.core.db import unit_of_work
from app.core.edge import convert
from app.core.errors import GatewayError
from app.core.params import NamePath

BACK = "/console/operator/channels"


def _models(text: str) -> list[str]:
    return [m.strip() for m in text.replace("\n", ",").split(",") if m.strip()]


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else None


@get("/operator/channels")
async def channels_page(request: Request[Any, Any, Any]) -> Response[Any]:
    res = resources(request)
    async with res.sessionmaker() as session:
        rows = await channels.list_channels(session)
    board = await cooldowns.read_board(res.redis, res.settings.redis_prefix)
    listed = [channel_public(c, models, board.get(c.id)) for c, models in rows]
    return render(
        request,
        "operator_channels.html",
        channels=listed,
        providers=[p.value for p in ProviderType if p is not ProviderType.LOCAL],
    )


@post("/operator/channels", status_code=303)
async def add_channel(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    res = resources(request)
    raw: dict[str, Any] = {
        "name": str(form.get("name") or "").strip(),
        "provider": str(form.get("provider") or "").strip(),
        "base_url": str(form.get("base_url") or "").strip(),
        "api_key": str(form.get("api_key") or "") or None,
        "models": _models(str(form.get("models") or "")),
    }
    for name in ("priority", "weight"):
        value = _int(str(form.get(name) or ""))
        if value is not None:
            raw[name] = value
    try:
        async with unit_of_work(res.sessionmaker) as session:
            channel = await channels.add_channel(session, secret_key=res.settings.resolved_secret_key(),
                                                 **convert(raw, ChannelCreateBody).fields())  # fmt: skip
    except GatewayError as exc:
        return redirect(request, BACK, error=exc.message)
    return redirect(request, BACK, notice=f"Channel {channel.name} added; every process serves it within seconds.")


@post("/operator/channels/{channel:str}", status_code=303)
async def edit_channel(request: Request[Any, Any, Any], channel: NamePath) -> Response[Any]:
    form = await request.form()
    res = resources(request)
    raw: dict[str, Any] = {}
    if form.get("enabled") in ("true", "false"):
        raw["enabled"] = form.get("enabled") == "true"
    for name in ("priority", "weight"):
        value = _int(str(form.get(name) or ""))
        if value is not None:
            raw[name] = value
    for name in ("base_url", "api_key"):
        if form.get(name):
            raw[name] = str(form.get(name))
    try:
        async with unit_of_work(res.sessionmaker) as session:
            row = await channels.get_channel(session, channel)
            await channels.update_channel(session, row, secret_key=res.settings.resolved_secret_key(),
                                          **convert(raw, ChannelUpdateBody).fields())  # fmt: skip
            if form.get("add_models"):
                await channels.add_models(session, row, _models(str(form.get("add_models"))))
            if form.get("remove_model"):
                await channels.remove_model(session, row, str(form.get("remove_model")))
    except GatewayError as exc:
        return redirect(request, BACK, error=exc.message)
    return redirect(request, BACK, notice=f"Channel {row.name} saved.")


@post("/operator/channels/{channel:str}/cooldown/reset", status_code=303)
async def reset_cooldown(request: Request[Any, Any, Any], channel: NamePath) -> Response[Any]:
    res = resources(request)
    async with res.sessionmaker() as session:
        row = await channels.get_channel(session, channel)
    ended = await cooldowns.reset(res.redis, res.settings.redis_prefix, row.id)
    return redirect(request, BACK, notice=f"Cooldown of {row.name} {'ended' if ended else 'was not running'}.")


HANDLERS = [channels_page, add_channel, edit_channel, reset_cooldown]
