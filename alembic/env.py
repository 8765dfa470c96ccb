"""Alembic environment: the URL comes from Settings (or `config.attributes["url"]`), the metadata
from app.api.tables. Configured from pyproject.toml ([tool.alembic]); there is no alembic.ini."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import app.api.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from alembic import context
from app.core.settings import get_settings

config = context.config
url: str = config.attributes.get("url") or get_settings().resolved_database_url()
target_metadata = SQLModel.metadata


def _configure(connection: Connection | None = None, **kwargs: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table so one revision runs on both.
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
        **kwargs,
    )


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
    await engine.dispose()


if context.is_offline_mode():
    _configure(url=url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (existing := config.attributes.get("connection")) is not None:
    _run_sync(existing)
else:
    asyncio.run(_run_online())
