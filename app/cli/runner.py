"""What `heytoken run` does on a fresh machine: migrate, bootstrap a local key, make sure Redis is
there, start the Procfile's processes, and print a quickstart once the API answers."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from alembic.config import Config
from redis import Redis
from redis.exceptions import RedisError

from alembic import command
from app.accounts import service as accounts
from app.core.db import create_engine, create_sessionmaker, unit_of_work
from app.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]  # the repository (alembic/, Procfile)
LOCAL_ACCOUNT = "local"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["url"] = settings.resolved_database_url()
    return config


def migrate(settings: Settings) -> None:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), "head")


async def bootstrap(settings: Settings) -> str | None:
    """On the first run, create the `local` account and a key; return the key (shown once), or None
    when the account already exists."""
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            if await accounts.find_account(session, LOCAL_ACCOUNT) is not None:
                return None
            account = await accounts.create_account(session, LOCAL_ACCOUNT)
            _, plaintext = await accounts.create_key(session, account, name="quickstart")
            return plaintext
    finally:
        await engine.dispose()


def quickstart(settings: Settings, key: str | None) -> str:
    base = settings.resolved_public_base_url()
    if key is None:
        return (
            f"HeyToken Gateway is serving at {base}/v1\n"
            f"The local account already has a key (keys are shown only once). Make a new one with:\n"
            f"  heytoken key create --account {LOCAL_ACCOUNT}\n"
        )
    return f"""HeyToken Gateway is serving at {base}/v1

Your local API key (shown once; only its hash is stored):
  {key}

Try it with curl:
  curl {base}/v1/chat/completions \\
    -H "Authorization: Bearer {key}" \\
    -H "Content-Type: application/json" \\
    -d '{{"model": "local-chat", "messages": [{{"role": "user", "content": "Hello!"}}]}}'

Or with the OpenAI Python SDK:
  python3 - <<'PY'
  from openai import OpenAI
  client = OpenAI(api_key="{key}", base_url="{base}/v1")
  reply = client.chat.completions.create(model="local-chat", messages=[{{"role": "user", "content": "Hello!"}}])
  print(reply.choices[0].message.content)
  PY
"""


def ensure_redis(settings: Settings) -> subprocess.Popen[bytes] | None:
    """Start a throwaway local redis-server when the configured local Redis is not answering."""
    try:
        Redis.from_url(settings.redis_url, socket_connect_timeout=1).ping()
        return None
    except RedisError:
        pass
    url = urlparse(settings.redis_url)
    binary = shutil.which("redis-server")
    if url.hostname not in ("127.0.0.1", "localhost") or binary is None:
        raise SystemExit(f"Redis is not reachable at {settings.redis_url}; start it or set HEYTOKEN_REDIS_URL.")
    port = str(url.port or 6379)
    print(f"heytoken: starting a local redis-server on port {port}", file=sys.stderr)
    proc = subprocess.Popen(
        [binary, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            Redis.from_url(settings.redis_url, socket_connect_timeout=1).ping()
            return proc
        except RedisError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("redis-server did not come up within 10 s")


def wait_until_serving(settings: Settings, proc: subprocess.Popen[bytes], timeout: float = 60) -> bool:
    url = f"http://{settings.host}:{settings.port}/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.1)
    return False


def run(settings: Settings, *, worker: bool = True) -> int:
    migrate(settings)
    key = asyncio.run(bootstrap(settings))
    redis_proc = ensure_redis(settings)
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HEYTOKEN_HOST": settings.host,
        "HEYTOKEN_PORT": str(settings.port),
        # The processes must find the same SQLite file and secret whatever directory they run in.
        "HEYTOKEN_VAR_DIR": str(settings.var_dir.resolve()),
    }
    processes = [] if worker and _procfile_has("worker") else ["web"]
    honcho = subprocess.Popen([str(bin_dir / "honcho"), "start", "-f", str(ROOT / "Procfile"), *processes], env=env)
    try:
        if wait_until_serving(settings, honcho):
            print("\n" + quickstart(settings, key), flush=True)
        return honcho.wait()
    except KeyboardInterrupt:
        honcho.send_signal(signal.SIGINT)
        return honcho.wait()
    finally:
        if honcho.poll() is None:
            honcho.terminate()
            honcho.wait()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait()


def _procfile_has(process: str) -> bool:
    return any(line.startswith(f"{process}:") for line in (ROOT / "Procfile").read_text().splitlines())
