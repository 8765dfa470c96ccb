"""House rules that a reviewer would otherwise have to remember."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

import app.api.tables  # noqa: F401
from app.core.db import SessionMaker

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(("package", "forbidden"), [("app", ("workers",)), ("storage", ("app", "workers"))])
def test_dependency_rule(package: str, forbidden: tuple[str, ...]) -> None:
    """Imports flow workers → app → storage; app never imports workers, storage imports neither."""
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in imports_of(path)
        if name.split(".")[0] in forbidden
    ]
    assert offenders == []


def test_web_process_leaves_worker_libraries_unloaded() -> None:
    """Pillow and PyAV (local-provider files), httpx (media adapters, webhook delivery) and Dramatiq's
    own package are for the workers: the web process never imports them (each costs resident memory
    and start-up time in every web process). Nor PostgreSQL's SQLAlchemy dialect and asyncpg before an
    engine on PostgreSQL needs them (~1.5 MB and ~37 ms of start-up on SQLite)."""
    worker_only = {"PIL", "av", "boto3", "botocore", "httpx", "httpx_aiohttp", "dramatiq"}
    # Nor what only the CLI, the migrations or the tests use (issue #23: measured per library with
    # `python -X importtime` and RSS, docs/architecture.md), nor the S3 backend on local storage.
    worker_only |= {"alembic", "mako", "schemathesis", "hypothesis", "pytest", "aioboto3", "moto", "storage.s3"}
    # Nor uvicorn's --reload watcher (installed by uvicorn[standard], imported by uvicorn when present).
    worker_only |= {"watchfiles"}
    code = (
        "import sys; import uvicorn; from app.api.main import create_app; create_app(); "
        f"print(sorted(({{m.split('.')[0] for m in sys.modules}} | set(sys.modules)) & {worker_only!r}), "
        "bool({'sqlalchemy.dialects.postgresql', 'asyncpg'} & set(sys.modules)))"
    )
    env = {k: v for k, v in os.environ.items() if k != "HEYTOKEN_DATABASE_URL"}  # the default: SQLite
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[] False"


def test_web_app_loads_the_rare_routes_libraries_on_first_use() -> None:
    """What only a rare route needs is imported by its first use, not by every web process at start-up
    (issue #23, measured per library in bench/RESULTS.md): Jinja2 by the console's first page, argon2 by
    the first sign-in, the websockets client by the first realtime session to an upstream, prometheus-client
    only with metrics on. cryptography (10 MB) by none of them: a stored secret, sealed and opened here
    as the catalog opens each channel's key, goes through PyNaCl."""
    # cryptography's own package is imported by redis-py (a version check); its Rust bindings are not.
    lazy = {"jinja2", "argon2", "_argon2_cffi_bindings", "cryptography.hazmat.bindings._rust", "app.realtime.openai"}
    lazy |= {"prometheus_client"}
    code = (
        "import sys; from app.api.main import create_app; from app.core import crypto; create_app(); "
        "assert crypto.decrypt(b'k', crypto.encrypt(b'k', 'sk-upstream')) == 'sk-upstream'; "
        f"print(sorted(set(sys.modules) & {lazy!r}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "HEYTOKEN_DATABASE_URL"}
    env.update(HEYTOKEN_CONSOLE_ENABLED="true", HEYTOKEN_METRICS_ENABLED="false")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


async def test_migrations_match_the_models(sessionmaker: SessionMaker) -> None:
    """`alembic upgrade head` produced exactly the schema the models describe (no missing revision)."""

    def diff(sync_conn: object) -> list[object]:
        context = MigrationContext.configure(sync_conn)  # type: ignore[arg-type]
        return list(compare_metadata(context, SQLModel.metadata))

    async with sessionmaker() as session:
        conn: AsyncConnection = await session.connection()
        changes = await conn.run_sync(diff)
    assert changes == []


def test_the_configuration_page_lists_every_setting() -> None:
    from app.core.settings import Settings

    page = (ROOT / "docs" / "configuration.md").read_text()
    missing = [f"HEYTOKEN_{name.upper()}" for name in Settings.model_fields if f"HEYTOKEN_{name.upper()}" not in page]
    assert missing == []


def test_the_configuration_page_lists_no_unknown_setting() -> None:
    from app.core.settings import Settings

    page = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`HEYTOKEN_([A-Z0-9_]+)`", page))
    assert sorted(documented - {name.upper() for name in Settings.model_fields}) == []


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "| run the test suite | `make test` |" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_a_process_on_postgresql_leaves_sqlite_unloaded() -> None:
    """sqlite3, aiosqlite and SQLAlchemy's SQLite dialect (1.4 MB resident) are for processes on SQLite:
    on PostgreSQL the app, its engine and the driver-level SQL load none of them, as a process on SQLite
    loads no PostgreSQL dialect (the test above)."""
    sqlite_only = {"sqlite3", "_sqlite3", "aiosqlite", "sqlalchemy.dialects.sqlite", "app.core.adapters.sqlite"}
    code = (
        "import sys; import uvicorn; from app.api.main import create_app; create_app(); "
        "from app.core.db import create_engine, driver_sql; from app.core.settings import Settings; "
        "from app.core.outage import is_database_outage; "
        "engine = create_engine(Settings()); driver_sql(engine.dialect); is_database_outage(OSError()); "
        f"print(sorted(set(sys.modules) & {sqlite_only!r}), engine.dialect.name)"
    )
    env = {**os.environ, "HEYTOKEN_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/test"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[] postgresql"
