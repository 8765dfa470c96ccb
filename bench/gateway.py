"""The gateway under test: its state directory, the bench account, key and channels, and its env."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from app.accounts import service as accounts
from app.channels import service as channels
from app.cli.runner import migrate
from app.core.db import create_engine, create_sessionmaker, unit_of_work
from app.core.settings import Settings
from bench.procs import BIN

# Public model → the mock's upstream model (the mock reads the stream shape from the name).
SLOW_STREAM = "mock-chat:c20:d10"
MODELS = {
    "bench-chat": "mock-chat",
    "bench-slow": SLOW_STREAM,
    "bench-embedding": "mock-embedding",
}


@dataclass
class Gateway:
    settings: Settings
    env: dict[str, str]
    key: str
    key_id: str
    account_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"}

    def env_with(self, **overrides: str) -> dict[str, str]:
        return {**self.env, **{f"HEYTOKEN_{k.upper()}": v for k, v in overrides.items()}}


def settings_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEYTOKEN_")}
    env.update(
        {
            "HEYTOKEN_ENV": "production",
            "HEYTOKEN_VAR_DIR": str(settings.var_dir),
            "HEYTOKEN_DATABASE_URL": settings.resolved_database_url(),
            "HEYTOKEN_REDIS_URL": settings.redis_url,
            "HEYTOKEN_REDIS_PREFIX": settings.redis_prefix,
            "HEYTOKEN_SECRET_KEY": settings.resolved_secret_key().decode(),
            "HEYTOKEN_LOG_LEVEL": "WARNING",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


def prepare(var_dir: Path, upstream_base_url: str, database_url: str = "", redis_url: str = "") -> Gateway:
    run = uuid.uuid4().hex[:8]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        var_dir=var_dir.resolve(),
        database_url=database_url,
        redis_url=redis_url or Settings.model_fields["redis_url"].default,
        redis_prefix=f"ht-bench-{run}:",
        log_level="WARNING",
    )
    migrate(settings)

    async def setup() -> tuple[str, str, str]:
        engine = create_engine(settings)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                account = await accounts.create_account(session, f"bench-{run}")
                api_key, plaintext = await accounts.create_key(session, account, name="bench")
                await channels.add_channel(
                    session,
                    secret_key=settings.resolved_secret_key(),
                    name=f"mock-{run}",
                    provider="openai",
                    base_url=upstream_base_url,
                    api_key="sk-mock",
                    models=[f"{public}={upstream}" for public, upstream in MODELS.items()],
                    priority=0,
                    weight=1,
                    options=None,
                )
            return plaintext, api_key.id, account.id
        finally:
            await engine.dispose()

    key, key_id, account_id = asyncio.run(setup())
    return Gateway(settings, settings_env(settings), key, key_id, account_id)


def job_rows(gateway: Gateway) -> int:
    """Job rows the gateway wrote for the bench account (evidence that the job log was on)."""
    from sqlalchemy import func, select

    from app.jobs.models import Job

    async def count() -> int:
        engine = create_engine(gateway.settings)
        try:
            async with engine.connect() as conn:
                stmt = select(func.count()).select_from(Job).where(Job.account_id == gateway.account_id)  # type: ignore[arg-type]
                return int((await conn.execute(stmt)).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count())
