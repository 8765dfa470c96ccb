"""Helpers shared by the tests: a gateway served on a real socket, polling with a deadline."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from app.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def procfile_command(process: str, env: dict[str, str]) -> list[str]:
    """The Procfile's command line for `process`, with ${VAR:-default} expanded from `env`."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith(f"{process}:"))
    command = line.split(":", 1)[1].strip()

    def expand(match: re.Match[str]) -> str:
        return env.get(match.group(1), match.group(2))

    args = shlex.split(re.sub(r"\$\{(\w+):-([^}]*)\}", expand, command))
    return [str(BIN / args[0]), *args[1:]]


def settings_env(settings: Settings) -> dict[str, str]:
    """The HEYTOKEN_* environment that reproduces `settings` in another process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEYTOKEN_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, list | dict):
            import json

            value = json.dumps(value)
        env[f"HEYTOKEN_{name.upper()}"] = str(value)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def poll(
    check: Callable[[], T | None], *, timeout: float = 10.0, interval: float = 0.02, message: str = "condition"
) -> T:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


async def apoll(
    check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02, message: str = "condition"
) -> Any:
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if hasattr(result, "__await__"):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


class LiveServer:
    """The gateway's web process, started exactly as the Procfile starts it (real socket)."""

    def __init__(self, settings: Settings, **procfile_env: str) -> None:
        # uvicorn's own log stays at its default (warning): at trace it also logs every WebSocket frame
        # (the realtime tests' sessions), and a CI run timed out a handshake under that load. Pass
        # WEB_LOG_LEVEL="trace" to a LiveServer to see each connection and request when chasing a stall.
        self.procfile_env = procfile_env
        """Values for the Procfile's ${VAR:-default}s (e.g. WEB_SHUTDOWN_TIMEOUT_SECONDS)."""
        self.port = free_port()
        self.settings = settings.model_copy(update={"port": self.port, "host": "127.0.0.1"})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(settings.var_dir) / f"web-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> LiveServer:
        env = settings_env(self.settings)
        cmd = procfile_command(
            "web", {**self.procfile_env, "HEYTOKEN_HOST": "127.0.0.1", "HEYTOKEN_PORT": str(self.port)}
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # The child has its own copy of the log's fd: ours is closed now, not whenever the collector frees
        # this frame (a failed health check's traceback cycle kept it open until a later collection).
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited at start-up:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway did not start within {timeout}s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def logs(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def dump(self, timeout: float = 5.0, tail: int = 20_000) -> str:
        """The end of the server's log, after asking it (SIGUSR1) where each task is waiting: what a failed
        test that talked to it shows, so a request that hung says where."""
        if self.proc is not None and self.proc.poll() is None:
            ask_for_dump([self.proc.pid], self.logs, timeout)
        sockets = ""
        if shutil.which("ss"):
            # Recv-Q on the listening socket: connections not accepted yet; on a connection: bytes the
            # server has not read.
            listing = ["ss", "-tan", f"( sport = :{self.port} or dport = :{self.port} )"]
            sockets = subprocess.run(listing, capture_output=True, text=True, check=False).stdout
        return f"{self.logs()[-tail:]}\n--- sockets of port {self.port} (ss -tan)\n{sockets}"


def ask_for_dump(pids: list[int], logs: Callable[[], str], timeout: float) -> None:
    """SIGUSR1 to `pids` (app/observability/dump.py), then wait up to `timeout` for a new dump in `logs()`."""
    before = logs().count("process.dump")
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline and logs().count("process.dump") == before:
        time.sleep(0.05)


class WorkerProcess:
    """A job worker, started exactly as the Procfile starts it, in its own process group."""

    def __init__(self, settings: Settings, **overrides: str) -> None:
        self.settings = settings
        self.overrides = {"HEYTOKEN_LOG_LEVEL": "INFO", **overrides}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(settings.var_dir) / f"worker-{free_port()}.log"

    def start(self, timeout: float = 60) -> WorkerProcess:
        env = {**settings_env(self.settings), **self.overrides}
        cmd = procfile_command("worker", {"WORKER_PROCESSES": "1", "WORKER_THREADS": "4"})
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:  # the child has its own copy (as LiveServer.start)
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            poll(lambda: "worker.ready" in self.logs() or self.proc.poll() is not None, timeout=timeout, interval=0.1,
                 message="worker boot")  # fmt: skip
        except AssertionError:
            self.kill()
            raise
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited at start-up:\n{self.logs()}")
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown hooks, no requeue of prefetched messages."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        # SIGTERM to the master only: it forwards one to each worker process. A second SIGTERM (as a
        # signal to the whole group delivers) makes Dramatiq's worker process exit hard, and it then
        # hangs on its non-daemon event-loop thread.
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def dump(self, timeout: float = 5.0, tail: int = 20_000) -> str:
        """The end of the worker's log, after asking each worker process (SIGUSR1; never the main
        process, which would die of it) where its tasks and threads are waiting."""
        if self.proc is not None and self.proc.poll() is None:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            pids = [int(pid) for pid in children.read_text().split()] if children.exists() else []
            ask_for_dump(pids, self.logs, timeout)
        return self.logs()[-tail:]


def write_self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for `host` (a name, or an IP address) and its key, as PEM files in
    `directory`; the certificate is its own CA, so a client trusts it by loading it as the CA file."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    try:
        alt_name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt_name = x509.DNSName(host)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([alt_name]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file
