"""End-to-end fixtures: job workers started as the Procfile starts them, and S3 on a moto server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.core.settings import Settings
from tests.support import WorkerProcess, free_port

FAST = {
    # Steps come quickly and a lost message is noticed within seconds, so tests stay short.
    "HEYTOKEN_JOB_POLL_INITIAL_SECONDS": "0.2",
    "HEYTOKEN_JOB_POLL_MAX_SECONDS": "1",
    "HEYTOKEN_JOB_STEP_TIMEOUT_SECONDS": "5",
    "HEYTOKEN_RECONCILE_INTERVAL_SECONDS": "1",
    "HEYTOKEN_RECONCILE_GRACE_SECONDS": "2",
    # A test-sized webhook retry schedule: four attempts within about a second.
    "HEYTOKEN_WEBHOOK_RETRY_SCHEDULE": "[0.2, 0.3, 0.4]",
}


@pytest.fixture(scope="module")
def worker(settings: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, **FAST).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """An S3 endpoint (moto in server mode) that the gateway and worker subprocesses share."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
