"""`heytoken run` as a supervisor: a worker SIGKILLed in the middle of each kind of step (submit, poll,
store, webhook attempt) is restarted, and the job completes, or the delivery arrives, exactly once
within 20 s of the kill; a web process SIGKILLed under load comes back while the worker goes on.

The system runs with the default lease and reconciler settings (HEYTOKEN_STEP_LEASE_SECONDS). A fake
upstream (or webhook receiver) holds the step's request until the test has killed the worker, so
every kill lands in its step.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.settings import Settings
from tests.conftest import AddChannel, Tenant, unique_model
from tests.fakes.media import FakeMediaUpstream
from tests.support import BIN, ROOT, free_port, poll, settings_env
from tests.webhooks.support import Receiver, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
RECOVERY = 20.0
"""The promise: a killed worker's job completes (or its delivery arrives) within this of the kill."""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class System:
    """`heytoken run` on the test's database and Redis prefix, its output in a file."""

    def __init__(self, settings: Settings, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out = tmp / "run.out"
        env = {**settings_env(settings), "HEYTOKEN_PORT": str(self.port), "HEYTOKEN_HOST": "127.0.0.1"}
        env.update({"HEYTOKEN_LOG_LEVEL": "INFO", "WORKER_THREADS": "8", "WORKER_SHUTDOWN_TIMEOUT_MS": "5000"})
        # Polls come quickly (the fake's task takes three), so the job's own length stays small beside
        # the recovery; the lease and the reconciler keep their defaults: they are what is tested.
        env.update({"HEYTOKEN_JOB_POLL_INITIAL_SECONDS": "0.2", "HEYTOKEN_JOB_POLL_MAX_SECONDS": "1"})
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "heytoken"), "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        poll(lambda: self.proc.poll() is not None or "is serving at" in self.output(), timeout=60, interval=0.1,
             message="heytoken run serving")  # fmt: skip
        assert self.proc.poll() is None, self.output()
        poll(lambda: self.output().count("worker.ready") >= 1, timeout=60, interval=0.1, message="worker ready")

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def pid(self, name: str) -> int | None:
        """The pid of the supervised `web` (uvicorn) or `worker` (the Dramatiq master)."""
        marker = "uvicorn" if name == "web" else "dramatiq"
        return next((pid for pid in _children(self.proc.pid) if marker in _cmdline(pid)), None)

    def kill_worker(self, *, whole_group: bool) -> float:
        """SIGKILL the worker: its whole process group (a machine losing it), or only the Dramatiq
        child that runs the steps (then the Dramatiq master gives up and exits). Returns when."""
        master = self.pid("worker")
        assert master is not None
        ready = self.output().count("worker.ready")
        if whole_group:
            os.killpg(master, signal.SIGKILL)
        else:
            for child in _children(master):
                os.kill(child, signal.SIGKILL)
        killed_at = time.monotonic()
        poll(lambda: self.output().count("worker.ready") > ready, timeout=RECOVERY, interval=0.1,
             message="the supervisor restarted the worker")  # fmt: skip
        return killed_at

    def stop(self) -> int:
        self.proc.send_signal(
            signal.SIGINT
        )  # Ctrl-C reaches the supervisor alone (its children have groups of their own)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise


@pytest.fixture(scope="module")
def system(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = System(settings, tmp_path_factory.mktemp("run"))
    yield running
    status = running.stop()
    assert status == 0, running.output()
    assert "Traceback" not in running.output().split("stopping")[0], running.output()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeMediaUpstream]:
    server = FakeMediaUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def sora(add_channel: AddChannel, fake: FakeMediaUpstream) -> str:
    model = unique_model("sora")
    await add_channel(fake.base_url, [model])
    return model


@pytest.fixture
def api(system: System, tenant: Tenant, sora: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.url, headers=tenant.headers, timeout=30) as http:
        poll(lambda: _get(http, f"/v1/models/{sora}") is not None, timeout=10, message="the channel's model listed")
        yield http


def _get(http: httpx.Client, path: str) -> Any:
    try:
        answer = http.get(path)
    except httpx.HTTPError:
        return None  # the web process is down for a moment
    return answer.json() if answer.status_code == 200 else None


def create_video(http: httpx.Client, model: str, **extra: Any) -> str:
    created = http.post("/v1/videos", json={"model": model, "prompt": "supervised", "seconds": "4", **extra})
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


def finished(http: httpx.Client, video_id: str, killed_at: float) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        video = _get(http, f"/v1/videos/{video_id}")
        return video if video and video["status"] not in ("queued", "in_progress") else None

    left = RECOVERY - (time.monotonic() - killed_at)
    done: dict[str, Any] = poll(ended, timeout=max(left, 0.1), interval=0.1, message="the job finished after the kill")
    return done


