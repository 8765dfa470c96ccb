"""Migration 0017 re-seals the stored secrets (channel keys, webhook signing secrets, current and
previous) from Fernet to secretbox, and its downgrade seals them back: each opens to the same value
on both sides, so neither an upgrade nor a rollback loses a key (issue #23)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from alembic import command
from app.accounts import service as accounts
from app.channels import service as channels
from app.cli.runner import alembic_config, migrate
from app.core import crypto
from app.core.db import create_engine, create_sessionmaker, unit_of_work
from app.core.settings import Settings
from app.webhooks import signing

STORED = [
    "SELECT secret_encrypted FROM channels",
    "SELECT secret FROM webhook_secrets",
    "SELECT previous_secret FROM webhook_secrets",
]


async def stored_tokens(settings: Settings) -> list[str]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            return [token for query in STORED for (token,) in (await conn.execute(text(query))).all()]
    finally:
        await engine.dispose()


async def test_stored_secrets_are_resealed_both_ways(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, var_dir=tmp_path, database_url="")  # type: ignore[call-arg]
    await asyncio.to_thread(migrate, settings)
    key = settings.resolved_secret_key()
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            account = await accounts.create_account(session, "acme")
            await channels.add_channel(
                session, secret_key=key, name="up", provider="openai", base_url="https://api.example.com/v1",
                api_key="sk-upstream-1", models=["gpt-x"],
            )  # fmt: skip
            await signing.ensure_secret(session, account.id, key)
            await signing.rotate(session, account.id, key, overlap_seconds=3600)
    finally:
        await engine.dispose()
    sealed = await stored_tokens(settings)
    plaintexts = [crypto.decrypt(key, token) for token in sealed]
    assert len(sealed) == 3 and plaintexts[0] == "sk-upstream-1"
    assert not any(crypto.is_legacy(token) for token in sealed)

    config = alembic_config(settings)
    await asyncio.to_thread(command.downgrade, config, "0016")
    legacy = await stored_tokens(settings)
    assert all(token.startswith("gAAAA") for token in legacy)  # Fernet, as the code before 0017 reads
    assert [crypto.decrypt(key, token) for token in legacy] == plaintexts

    await asyncio.to_thread(command.upgrade, config, "head")
    resealed = await stored_tokens(settings)
    assert not any(crypto.is_legacy(token) for token in resealed) and resealed != sealed
    assert [crypto.decrypt(key, token) for token in resealed] == plaintexts
