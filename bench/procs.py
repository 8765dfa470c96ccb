"""Processes of a benchmark run: the mock, the reference and the gateway, pinned to their cores."""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def procfile_command(process: str, env: dict[str, str]) -> list[str] | None:
    """The Procfile's command for `process`, ${VAR:-default} expanded from `env`; None if absent."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{process}:"):
            command = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1), m.group(2)), line.split(":", 1)[1])
            args = shlex.split(command)
            return [str(BIN / args[0]) if (BIN / args[0]).exists() else args[0], *args[1:]]
    return None


def web_command(port: int, app: str | None = None) -> list[str]:
    """The Procfile's web line on `port`; with `app`, the same server serving another ASGI factory."""
    command = procfile_command(
        "web", {"HEYTOKEN_HOST": "127.0.0.1", "HEYTOKEN_PORT": str(port), "WEB_CONCURRENCY": "1"}
    )
    if command is None:
        raise SystemExit("the Procfile has no web: line")
    if app is not None:
        command = [app if arg == "app.api.main:create_app" else arg for arg in command]
    return command


def http_request(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 5
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=payload, headers={"content-type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Proc:
    """A child process pinned to `cpus` (set before exec, so every thread it starts inherits it)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], cpus: set[int] | None, log: Path) -> None:
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._out = log.open("wb")
        self.started = time.perf_counter()

        def pin() -> None:
            if cpus:
                os.sched_setaffinity(0, cpus)
            # Runs in their own session (so stop() can signal the whole group), yet die with the
            # driver: a driver killed mid-run (a test's timeout, Ctrl-C) leaves no server behind.
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

        self.popen = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE if name.endswith("mock") else self._out,
            stderr=self._out,
            preexec_fn=pin,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_http(self, port: int, path: str = "/healthz", timeout: float = 60, **kwargs: Any) -> float:
        """Poll until `path` answers 200; return the seconds since the process was started."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.tail()}")
            try:
                status, _ = http_request(
                    port, kwargs.get("method", "GET"), path, kwargs.get("body"), kwargs.get("headers")
                )
                if status == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError(f"{self.name} did not answer 200 on {path} within {timeout}s:\n{self.tail()}")

    def peak_rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def group_cpu_seconds(self) -> float:
        """utime + stime of every live process of this one's session (a Dramatiq worker's children too)."""
        from bench.loadgen import cpu_seconds

        total = 0.0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
                if int(fields[3]) == self.pid:  # the session id (each Proc starts a session of its own)
                    total += cpu_seconds(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
        return total

    def tail(self, lines: int = 30) -> str:
        self._out.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._out.close()


def start_mock(cpus: set[int] | None, log: Path, chunks: int, video_seconds: float = 0.0) -> tuple[Proc, int]:
    command = [sys.executable, "-m", "bench.mock", "--chunks", str(chunks), "--video-seconds", str(video_seconds)]
    proc = Proc("mock", command, dict(os.environ), cpus, log)
    assert proc.popen.stdout is not None
    line = proc.popen.stdout.readline().decode()
    if not line.startswith("READY "):
        proc.stop()
        raise RuntimeError(f"the mock upstream did not start: {line!r}\n{proc.tail()}")
    return proc, int(line.split()[1])
