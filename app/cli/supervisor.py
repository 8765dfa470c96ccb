"""The process supervisor of `heytoken run`: the Procfile's processes, each restarted when it dies.

Each process runs in a process group of its own, so a Ctrl-C reaches only the supervisor, which then
sends each process exactly one SIGTERM (a second one makes Dramatiq kill its workers hard) and waits
for it to drain. A process that exits on its own is logged once, in a line, and started again after a
back-off (0.5 s, doubling up to 30 s; reset once it has stayed up); the others keep serving. Whatever
a dead process left behind in its group (a Dramatiq master's children) is killed before the restart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
STABLE_SECONDS = 10.0
"""A process that stayed up this long counts as healthy again: its next crash restarts it at once."""
TICK = 0.1


def read_procfile(path: Path) -> dict[str, str]:
    """`name: command` lines, in order (comments and blank lines skipped)."""
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not line.lstrip().startswith("#"):
            entries[name.strip()] = command.strip()
    return entries


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


@dataclass
class Program:
    name: str
    command: str
    stop_timeout: float
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    crashes: int = 0
    restart_at: float | None = None
    starts: int = field(default=0)


class Supervisor:
    def __init__(self, programs: list[Program], env: dict[str, str], say: Callable[[str], None] | None = None) -> None:
        self.programs = programs
        self.env = env
        self.say = say or (lambda line: print(f"heytoken: {line}", file=sys.stderr, flush=True))
        self.stopping = False

    def start(self, program: Program) -> None:
        # `exec`: the process is the shell's own pid, so our one SIGTERM reaches uvicorn or Dramatiq.
        program.proc = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {program.command}"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        program.started_at = time.monotonic()
        program.restart_at = None
        program.starts += 1

    def start_all(self) -> None:
        for program in self.programs:
            self.start(program)

    def request_stop(self, signum: int = signal.SIGTERM, frame: object = None) -> None:
        self.stopping = True

    def alive(self, name: str) -> bool:
        program = next(p for p in self.programs if p.name == name)
        return program.proc is not None and program.proc.poll() is None

    def tick(self) -> None:
        """Notice exits and do the restarts that are due."""
        now = time.monotonic()
        for program in self.programs:
            if program.proc is not None and (code := program.proc.poll()) is not None:
                _kill_group(program.proc.pid)
                program.proc = None
                if now - program.started_at >= STABLE_SECONDS:
                    program.crashes = 0
                delay = min(MAX_BACKOFF, FIRST_BACKOFF * 2**program.crashes)
                program.crashes += 1
                program.restart_at = now + delay
                self.say(f"{program.name} {describe_exit(code)}; restarting it in {delay:g} s")
            if program.proc is None and program.restart_at is not None and now >= program.restart_at:
                self.start(program)

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Supervise until asked to stop (a signal handler calls `request_stop`)."""
        while not self.stopping and not (until and until()):
            self.tick()
            time.sleep(TICK)

    def stop(self) -> None:
        """One SIGTERM to each process, then wait for each up to its stop timeout; SIGKILL the rest."""
        running = [p for p in self.programs if p.proc is not None and p.proc.poll() is None]
        for program in running:
            assert program.proc is not None
            with contextlib.suppress(ProcessLookupError):
                program.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        for program in running:
            assert program.proc is not None
            left = max(0.0, program.stop_timeout - (time.monotonic() - started))
            try:
                program.proc.wait(left)
            except subprocess.TimeoutExpired:
                self.say(f"{program.name} did not stop within {program.stop_timeout:g} s; killing it")
            _kill_group(program.proc.pid)
            program.proc.wait()
        for program in self.programs:
            if program.proc is not None:
                _kill_group(program.proc.pid)
                program.proc = None


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
