"""The supervisor of `heytoken run`, on throwaway commands: a process that keeps dying is logged once
per exit and restarted after a doubling back-off, while its sibling keeps running; a stop sends each
process one SIGTERM."""

from __future__ import annotations

from pathlib import Path

from app.cli.supervisor import Program, Supervisor
from tests.support import poll


def test_a_crashing_process_is_restarted_with_back_off_and_the_other_keeps_running(tmp_path: Path) -> None:
    said: list[str] = []
    crashing = Program("worker", "sh -c 'exit 3'", stop_timeout=5)
    steady = Program("web", "sleep 60", stop_timeout=5)
    supervisor = Supervisor([steady, crashing], env={"PATH": "/usr/bin:/bin"}, say=said.append)
    supervisor.start_all()
    steady_pid = steady.proc.pid if steady.proc else None
    try:
        supervisor.run(until=lambda: crashing.starts >= 4)
    finally:
        supervisor.stop()
    assert said[:3] == [
        "worker exited with status 3; restarting it in 0.5 s",
        "worker exited with status 3; restarting it in 1 s",
        "worker exited with status 3; restarting it in 2 s",
    ]
    assert not any(line.startswith("web") for line in said)
    assert steady.starts == 1 and steady_pid is not None


def test_stop_sends_one_sigterm_and_waits_for_the_drain(tmp_path: Path) -> None:
    marker, ready = tmp_path / "terms", tmp_path / "ready"
    # Counts the SIGTERMs it gets, takes a moment to drain after the first, then exits 0.
    script = f"trap 'echo term >> {marker}; sleep 0.3; exit 0' TERM; touch {ready}; while :; do sleep 0.05; done"
    program = Program("worker", f'sh -c "{script}"', stop_timeout=5)
    supervisor = Supervisor([program], env={"PATH": "/usr/bin:/bin"}, say=lambda line: None)
    supervisor.start_all()
    poll(ready.exists, timeout=10, message="the trap installed")
    proc = program.proc
    supervisor.stop()
    assert proc is not None and proc.returncode == 0
    poll(marker.exists, timeout=5, message="the trap ran")
    assert marker.read_text() == "term\n"
