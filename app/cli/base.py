"""The `heytoken` command group and what every command module shares: here, below commands.py and
money.py, so that the money commands register on the group without importing commands.py back."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import ParamSpec, TypeVar

import click

from app.api.resources import create_redis
from app.billing.limits.service import Gate
from app.billing.operations import Operations
from app.core.db import create_engine, create_sessionmaker
from app.core.errors import GatewayError
from app.core.settings import Settings, get_settings

P = ParamSpec("P")
T = TypeVar("T")


def _async(fn: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return asyncio.run(fn(*args, **kwargs))  # type: ignore[arg-type]
        except GatewayError as exc:
            raise click.ClickException(exc.message) from exc

    return wrapper


@contextlib.asynccontextmanager
async def operations(settings: Settings | None = None) -> AsyncIterator[Operations]:
    """The same operator functions the admin API uses, on resources made for this one command."""
    settings = settings or get_settings()
    engine = create_engine(settings)
    redis = create_redis(settings)
    try:
        yield Operations(create_sessionmaker(engine), Gate(redis, settings))
    finally:
        await redis.aclose()
        await engine.dispose()


@click.group()
def main() -> None:
    """HeyToken Gateway administration."""
