"""Graceful drain on SIGTERM, as a supervisor (systemd, Kubernetes, `heytoken run`) stops a process:
the worker finishes the step under way; the web process stops accepting, finishes its open streams,
and cuts those still open at its bound (WEB_SHUTDOWN_TIMEOUT_SECONDS)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import httpx
import pytest

from app.core.settings import Settings
from tests.conftest import AddChannel, Tenant, unique_model
from tests.e2e.conftest import FAST
from tests.fakes.media import FakeMediaUpstream
from tests.fakes.upstream import MockUpstream, Reply
from tests.support import LiveServer, WorkerProcess, poll

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeMediaUpstream]:
    server = FakeMediaUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def sora(add_channel: AddChannel, fake: FakeMediaUpstream) -> str:
    model = unique_model("sora")
    await add_channel(fake.base_url, [model])
    return model


def test_a_worker_stopped_with_sigterm_finishes_the_step_under_way(
    live: LiveServer, tenant: Tenant, settings: Settings, fake: FakeMediaUpstream, sora: str
) -> None:
    model = sora
    worker = WorkerProcess(settings, **FAST).start()
    try:
        with httpx.Client(base_url=live.url, headers=tenant.headers, timeout=30) as http:
            poll(lambda: http.get(f"/v1/models/{model}").status_code == 200, message="model listed")
            # Given a worker in the middle of storing a job's result
            hold = fake.hold("sora.content")
            created = http.post("/v1/videos", json={"model": model, "prompt": "drain", "seconds": "4"})
            assert created.status_code == 200, created.text
            video_id = created.json()["id"]
            assert hold.arrived.wait(30), worker.logs()
            # When it gets its SIGTERM (one, to the main process) and the download then goes on
            assert worker.proc is not None
            worker.proc.send_signal(signal.SIGTERM)
            poll(lambda: "Shutting down" in worker.logs(), timeout=10, message="the worker draining")
            hold.released.set()
            # Then it finishes the step, completing the job, and exits cleanly
            assert worker.proc.wait(30) == 0, worker.logs()
            assert f"job={video_id} kind=video from=storing to=completed" in worker.logs()
            assert http.get(f"/v1/videos/{video_id}").json()["status"] == "completed"
    finally:
        worker.kill()


async def test_a_web_process_stopped_with_sigterm_finishes_open_streams_up_to_its_bound(
    settings: Settings, tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    endless = unique_model("endless")
    await add_channel(mock_upstream.base_url, [endless])
    mock_upstream.default["/v1/chat/completions"] = lambda body: Reply(forever=True, chunk_delay=0.05)
    slow_local = settings.model_copy(update={"local_token_delay_ms": 50})
    server = LiveServer(slow_local, WEB_SHUTDOWN_TIMEOUT_SECONDS="5").start()
    seen: dict[str, list[str]] = {"local-chat": [], endless: []}
    ended: dict[str, str] = {}

    def stream(model: str) -> None:
        body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "Hello there, drain!"}]}
        try:
            with (
                httpx.Client(base_url=server.url, headers=tenant.headers, timeout=30) as http,
                http.stream("POST", "/v1/chat/completions", json=body) as answer,
            ):
                for line in answer.iter_lines():
                    if line.startswith("data: "):
                        seen[model].append(line)
            ended[model] = "closed"
        except httpx.HTTPError as exc:
            ended[model] = type(exc).__name__

    clients = [threading.Thread(target=stream, args=(model,), daemon=True) for model in seen]
    try:
        for client in clients:
            client.start()
        # Given two streams under way: one that ends by itself, one that never does
        poll(lambda: all(seen.values()), timeout=20, message="both streams flowing")
        # When the web process gets its SIGTERM (the local answer's 30-odd tokens take over a second)
        assert server.proc is not None and not ended
        server.proc.send_signal(signal.SIGTERM)

        # Then it takes no new connection, the short stream runs to its end, and the endless one is
        # cut at the bound, when the process exits
        def refused() -> bool:
            try:
                httpx.get(f"{server.url}/healthz", timeout=1)
            except httpx.ConnectError:
                return True
            return False

        poll(refused, timeout=10, message="new connections refused")
        # (uvicorn re-raises the SIGTERM it handled once it has shut down)
        assert server.proc.wait(20) in (0, -signal.SIGTERM), server.logs()
        for client in clients:
            client.join(10)
        assert seen["local-chat"][-1] == "data: [DONE]" and ended["local-chat"] == "closed"
        assert seen[endless][-1] != "data: [DONE]" and endless in ended, ended
    finally:
        mock_upstream.default.clear()
        server.stop()
