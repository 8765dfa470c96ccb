"""Webhook events and their delivery, driven in-process against a receiver on 127.0.0.1."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update
from sqlmodel import col, select
from standardwebhooks import Webhook, WebhookVerificationError

from app.core.db import utcnow
from app.core.queue import ActorName, transaction
from app.jobs.models import JobKind
from app.webhooks import delivery, service
from app.webhooks.delivery import next_delay
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent, WebhookSecret
from app.webhooks.schemas import EndpointCreateBody, endpoint_body
from tests.conftest import Tenant
from tests.webhooks.conftest import SCHEDULE, Deps, drain, make_job, reveal_secret
from tests.webhooks.support import Receiver, Reply, SocketSpy, verify_both


async def events_of(deps: Deps, job_id: str) -> list[WebhookEvent]:
    async with deps.jobs.sessionmaker() as session:
        stmt = select(WebhookEvent).where(col(WebhookEvent.job_id) == job_id).order_by(col(WebhookEvent.id))
        return list((await session.exec(stmt)).all())


async def deliveries_of(deps: Deps, event_id: str) -> list[WebhookDelivery]:
    async with deps.jobs.sessionmaker() as session:
        stmt = select(WebhookDelivery).where(col(WebhookDelivery.event_id) == event_id)
        return list((await session.exec(stmt)).all())


async def attempts_of(deps: Deps, delivery_id: str) -> list[WebhookAttempt]:
    async with deps.jobs.sessionmaker() as session:
        stmt = select(WebhookAttempt).where(col(WebhookAttempt.delivery_id) == delivery_id)
        return list((await session.exec(stmt.order_by(col(WebhookAttempt.id)))).all())


async def test_video_job_sends_exactly_one_verified_completed_event_even_with_duplicate_messages(
    wdeps: Deps, tenant: Tenant, receiver: Receiver
) -> None:
    secret = await reveal_secret(wdeps, tenant)
    job = await make_job(wdeps, tenant, webhook_url=receiver.url())
    # Every message (job steps and webhook attempts) is delivered twice, the copies concurrently.
    await drain(wdeps, duplicate=True)
    (received,) = receiver.at("/hook")
    event = verify_both(received, secret)
    assert event["type"] == "video.completed" and event["object"] == "event"
    assert event["id"].startswith("evt_") and received.webhook_id == event["id"]
    data = event["data"]
    assert data["id"] == job.id and data["object"] == "video" and data["status"] == "completed"
    assert data["progress"] == 100 and data["metadata"] == {"order": "A-17"} and data["seconds"] == "1"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["user-agent"].startswith("HeyToken-Webhooks/")
    (stored,) = await events_of(wdeps, job.id)
    assert stored.payload == received.body  # the exact bytes stored are the bytes sent
    (sent,) = await deliveries_of(wdeps, stored.id)
    assert sent.state == "delivered" and sent.attempts == 1 and sent.delivered_at is not None
    (attempt,) = await attempts_of(wdeps, sent.id)
    assert attempt.status_code == 200 and attempt.address == "127.0.0.1" and attempt.response_body == "ok"


async def test_opt_in_events_and_image_results(wdeps: Deps, tenant: Tenant, receiver: Receiver) -> None:
    secret = await reveal_secret(wdeps, tenant)
    job = await make_job(
        wdeps,
        tenant,
        JobKind.IMAGE,
        webhook_url=receiver.url("/images"),
        webhook_events=["image.queued", "image.in_progress", "image.completed"],
    )
    await drain(wdeps)
    events = [verify_both(r, secret) for r in receiver.at("/images")]
    assert sorted(e["type"] for e in events) == ["image.completed", "image.in_progress", "image.queued"]
    completed = next(e for e in events if e["type"] == "image.completed")["data"]
    assert completed["id"] == job.id and completed["object"] == "image.generation"
    assert completed["result"]["data"][0]["url"].startswith("http://127.0.0.1/blobs/")
    assert len({e["id"] for e in events}) == 3


async def test_500_twice_then_200_makes_three_attempts_with_one_webhook_id(
    wdeps: Deps, tenant: Tenant, receiver: Receiver
) -> None:
    secret = await reveal_secret(wdeps, tenant)
    receiver.script["/flaky"] = [Reply(500, body=b"boom"), Reply(503, body=b"busy")]
    await make_job(wdeps, tenant, webhook_url=receiver.url("/flaky"))
    await drain(wdeps)
    received = receiver.at("/flaky")
    assert len(received) == 3
    assert len({r.webhook_id for r in received}) == 1
    for request in received:
        verify_both(request, secret)
    (event,) = await events_of(wdeps, received[0].json()["data"]["id"])
    (sent,) = await deliveries_of(wdeps, event.id)
    assert sent.state == "delivered" and sent.attempts == 3
    attempts = await attempts_of(wdeps, sent.id)
    assert [a.status_code for a in attempts] == [500, 503, 200]
    assert [a.response_body for a in attempts] == ["boom", "busy", "ok"]
    assert all(a.latency_ms >= 0 and a.attempted_at is not None for a in attempts)


async def test_a_receiver_that_always_fails_ends_failed_after_the_schedule(
    wdeps: Deps, tenant: Tenant, receiver: Receiver
) -> None:
    receiver.script["/down"] = [Reply(500) for _ in range(10)]
    job = await make_job(wdeps, tenant, webhook_url=receiver.url("/down"))
    await drain(wdeps)
    assert len(receiver.at("/down")) == 1 + len(SCHEDULE)
    (event,) = await events_of(wdeps, job.id)
    (sent,) = await deliveries_of(wdeps, event.id)
    assert sent.state == "failed" and sent.attempts == 1 + len(SCHEDULE) and sent.next_attempt_at is None
    assert len(await attempts_of(wdeps, sent.id)) == 1 + len(SCHEDULE)


async def test_redirects_are_failures_and_never_followed(
    wdeps: Deps, tenant: Tenant, receiver: Receiver, spy: SocketSpy
) -> None:
    receiver.script["/moved"] = [
        Reply(301, headers={"location": "http://169.254.169.254/latest/meta-data/"}),
        Reply(302, headers={"location": receiver.url("/elsewhere")}),
    ]
    job = await make_job(wdeps, tenant, webhook_url=receiver.url("/moved"))
    await drain(wdeps)
    assert receiver.at("/elsewhere") == [] and not spy.touched("169.254.169.254")
    (event,) = await events_of(wdeps, job.id)
    (sent,) = await deliveries_of(wdeps, event.id)
    first, second, third = await attempts_of(wdeps, sent.id)
    assert (first.status_code, second.status_code) == (301, 302) and first.error == "redirects are not followed"
    assert third.status_code == 200 and sent.state == "delivered"  # the retries went to /moved again


async def test_410_disables_the_endpoint_and_it_gets_nothing_more(
    wdeps: Deps, tenant: Tenant, receiver: Receiver
) -> None:
    receiver.script["/gone"] = [Reply(410)]
    async with transaction(wdeps.jobs.sessionmaker, wdeps.sender) as session:
        body = endpoint_body(EndpointCreateBody(url=receiver.url("/gone")))
        endpoint = await service.create_endpoint(session, wdeps.hooks.guard, tenant.account_id, body)
    first = await make_job(wdeps, tenant)
    await drain(wdeps)
    (event,) = await events_of(wdeps, first.id)
    (sent,) = await deliveries_of(wdeps, event.id)
    assert sent.state == "disabled" and sent.attempts == 1 and "410" in (sent.last_error or "")
    async with wdeps.jobs.sessionmaker() as session:
        disabled = await session.get(WebhookEndpoint, endpoint.id)
    assert disabled is not None and disabled.status == "disabled" and "410" in (disabled.disabled_reason or "")
    second = await make_job(wdeps, tenant)
    await drain(wdeps)
    assert await events_of(wdeps, second.id) == []  # no one left who wants it
    assert len(receiver.at("/gone")) == 1


async def test_retry_after_of_a_429_is_honoured_within_the_clamp(
    wdeps: Deps, tenant: Tenant, receiver: Receiver
) -> None:
    wdeps.hooks.settings = wdeps.hooks.settings.model_copy(update={"webhook_retry_schedule": [100.0]})
    receiver.script["/busy"] = [Reply(429, headers={"retry-after": "150"})]
    await make_job(wdeps, tenant, webhook_url=receiver.url("/busy"), webhook_events=["video.queued"])
    (message,) = [m for m in wdeps.sender.sent if m.actor is ActorName.WEBHOOK_DELIVER]
    await delivery.deliver(wdeps.hooks, message.object_id)
    (retry,) = [m for m in wdeps.sender.sent if m.actor is ActorName.WEBHOOK_DELIVER and m.delay_ms]
    assert retry.delay_ms == 150_000  # within [base, 2 × base] for base = 100 s ± 10 %


@pytest.mark.parametrize(
    ("attempts", "retry_after", "low", "high"),
    [(1, None, 4.5, 5.5), (2, None, 270, 330), (1, 1.0, 4.5, 5.5), (1, 7.0, 7.0, 7.0), (1, 60.0, 9.0, 11.0)],
)
def test_next_delay_follows_the_schedule_and_clamps_retry_after(
    attempts: int, retry_after: float | None, low: float, high: float
) -> None:
    delay = next_delay([5.0, 300.0], attempts, retry_after)
    assert delay is not None and low <= delay <= high
    assert next_delay([5.0, 300.0], 3, None) is None


async def test_a_slow_receiver_times_out_and_only_the_start_of_a_big_answer_is_kept(
    wdeps: Deps, tenant: Tenant, receiver: Receiver
) -> None:
    wdeps.hooks.settings = wdeps.hooks.settings.model_copy(update={"webhook_timeout_seconds": 0.5})
    receiver.script["/slow"] = [Reply(200, stall=3.0), Reply(500, body=b"x" * 1_000_000)]
    job = await make_job(wdeps, tenant, webhook_url=receiver.url("/slow"))
    await drain(wdeps)
    (event,) = await events_of(wdeps, job.id)
    (sent,) = await deliveries_of(wdeps, event.id)
    slow, big, ok = (await attempts_of(wdeps, sent.id))[:3]
    assert slow.status_code is None and "within 0.5 s" in (slow.error or "")
    assert big.status_code == 500 and len(big.response_body or "") == delivery.STORED_LIMIT
    assert ok.status_code == 200 and sent.state == "delivered"


async def test_rotation_signs_with_both_secrets_during_the_overlap_and_only_the_new_one_after(
    wdeps: Deps, tenant: Tenant, receiver: Receiver
) -> None:
    from app.webhooks import signing

    old = await reveal_secret(wdeps, tenant)
    key = wdeps.jobs.settings.resolved_secret_key()
    async with transaction(wdeps.jobs.sessionmaker, wdeps.sender) as session:
        _, new = await signing.rotate(session, tenant.account_id, key, overlap_seconds=3600)
    await make_job(wdeps, tenant, webhook_url=receiver.url("/during"))
    await drain(wdeps)
    (during,) = receiver.at("/during")
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    verify_both(during, old)
    verify_both(during, new)
    # The overlap runs out (moved into the past rather than waited for).
    async with wdeps.jobs.sessionmaker() as session:
        await session.exec(
            update(WebhookSecret)
            .where(col(WebhookSecret.account_id) == tenant.account_id)
            .values(previous_expires_at=utcnow() - dt.timedelta(seconds=1))
        )
        await session.commit()
    await make_job(wdeps, tenant, webhook_url=receiver.url("/after"))
    await drain(wdeps)
    (after,) = receiver.at("/after")
    verify_both(after, new)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)


async def test_the_reconciler_resends_a_lost_delivery_and_a_duplicate_does_nothing(
    wdeps: Deps, tenant: Tenant, receiver: Receiver
) -> None:
    job = await make_job(wdeps, tenant, webhook_url=receiver.url("/lost"), webhook_events=["video.queued"])
    lost = [m for m in wdeps.sender.sent if m.actor is ActorName.WEBHOOK_DELIVER]
    assert len(lost) == 1
    wdeps.sender.sent.clear()  # the message is lost with its worker
    assert await delivery.reconcile_deliveries(wdeps.hooks) >= 1
    resent = [m for m in wdeps.sender.sent if m.object_id == lost[0].object_id]
    assert resent
    wdeps.sender.sent[:] = resent
    await drain(wdeps)
    await delivery.deliver(wdeps.hooks, lost[0].object_id)  # a late duplicate: already delivered
    assert len(receiver.at("/lost")) == 1
    (event,) = await events_of(wdeps, job.id)
    assert event.type == "video.queued"
