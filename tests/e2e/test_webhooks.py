"""Webhooks end to end: the gateway and a worker started as the Procfile starts them, the real Redis
broker, and a receiver on 127.0.0.1 that verifies every delivery with `standardwebhooks` and with the
OpenAI SDK. The worker runs a test-sized retry schedule (tests/e2e/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant
from tests.e2e.conftest import FAST
from tests.support import LiveServer, WorkerProcess, poll
from tests.webhooks.support import Receiver, Reply, verify_both

pytestmark = [pytest.mark.e2e]
ATTEMPTS = 1 + len(FAST["HEYTOKEN_WEBHOOK_RETRY_SCHEDULE"].strip("[]").split(","))


@pytest.fixture(scope="module")
def hooks() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def api(live: LiveServer, worker: WorkerProcess, tenant: Tenant) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, headers=tenant.headers, timeout=30) as http:
        yield http


def video_with_webhook(api: httpx.Client, url: str) -> str:
    body = {"model": "local-video", "prompt": "hook", "seconds": "1", "webhook_url": url}
    created = api.post("/v1/videos", json=body)
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


def settled_event(api: httpx.Client, video_id: str) -> dict[str, Any]:
    """The job's one event, once no delivery of it is pending any more."""

    def settled() -> dict[str, Any] | None:
        events = api.get(f"/v1/jobs/{video_id}/events").json()["data"]
        return events[0] if events and events[0]["status"] != "pending" else None

    event: dict[str, Any] = poll(settled, timeout=60, interval=0.2, message="webhook event settled")
    return event


def test_a_video_job_sends_exactly_one_completed_event_delivered_once(
    api: httpx.Client, hooks: Receiver, worker: WorkerProcess
) -> None:
    secret = api.post("/v1/webhooks/secret").json()["secret"]
    video_id = video_with_webhook(api, hooks.url("/ok"))
    event = settled_event(api, video_id)
    assert api.get(f"/v1/videos/{video_id}").json()["status"] == "completed"
    assert event["type"] == "video.completed" and event["status"] == "delivered", event
    (received,) = [r for r in hooks.at("/ok") if r.json()["data"]["id"] == video_id]
    delivered = verify_both(received, secret)
    assert delivered["id"] == event["id"] == received.webhook_id
    assert delivered["data"] == api.get(f"/v1/videos/{video_id}").json()  # the object GET returns
    assert [e["type"] for e in api.get(f"/v1/jobs/{video_id}/events").json()["data"]] == ["video.completed"]
    assert "webhook.attempt" in worker.logs()


def test_500_twice_then_200_gets_three_attempts_with_one_webhook_id(api: httpx.Client, hooks: Receiver) -> None:
    secret = api.post("/v1/webhooks/secret").json()["secret"]
    hooks.script["/flaky"] = [Reply(500), Reply(500)]
    video_id = video_with_webhook(api, hooks.url("/flaky"))
    event = settled_event(api, video_id)
    received = hooks.at("/flaky")
    assert len(received) == 3 and {r.webhook_id for r in received} == {event["id"]}
    for request in received:
        verify_both(request, secret)
    (delivery,) = event["deliveries"]
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]


def test_a_receiver_that_always_fails_ends_failed_after_the_schedule(api: httpx.Client, hooks: Receiver) -> None:
    hooks.script["/down"] = [Reply(503) for _ in range(20)]
    video_id = video_with_webhook(api, hooks.url("/down"))
    event = settled_event(api, video_id)
    (delivery,) = event["deliveries"]
    assert event["status"] == "failed" and delivery["status"] == "failed", event
    assert [a["status_code"] for a in delivery["attempts"]] == [503] * ATTEMPTS
    assert len(hooks.at("/down")) == ATTEMPTS
