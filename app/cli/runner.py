"""What `heytoken run` does on a fresh machine: migrate, bootstrap a local key, make sure Redis is
there, start the Procfile's processes, and print a quickstart once the API answers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from alembic.config import Config
from redis import Redis
from redis.exceptions import RedisError

from alembic import command
from app.accounts import service as accounts
from app.cli.supervisor import Program, Supervisor, read_procfile
from app.core.db import create_engine, create_sessionmaker, unit_of_work
from app.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]  # the repository (alembic/, Procfile)
LOCAL_ACCOUNT = "local"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["url"] = settings.resolved_database_url()
    # Migration 0017 re-seals stored secrets; the instance secret is read (or made) only if one exists.
    config.attributes["secret_key"] = settings.resolved_secret_key
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


def cli_command() -> str:
    """How to call `heytoken` from where the user is, without activating the virtualenv: the bare name
    only when the PATH already finds this very script."""
    script = Path(sys.executable).parent / "heytoken"
    found = shutil.which("heytoken")
    if found is not None and Path(found).resolve() == script.resolve():
        return "heytoken"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def quickstart(settings: Settings, key: str | None) -> str:
    """What `heytoken run` prints once the API answers. The code blocks start in the first column and
    call the project's own Python, so each runs as pasted into a shell (tests/test_run.py does that)."""
    base = settings.resolved_public_base_url()
    cli = cli_command()
    footer = (
        f"The admin command line, with nothing to activate: {cli} --help\n"
        "(run it from this directory: it reads the same .env and HEYTOKEN_* settings as the server).\n"
        "Stop everything with Ctrl-C.\n"
    )
    if key is None:
        return (
            f"HeyToken Gateway is serving at {base}/v1\n\n"
            f"The local account already has a key (keys are shown only once). Make a new one with:\n"
            f"  {cli} key create --account {LOCAL_ACCOUNT}\n\n{footer}"
        )
    python = Path(sys.executable)
    return f"""HeyToken Gateway is serving at {base}/v1

Your local API key (shown once; only its hash is stored):
  {key}

Try it with curl:

curl {base}/v1/chat/completions \\
  -H "Authorization: Bearer {key}" \\
  -H "Content-Type: application/json" \\
  -d '{{"model": "local-chat", "messages": [{{"role": "user", "content": "Hello!"}}]}}'

Or with the OpenAI Python SDK (installed in the project's virtualenv):

{python} - <<'PY'
from openai import OpenAI
client = OpenAI(api_key="{key}", base_url="{base}/v1")
reply = client.chat.completions.create(model="local-chat", messages=[{{"role": "user", "content": "Hello!"}}])
print(reply.choices[0].message.content)
PY

{footer}"""


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
        [binary, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C must not stop Redis under the worker while it drains
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


def wait_until_serving(settings: Settings, supervisor: Supervisor, timeout: float = 60) -> bool:
    url = f"http://{settings.host}:{settings.port}/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not supervisor.stopping:
        supervisor.tick()
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.1)
    return False


@contextlib.contextmanager
def own_terminal() -> Iterator[None]:
    """Become the terminal's foreground process group for the duration.

    Under `make run`, make shares our process group, so a Ctrl-C reached make too, which then died by
    SIGINT however cleanly we stopped (`make: *** … Error 130`, status 130). With the terminal ours,
    the Ctrl-C comes to us alone; we stop everything and exit 0, and so does make."""
    if os.getpgrp() == os.getpid():
        yield  # already a process group of our own (a shell's job, a service)
        return
    try:
        tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        yield  # no terminal: nobody can type Ctrl-C
        return
    previous_handler = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        previous = os.tcgetpgrp(tty)
        if previous != os.getpgrp():
            yield  # started in the background: leave the terminal to whoever has it
            return
        os.setpgid(0, 0)
        os.tcsetpgrp(tty, os.getpgrp())
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.tcsetpgrp(tty, previous)
    finally:
        signal.signal(signal.SIGTTOU, previous_handler)
        os.close(tty)


def run(settings: Settings, *, worker: bool = True) -> int:
    """Everything `make run` does after the install; returns 0 on Ctrl-C or SIGTERM."""
    with own_terminal():
        return _run(settings, worker=worker)


def _run(settings: Settings, *, worker: bool) -> int:
    print("heytoken: applying database migrations", file=sys.stderr, flush=True)
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
    commands = read_procfile(ROOT / "Procfile")
    names = ["web", "worker"] if worker and "worker" in commands else ["web"]
    supervisor = Supervisor([Program(name, commands[name], _stop_timeout(name, env)) for name in names], env)
    handlers = {sig: signal.signal(sig, supervisor.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        supervisor.start_all()
        if wait_until_serving(settings, supervisor):
            print("\n" + quickstart(settings, key), flush=True)
        elif not supervisor.stopping:
            print("heytoken: the API has not answered within 60 s; see the log above", file=sys.stderr, flush=True)
        supervisor.run()
        print("heytoken: stopping (one SIGTERM each; the worker finishes its steps)", file=sys.stderr, flush=True)
    finally:
        supervisor.stop()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait()
    return 0


def _stop_timeout(name: str, env: dict[str, str]) -> float:
    """How long a process may drain after its SIGTERM: its own shutdown bound (Procfile), plus slack."""
    if name == "worker":
        return int(env.get("WORKER_SHUTDOWN_TIMEOUT_MS") or 30_000) / 1000 + 5
    return float(env.get("WEB_SHUTDOWN_TIMEOUT_SECONDS") or 10) + 5
