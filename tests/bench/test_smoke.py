"""A smoke run of the benchmark driver (one short scenario), so `python -m bench` cannot rot.

Nothing here is timed: it checks that the driver ran every target, printed the table and wrote a
sane JSON result. The figures themselves are the benchmark's business (bench/RESULTS.md).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.settings import Settings
from tests.support import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

TARGETS = ("direct", "reference", "gateway")


def test_bench_driver_smoke(tmp_path: Path, settings: Settings) -> None:
    command = [
        sys.executable,
        "-m",
        "bench",
        "--scenarios=c32-chat,c32-cache-hit,jobs,realtime",
        "--realtime-sessions=2",
        "--realtime-responses=2",
        "--realtime-frames=20",
        f"--targets={','.join(TARGETS)}",
        "--duration=1",
        "--warmup=0.2",
        "--rounds=1",
        "--no-clients",
        "--jobs=5",
        "--job-rate=50",
        "--job-timeout=120",
        f"--database-url={settings.resolved_database_url()}",
        f"--redis-url={settings.redis_url}",
        f"--out={tmp_path}",
    ]
    # The bench's channel lands in the suite's database: under the suite's secret key, so the live
    # servers of later tests can read it (under a key of its own, every catalog refresh of theirs
    # logged it as unreadable).
    env = {**os.environ, "HEYTOKEN_SECRET_KEY": settings.resolved_secret_key().decode()}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=540, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "### c32-chat" in done.stdout

    [result_file] = tmp_path.glob("run-*/result.json")
    result = json.loads(result_file.read_text())
    measured = result["scenarios"]["c32-chat"]["targets"]
    assert set(measured) == set(TARGETS)
    cached = result["scenarios"]["c32-cache-hit"]["targets"]
    assert set(cached) == set(TARGETS) and all(s["requests"] > 0 and s["errors"] == 0 for s in cached.values())
    for target, summary in measured.items():
        assert summary["requests"] > 0, target
        assert summary["errors"] == 0, (target, summary["statuses"])
        assert summary["p50"] > 0 and summary["p99"] >= summary["p50"], target
        assert summary["cpu_ms"] > 0, target
        assert result["peak_rss_mb"][target] > 0, target
    # The gateway really ran with its features on: the overhead header came back, job rows were written.
    assert measured["gateway"]["overhead_p50"] is not None
    assert result["job_rows_written"] > 0

    realtime = result["realtime"]
    assert "error" not in realtime, realtime
    for path in ("direct", "gateway"):
        assert realtime[path]["frames"] == 2 * 2 * 20 and realtime[path]["errors"] == 0, realtime
    assert realtime["added_ms"]["p50"] is not None
    assert "### realtime" in done.stdout

    jobs = result["jobs"]
    if jobs["skipped"] is None:
        [batch] = jobs["rates"]
        assert batch["rate"] == 50 and "| 50 " in done.stdout, jobs
        assert batch["submitted"] == 5 and batch["completed"] == 5, jobs
        assert batch["submit_latency_ms"]["p50"] > 0 and batch["queue_to_start_ms"]["p50"] > 0, jobs
        # /proc counts CPU in 10 ms ticks: five submissions (~4 ms each) can read as zero ticks.
        assert batch["web_cpu_ms_per_job"] >= 0 and batch["worker_cpu_ms_per_job"] > 0, jobs
    else:
        assert "videos" in jobs["skipped"] or "worker" in jobs["skipped"] or "video model" in jobs["skipped"]


def test_job_steps_bench_smoke(settings: Settings) -> None:
    command = [sys.executable, "-m", "bench.jobsteps", "--jobs=3", "--rounds=1"]
    if not settings.is_sqlite():
        command.append(f"--database-url={settings.resolved_database_url()}")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # The zero-delay local provider answers at once: a job is its submit step alone (issue #23).
    for step in ("create (web)", "job.submit", "all"):
        assert step in done.stdout, done.stdout
    assert "job.poll" not in done.stdout and "job.store" not in done.stdout, done.stdout


def test_memory_bench_smoke(settings: Settings) -> None:
    """The memory probe: the web process's RSS idle and after each load, every answer a 200."""
    command = [sys.executable, "-m", "bench.memory", "--seconds=0.5", "--maps", f"--redis-url={settings.redis_url}"]
    if not settings.is_sqlite():
        command.append(f"--database-url={settings.resolved_database_url()}")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for stage in ("idle", "after c32-chat", "after c32-stream", "after c32-embed"):
        [line] = [line for line in lines if line.startswith(stage)]
        assert "RSS " in line and "file-backed" in line, line
        if stage != "idle":
            assert re.search(r"answers \{'200': [1-9]\d*\}$", line), line  # answered, and only with 200s
    assert any("[heap]" in line for line in lines), done.stdout


def test_history_bench_smoke(tmp_path: Path, settings: Settings) -> None:
    """The history scenario with a tiny pre-fill: it fills, serves the chat load and times /v1/usage."""
    command = [
        sys.executable,
        "-m",
        "bench.history",
        "--rows=0,2000",
        "--duration=0.5",
        "--warmup=0.1",
        "--rounds=1",
        "--connections=4",
        f"--redis-url={settings.redis_url}",
        f"--out={tmp_path}",
    ]
    if not settings.is_sqlite():
        command.append(f"--database-url={settings.resolved_database_url()}")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [result_file] = tmp_path.glob("history-*/result.json")
    results = json.loads(result_file.read_text())["results"]
    assert [r["rows"] for r in results] == [0, 2000]
    for r in results:
        assert r["errors"] == 0 and r["cpu_ms"] > 0 and r["usage_ms"] > 0, r
