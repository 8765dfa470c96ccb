"""The README's run command on a fresh state directory: migrations applied, a local key printed, and
the printed quickstart answers as printed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from app.core.settings import Settings
from tests.support import BIN, free_port

pytestmark = pytest.mark.e2e


def test_run_bootstraps_and_quickstart_answers(tmp_path: Path, settings: Settings) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEYTOKEN_")}
    env.update(
        {
            "HEYTOKEN_VAR_DIR": str(tmp_path / "var"),
            "HEYTOKEN_PORT": str(port),
            "HEYTOKEN_REDIS_PREFIX": f"ht-test-run-{uuid.uuid4().hex[:6]}:",
            "HEYTOKEN_REDIS_URL": settings.redis_url,
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    out_path = tmp_path / "run.out"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "heytoken"), "run"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        text = ""
        while "\nPY\n" not in text:
            assert proc.poll() is None, out_path.read_text()
            assert time.monotonic() < deadline, f"no quickstart printed:\n{out_path.read_text()}"
            time.sleep(0.1)
            text = out_path.read_text()
        assert (tmp_path / "var" / "heytoken.db").exists()
        key = re.search(r"sk-ht-[A-Za-z0-9_-]{43}", text)
        assert key is not None
        assert "local provider is serving" in text

        # Each code block runs exactly as printed, pasted into a shell in another directory.
        for block in code_blocks(text):
            answer = subprocess.run(["bash", "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=60)
            assert answer.returncode == 0, (block, answer)
            assert "Hello!" in answer.stdout, (block, answer)
        assert "Traceback" not in out_path.read_text()
    finally:
        # Ctrl-C, as a terminal sends it: to the whole foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            status = proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
            raise
    assert status == 0, out_path.read_text()


def code_blocks(text: str) -> list[str]:
    """The quickstart's shell blocks as printed: the curl command (to the blank line after it) and
    the Python heredoc (to its closing PY), untouched."""
    lines = text.splitlines()
    curl = next(i for i, line in enumerate(lines) if line.startswith("curl "))
    end = lines.index("", curl)
    heredoc = next(i for i, line in enumerate(lines) if line.endswith("<<'PY'"))
    close = lines.index("PY", heredoc)
    return ["\n".join(lines[curl:end]), "\n".join(lines[heredoc : close + 1])]
