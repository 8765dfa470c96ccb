"""docs/operations.md's systemd units and Kubernetes manifests: they run the Procfile's commands (with
its defaults written out), stop each process with one SIGTERM and a timeout above its drain bound,
restart it, and probe the web process where it answers. The units pass `systemd-analyze verify`."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import ROOT, procfile_command

DOC = (ROOT / "docs" / "operations.md").read_text()
# systemd before 254 does not know the back-off keys; the page says they are ignored there.
NEWER_KEYS = re.compile(r"Unknown key '(RestartSteps|RestartMaxDelaySec)'")


def units() -> dict[str, str]:
    found = {}
    for block in re.findall(r"```ini\n(.*?)```", DOC, re.S):
        first, _, body = block.partition("\n")
        found[Path(first.removeprefix("# ")).name] = body
    return found


def directive(unit: str, key: str) -> str:
    (value,) = re.findall(rf"^{key}=(.*)$", unit, re.M)
    return str(value)


def procfile(process: str, **env: str) -> list[str]:
    """The Procfile's argv for `process` with its defaults (and `env`), the program as its bare name."""
    argv = procfile_command(process, env)
    return [Path(argv[0]).name, *argv[1:]]


def bare(argv: list[str]) -> list[str]:
    return [Path(argv[0]).name, *argv[1:]]


def test_the_units_run_the_procfile_commands_and_stop_gracefully() -> None:
    found = units()
    assert set(found) == {"heytoken-migrate.service", "heytoken-web.service", "heytoken-worker.service",
                          "heytoken.target"}  # fmt: skip
    web, worker = found["heytoken-web.service"], found["heytoken-worker.service"]
    assert bare(shlex.split(directive(web, "ExecStart"))) == procfile("web")
    assert bare(shlex.split(directive(worker, "ExecStart"))) == procfile("worker")
    for unit, drain in ((web, 10), (worker, 30)):
        assert directive(unit, "KillMode") == "mixed"  # one SIGTERM to the main process only
        assert int(directive(unit, "TimeoutStopSec")) > drain
        assert directive(unit, "Restart") == "always"
        assert directive(unit, "Requires") == "heytoken-migrate.service"
    assert directive(found["heytoken-migrate.service"], "ExecStart").endswith("heytoken migrate")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.write_text("HEYTOKEN_LOG_LEVEL=INFO\n")
    for name, body in units().items():
        # Where this checkout is, instead of /opt/heytoken, so the programs named exist.
        body = body.replace("/opt/heytoken", str(ROOT)).replace("/etc/heytoken/env", str(env))
        (tmp_path / name).write_text(body.replace("User=heytoken", "User=root"))
    services = sorted(str(p) for p in tmp_path.glob("*.service"))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *services], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line and not NEWER_KEYS.search(line)]
    assert result.returncode == 0 and problems == [], result


def manifests() -> dict[str, Any]:
    (block,) = re.findall(r"```yaml\n(.*?)```", DOC, re.S)
    return {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(block)}


def container(doc: dict[str, Any]) -> dict[str, Any]:
    (one,) = doc["spec"]["template"]["spec"]["containers"]
    return dict(one)


def test_the_kubernetes_example_probes_the_web_and_drains_within_the_grace_period() -> None:
    found = manifests()
    web, worker = found["heytoken-web"], found["heytoken-worker"]
    assert bare(container(web)["command"]) == procfile("web", HEYTOKEN_HOST="0.0.0.0")
    assert bare(container(worker)["command"]) == procfile("worker")
    assert container(web)["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container(web)["readinessProbe"]["httpGet"]["path"] == "/readyz"
    pre_stop = container(web)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert web["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 10 + pre_stop
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 30
    assert container(found["heytoken-migrate"])["command"][1:] == ["migrate"]
