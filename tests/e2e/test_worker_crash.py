"""A worker SIGKILLed while a job is in progress: a new worker finishes it, exactly once.

The killed worker took its in-flight and delayed messages with it (Dramatiq would hand them back only
after its heartbeat times out and a random maintenance pass runs); the reconciler in the new worker
notices the overdue job from the database and sends its step again.
"""

from __future__ import annotations

import httpx
import pytest

from app.core.settings import Settings
from tests.conftest import Tenant
from tests.e2e.conftest import FAST
from tests.support import LiveServer, WorkerProcess, poll

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_kill_9_mid_job_then_new_worker_completes_it_once(live: LiveServer, tenant: Tenant, settings: Settings) -> None:
    slow = {**FAST, "HEYTOKEN_LOCAL_MEDIA_RENDER_SECONDS": "4"}
    first = WorkerProcess(settings, **slow).start()
    second: WorkerProcess | None = None
    try:
        with httpx.Client(base_url=live.url, headers=tenant.headers, timeout=30) as http:
            created = http.post("/v1/videos", json={"model": "local-video", "prompt": "crash test", "seconds": "4"})
            assert created.status_code == 200, created.text
            video_id = created.json()["id"]

            def running() -> dict | None:
                video = http.get(f"/v1/videos/{video_id}").json()
                return video if video["status"] == "in_progress" and video["progress"] > 0 else None

            poll(running, timeout=60, interval=0.1, message="job in progress")
            # When the worker dies mid-job, with no chance to clean up
            first.kill()
            assert http.get(f"/v1/videos/{video_id}").json()["status"] == "in_progress"
            # And a new worker starts
            second = WorkerProcess(settings, **slow).start()

            def completed() -> dict | None:
                video = http.get(f"/v1/videos/{video_id}").json()
                return video if video["status"] not in ("queued", "in_progress") else None

            done = poll(completed, timeout=60, interval=0.2, message="job completed by the new worker")
        # Then the job completed exactly once, with one object per file
        assert done["status"] == "completed", done
        logs = first.logs() + second.logs()
        assert logs.count(f"job={video_id} kind=video from=storing to=completed") == 1, logs
        files = sorted(p.name for p in (settings.var_dir / "storage" / "media" / video_id).iterdir())
        assert files == ["thumbnail.webp", "video.mp4"]
    finally:
        first.kill()
        if second is not None:
            second.stop()
