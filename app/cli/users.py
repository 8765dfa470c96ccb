"""`heytoken user …`: console users (app/console). `create` prints the new user's id on stdout."""

from __future__ import annotations

import click

from app.accounts import service as accounts
from app.cli.base import _async, main
from app.console import users
from app.console.models import Role
from app.core.db import create_engine, create_sessionmaker, unit_of_work
from app.core.settings import get_settings


@main.group()
def user() -> None:
    """People who sign in to the console."""


@user.command("create")
@click.option("--account", help="The account (name or id) the user belongs to; omit with --role operator.")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.OWNER.value, show_default=True)
@click.password_option(
    "--password",
    envvar="HEYTOKEN_NEW_USER_PASSWORD",
    help="Prompted for when not given (or $HEYTOKEN_NEW_USER_PASSWORD).",
)
@_async
async def user_create(account: str | None, email: str, role: str, password: str) -> None:
    engine = create_engine(get_settings())
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            owner = await accounts.get_account(session, account) if account else None
            created = await users.create_user(session, email, password, account=owner, role=Role(role))
    finally:
        await engine.dispose()
    click.echo(created.id)


@user.command("list")
@click.option("--account", help="Only this account's users.")
@_async
async def user_list(account: str | None) -> None:
    engine = create_engine(get_settings())
    try:
        async with create_sessionmaker(engine)() as session:
            owner = await accounts.get_account(session, account) if account else None
            rows = await users.list_users(session, owner.id if owner else None)
    finally:
        await engine.dispose()
    for u in rows:
        click.echo(f"{u.id}\t{u.email}\t{u.role}\t{u.account_id or '-'}\t{u.created_at:%Y-%m-%d %H:%M}")
