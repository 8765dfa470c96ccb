"""`heytoken`: the admin command line. Create commands print only the new id or key on stdout."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from sqlmodel import col, select

from app.accounts import service as accounts
from app.accounts.models import AccountStatus
from app.api.resources import create_cache, create_redis
from app.billing.models import Price
from app.channels import cooldowns
from app.channels import service as channels
from app.channels.catalog import local_catalog
from app.channels.models import ProviderType
from app.cli import cache as _cache  # noqa: F401  (registers `heytoken cache …`)
from app.cli import runner
from app.cli.base import _async, main, operations
from app.core.db import create_engine, create_sessionmaker, unit_of_work
from app.core.money import format_usd
from app.core.settings import Settings, get_settings

T = TypeVar("T")


async def _in_session(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            return await work(session)
    finally:
        await engine.dispose()


@main.command()
def migrate() -> None:
    """Apply database migrations (idempotent)."""
    runner.migrate(get_settings())
    click.echo("database is at the latest revision", err=True)


@main.command()
@click.option("--no-worker", is_flag=True, help="Start only the web process.")
def run(no_worker: bool) -> None:
    """Set up everything and run the whole system (web + worker) in the foreground."""
    raise SystemExit(runner.run(get_settings(), worker=not no_worker))


@main.command()
def bootstrap() -> None:
    """Create the local account and a key on first run, and print the quickstart."""
    key = asyncio.run(runner.bootstrap(get_settings()))
    click.echo(runner.quickstart(get_settings(), key))


@main.group()
def account() -> None:
    """Accounts."""


@account.command("create")
@click.argument("name")
@click.option("--tier", default="default", show_default=True)
@_async
async def account_create(name: str, tier: str) -> None:
    created = await _in_session(get_settings(), lambda s: accounts.create_account(s, name, tier=tier))
    click.echo(created.id)


@account.command("list")
@_async
async def account_list() -> None:
    """Accounts: id, name, status, tier, balance (requests in flight may hold part of it), created."""
    for a in await _in_session(get_settings(), accounts.list_accounts):
        balance = format_usd(a.balance)
        click.echo(f"{a.id}\t{a.name}\t{a.status}\t{a.tier}\t{balance}\t{a.created_at:%Y-%m-%d %H:%M}")


@account.command("suspend")
@click.argument("name")
@_async
async def account_suspend(name: str) -> None:
    """Refuse every key of the account (at once, on every process)."""
    async with operations() as ops:
        click.echo((await ops.set_account_status(name, AccountStatus.SUSPENDED)).id)


@account.command("resume")
@click.argument("name")
@_async
async def account_resume(name: str) -> None:
    async with operations() as ops:
        click.echo((await ops.set_account_status(name, AccountStatus.ACTIVE)).id)


@account.command("clear-cache")
@click.argument("name")
@_async
async def account_clear_cache(name: str) -> None:
    """Delete the account's cached answers (docs/caching.md); prints how many."""
    settings = get_settings()
    account_id = (await _in_session(settings, lambda s: accounts.get_account(s, name))).id
    cache = create_cache(settings)
    try:
        click.echo(await cache.delete_account(account_id))
    finally:
        await cache.aclose()


@main.group()
def key() -> None:
    """API keys."""


@key.command("create")
@click.option("--account", "account_name", required=True, help="Account name or id.")
@click.option("--name", default=None, help="A label for the key.")
@_async
async def key_create(account_name: str, name: str | None) -> None:
    async def work(session: Any) -> str:
        owner = await accounts.get_account(session, account_name)
        _, plaintext = await accounts.create_key(session, owner, name=name)
        return plaintext

    click.echo(await _in_session(get_settings(), work))


@key.command("list")
@click.option("--account", "account_name", default=None, help="Only this account's keys.")
@_async
async def key_list(account_name: str | None) -> None:
    async def work(session: Any) -> list[Any]:
        owner = await accounts.get_account(session, account_name) if account_name else None
        return await accounts.list_keys(session, owner)

    for k in await _in_session(get_settings(), work):
        state = "revoked" if k.revoked_at else "active"
        click.echo(f"{k.id}\t{accounts.mask_key(k)}\t{k.account_id}\t{state}\t{k.name or ''}")


