"""`heytoken cache …`: the response cache's operator commands (docs/caching.md)."""

from __future__ import annotations

import json

import click

from app.accounts import service as accounts
from app.api.resources import create_cache
from app.cache import service
from app.cli.base import _async, main
from app.core.db import create_engine, create_sessionmaker, unit_of_work
from app.core.settings import get_settings


@main.group()
def cache() -> None:
    """The response cache."""


@cache.command("clear")
@click.argument("account")
@_async
async def cache_clear(account: str) -> None:
    """Delete an account's cached answers; prints how many."""
    settings = get_settings()
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            account_id = (await accounts.get_account(session, account)).id
    finally:
        await engine.dispose()
    store = create_cache(settings)
    try:
        click.echo(await store.delete_account(account_id))
    finally:
        await store.aclose()


@cache.command("default")
@click.option("--account", default=None, help="The account (name or id).")
@click.option("--key", default=None, help="The key (key_…); takes precedence over its account's default.")
@click.option("--ttl", required=True, help="Seconds to cache every request without an opt-in; 0 off; 'none' unset.")
@_async
async def cache_default(account: str | None, key: str | None, ttl: str) -> None:
    """Cache a key's or an account's requests without an opt-in."""
    if key is not None:
        target, ident = "key", key
    elif account is not None:
        target, ident = "account", account
    else:
        raise click.UsageError("give --account or --key")
    seconds = None if ttl.lower() == "none" else int(ttl)
    engine = create_engine(get_settings())
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            answer = await service.set_default(session, target, ident, seconds)
    finally:
        await engine.dispose()
    click.echo(json.dumps(answer))
