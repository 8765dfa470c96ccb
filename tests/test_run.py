"""The README's run command on a fresh state directory: migrations applied, a local key printed, and
the printed quickstart answers as printed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
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
        while "PY\n" not in text:
            assert proc.poll() is None, out_path.read_text()
            assert time.monotonic() < deadline, f"no quickstart printed:\n{out_path.read_text()}"
            time.sleep(0.1)
            text = out_path.read_text()
        assert (tmp_path / "var" / "heytoken.db").exists()
        key = re.search(r"sk-ht-[A-Za-z0-9_-]{43}", text)
        assert key is not None
        assert "local provider is serving" in text

        curl = text[text.index("curl http") : text.index("Or with the OpenAI Python SDK")].strip()
        answer = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30)
        assert '"object":"chat.completion"' in answer.stdout, answer
        assert "Hello!" in answer.stdout

        snippet = text[text.index("python3 - <<'PY'") : text.index("PY\n", text.index("<<'PY'") + 6) + 3]
        snippet = "\n".join(line.removeprefix("  ") for line in snippet.splitlines())
        snippet = snippet.replace("python3", sys.executable, 1)
        answer = subprocess.run(["bash", "-c", snippet], capture_output=True, text=True, timeout=60)
        assert answer.returncode == 0, answer.stderr
        assert "Hello!" in answer.stdout
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