def assert_completed_once(system: System, video: dict[str, Any], settings: Settings) -> None:
    assert video["status"] == "completed", video
    # One transition to completed (the worker logs each one), one object per file
    assert system.output().count(f"job={video['id']} kind=video from=storing to=completed") == 1
    files = sorted(p.name for p in (settings.var_dir / "storage" / "media" / video["id"]).iterdir())
    assert files == ["thumbnail.webp", "video.mp4"]


def test_worker_killed_mid_submit_poll_store_and_webhook_attempt_finishes_each_once_within_20_s(
    system: System, api: httpx.Client, fake: FakeMediaUpstream, receiver: Receiver, sora: str, settings: Settings
) -> None:
    # Given four jobs, each stopped inside another kind of step: the upstream holds the first one's
    # submit, the second one's poll and the third one's download; the receiver holds the fourth one's
    # webhook attempt
    exits = system.output().count("heytoken: worker ")
    videos, holds = {}, []
    for route in ("sora.create", "sora.poll", "sora.content"):
        holds.append(hold := fake.hold(route))
        videos[route] = create_video(api, sora)
        assert hold.arrived.wait(30), f"the worker never reached {route}"
    webhook = Reply(status=503, hold=threading.Event())
    receiver.script["/killed"] = [webhook]
    hooked = create_video(api, "local-video", seconds="1", webhook_url=receiver.url("/killed"))
    assert webhook.arrived.wait(30), "no webhook attempt arrived"
    # When the worker process running them is SIGKILLed (its Dramatiq master then gives up too)
    killed_at = system.kill_worker(whole_group=False)
    for hold in holds:
        hold.released.set()
    webhook.hold.set()  # type: ignore[union-attr]
    # Then the supervisor said so once and restarted it, and within 20 s of the kill every job
    # completed, once, and the webhook was delivered, once
    for video_id in videos.values():
        assert_completed_once(system, finished(api, video_id, killed_at), settings)

    def delivered() -> dict[str, Any] | None:
        events = _get(api, f"/v1/jobs/{hooked}/events")
        event = events["data"][0] if events and events["data"] else None
        return event if event and event["status"] == "delivered" else None

    event = poll(delivered, timeout=RECOVERY - (time.monotonic() - killed_at), interval=0.1, message="delivered")
    received = receiver.at("/killed")
    assert len(received) == 2 and {r.webhook_id for r in received} == {event["id"]}
    (delivery,) = event["deliveries"]
    assert [a["status_code"] for a in delivery["attempts"]] == [200]  # the killed attempt never finished
    assert system.output().count("heytoken: worker ") == exits + 1, system.output()


def test_web_killed_under_load_comes_back_while_the_worker_goes_on(
    system: System, api: httpx.Client, fake: FakeMediaUpstream, sora: str, tenant: Tenant, settings: Settings
) -> None:
    # Given a worker in the middle of a job, and clients sending chat requests
    hold = fake.hold("sora.poll")
    video_id = create_video(api, sora)
    assert hold.arrived.wait(30)
    worker, web = system.pid("worker"), system.pid("web")
    answered: list[float] = []
    stop = threading.Event()

    def load() -> None:
        body = {"model": "local-chat", "messages": [{"role": "user", "content": "Hello!"}]}
        with httpx.Client(base_url=system.url, headers=tenant.headers, timeout=10) as http:
            while not stop.is_set():
                try:
                    if http.post("/v1/chat/completions", json=body).status_code == 200:
                        answered.append(time.monotonic())
                except httpx.HTTPError:
                    time.sleep(0.05)  # the web process is down: the client retries, as clients do

    clients = [threading.Thread(target=load, daemon=True) for _ in range(3)]
    for client in clients:
        client.start()
    try:
        poll(lambda: len(answered) >= 10, timeout=20, message="load flowing")
        # When the web process is SIGKILLed under that load
        assert web is not None
        os.killpg(web, signal.SIGKILL)
        killed_at = time.monotonic()
        hold.released.set()

        # Then the supervisor brings it back and requests are answered again
        def back() -> bool:
            return system.pid("web") not in (None, web) and _get(api, "/healthz") is not None

        poll(back, timeout=30, interval=0.1, message="the web process restarted")
        restarted_at = time.monotonic()
        poll(lambda: any(t > restarted_at for t in answered), timeout=10, message="answers after the restart")
    finally:
        stop.set()
        for client in clients:
            client.join(15)
    assert system.output().count("heytoken: web was killed by SIGKILL") == 1, system.output()
    # And the worker was never restarted: it finished the job meanwhile
    done = finished(api, video_id, killed_at)
    assert_completed_once(system, done, settings)
    assert system.pid("worker") == worker