@key.command("revoke")
@click.argument("key_id")
@_async
async def key_revoke(key_id: str) -> None:
    async with operations() as ops:
        revoked = await ops.revoke_key(key_id)
    click.echo(revoked.id)


@main.group()
def channel() -> None:
    """Upstream channels. Running processes pick changes up within HEYTOKEN_CATALOG_REFRESH_SECONDS."""


def _options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE pairs; a value is read as JSON when it parses (numbers, true, null, objects), else as text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


PROVIDERS = ", ".join(p.value for p in ProviderType if p != ProviderType.LOCAL)
OPTION_HELP = "Channel option KEY=VALUE (timeouts, cooldowns, headers…); repeat."


@channel.command("add")
@click.option("--name", required=True)
@click.option("--provider", required=True, help=f"One of: {PROVIDERS}.")
@click.option("--base-url", required=True, help="e.g. https://api.openai.com/v1")
@click.option("--api-key", default=None, envvar="HEYTOKEN_CHANNEL_API_KEY", help="Upstream key (or env).")
@click.option("--model", "models", multiple=True, required=True, help="MODEL or MODEL=UPSTREAM_NAME; repeat.")
@click.option("--priority", default=0, show_default=True, type=int, help="Higher tiers are tried first.")
@click.option("--weight", default=1, show_default=True, type=int, help="Share of traffic inside its tier.")
@click.option("--option", "option_pairs", multiple=True, help=OPTION_HELP)
@_async
async def channel_add(
    name: str,
    provider: str,
    base_url: str,
    api_key: str | None,
    models: tuple[str, ...],
    priority: int,
    weight: int,
    option_pairs: tuple[str, ...],
) -> None:
    settings = get_settings()
    created = await _in_session(
        settings,
        lambda s: channels.add_channel(
            s,
            secret_key=settings.resolved_secret_key(),
            name=name,
            provider=provider,
            base_url=base_url,
            api_key=api_key,
            models=list(models),
            priority=priority,
            weight=weight,
            options=_options(option_pairs),
        ),
    )
    click.echo(created.id)
    public = [channels.parse_model_spec(spec)[0] for spec in models]
    priced = await _in_session(settings, lambda s: _priced(s, public))
    unpriced = [model for model in public if model not in priced]
    if unpriced:
        # stderr: stdout stays the new id alone, for scripts.
        cli = runner.cli_command()
        click.echo(
            f"Next: price {', '.join(unpriced)}; until then calls answer 403 model_not_priced. For example:",
            err=True,
        )
        for model in unpriced:
            click.echo(f"  {cli} price set {model} --input USD_PER_1M --output USD_PER_1M", err=True)
        click.echo("(images: --image USD, videos: --video-second USD; see docs/cli.md)", err=True)


async def _priced(session: Any, models: list[str]) -> set[str]:
    rows = await session.exec(select(Price.model).where(col(Price.model).in_(models)))
    return set(rows.all())


@channel.command("list")
@_async
async def channel_list() -> None:
    settings = get_settings()
    if settings.local_provider:
        names = ", ".join(m for m, _ in local_catalog(settings.extra_local_models))
        click.echo(f"ch_local\tlocal\tlocal\t(built-in)\t{names}")
    for c, models in await _in_session(settings, channels.list_channels):
        served = ", ".join(m.model if m.model == m.upstream_model else f"{m.model}={m.upstream_model}" for m in models)
        state = "" if c.enabled else "\t(disabled)"
        click.echo(
            f"{c.id}\t{c.name}\t{c.provider}\t{c.base_url}\t{served}\tpriority={c.priority}\tweight={c.weight}{state}"
        )


@channel.command("remove")
@click.argument("name_or_id")
@_async
async def channel_remove(name_or_id: str) -> None:
    settings = get_settings()
    removed = await _in_session(settings, lambda s: channels.remove_channel(s, name_or_id))
    try:
        await _with_redis(settings, lambda r: cooldowns.reset(r, settings.redis_prefix, removed.id))
    except Exception as exc:  # the channel is gone; a stale cooldown entry is only cosmetic
        click.echo(f"warning: could not clear its cooldown in Redis: {exc}", err=True)
    click.echo(removed.id)


async def _update(name_or_id: str, **changes: Any) -> None:
    settings = get_settings()

    async def work(session: Any) -> str:
        row = await channels.get_channel(session, name_or_id)
        await channels.update_channel(session, row, secret_key=settings.resolved_secret_key(), **changes)
        return row.id

    click.echo(await _in_session(settings, work))


@channel.command("update")
@click.argument("name_or_id")
@click.option("--priority", type=int, default=None)
@click.option("--weight", type=int, default=None)
@click.option("--enable/--disable", "enabled", default=None, help="Serve traffic, or not.")
@click.option("--base-url", default=None)
@click.option("--api-key", default=None, help="New upstream key ('' removes it).")
@click.option("--option", "option_pairs", multiple=True, help="KEY=VALUE to set, KEY=null to remove; repeat.")
@_async
async def channel_update(
    name_or_id: str,
    priority: int | None,
    weight: int | None,
    enabled: bool | None,
    base_url: str | None,
    api_key: str | None,
    option_pairs: tuple[str, ...],
) -> None:
    """Change a channel's priority, weight, state, URL, key or options."""
    options = _options(option_pairs) if option_pairs else None
    await _update(
        name_or_id,
        priority=priority,
        weight=weight,
        enabled=enabled,
        base_url=base_url,
        api_key=api_key,
        options=options,
    )


@channel.command("enable")
@click.argument("name_or_id")
@_async
async def channel_enable(name_or_id: str) -> None:
    await _update(name_or_id, enabled=True)


@channel.command("disable")
@click.argument("name_or_id")
@_async
async def channel_disable(name_or_id: str) -> None:
    await _update(name_or_id, enabled=False)


@channel.command("models")
@click.argument("name_or_id")
@click.option("--add", "added", multiple=True, help="MODEL or MODEL=UPSTREAM_NAME; repeat.")
@click.option("--remove", "removed", multiple=True, help="A public model id; repeat.")
@_async
async def channel_models(name_or_id: str, added: tuple[str, ...], removed: tuple[str, ...]) -> None:
    """Add or remove the models a channel serves."""

    async def work(session: Any) -> str:
        row = await channels.get_channel(session, name_or_id)
        for model in removed:
            await channels.remove_model(session, row, model)
        if added:
            await channels.add_models(session, row, list(added))
        return row.id

    click.echo(await _in_session(get_settings(), work))


async def _with_redis(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    redis = create_redis(settings)
    try:
        return await work(redis)
    finally:
        await redis.aclose()


@channel.command("cooldowns")
@_async
async def channel_cooldowns() -> None:
    """Channels cooling down (shared by every process), with the reason."""
    settings = get_settings()
    board = await _with_redis(settings, lambda r: cooldowns.read_board(r, settings.redis_prefix))
    names = {c.id: c.name for c, _ in await _in_session(settings, channels.list_channels)}
    for channel_id, cooldown in sorted(board.items()):
        view = cooldowns.public(channel_id, cooldown)
        click.echo(
            f"{channel_id}\t{names.get(channel_id, '?')}\t{view['state']}\tretry_after={view['retry_after']:.1f}s"
            f"\tfailures={view['failures']}\t{view['reason']}"
        )


@channel.command("reset-cooldown")
@click.argument("name_or_id")
@_async
async def channel_reset_cooldown(name_or_id: str) -> None:
    """End a channel's cooldown now."""
    settings = get_settings()
    row = await _in_session(settings, lambda s: channels.get_channel(s, name_or_id))
    await _with_redis(settings, lambda r: cooldowns.reset(r, settings.redis_prefix, row.id))
    click.echo(row.id)


from app.cli import money as cli_money  # noqa: E402,F401  (registers the money and limits commands on `main`)
from app.cli import users as cli_users  # noqa: E402,F401  (registers `heytoken user …`)

if __name__ == "__main__":
    main()
