"""The SSRF guard where webhooks meet it: a refused URL is rejected when a job or an endpoint is created
(400 invalid_webhook_url) and again at every delivery, and a socket spy proves nothing was connected."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlmodel import col, select

from app.core.queue import ActorName, transaction
from app.webhooks import delivery, service
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEvent
from app.webhooks.schemas import EndpointCreateBody, endpoint_body
from tests.conftest import Tenant
from tests.webhooks.conftest import Deps, make_job
from tests.webhooks.support import SocketSpy

PUBLIC = "93.184.216.34"
# Every refused form (the tests trust 127.0.0.1/32 over http, so loopback is spelled other ways).
REFUSED = {
    "http://10.1.2.3/hook": "10.1.2.3",
    "http://172.16.0.1/hook": "172.16.0.1",
    "http://192.168.1.1/hook": "192.168.1.1",
    "http://169.254.169.254/latest/meta-data/": "169.254.169.254",
    "http://100.64.0.1/hook": "100.64.0.1",
    "http://0.0.0.0/hook": "0.0.0.0",
    "http://127.0.0.2/hook": "127.0.0.2",
    "http://[::1]/hook": "::1",
    "http://[::ffff:10.0.0.1]/hook": "::ffff:10.0.0.1",
    "http://[fd00::1]/hook": "fd00::1",
    "http://[fe80::1]/hook": "fe80::1",
    "http://[64:ff9b::a9fe:a9fe]/hook": "64:ff9b::a9fe:a9fe",
    "http://[2002:c0a8:1::1]/hook": "2002:c0a8:1::1",
    "http://2130706433/hook": "127.0.0.1",
    "http://0x7f000001/hook": "127.0.0.1",
    "http://017700000001/hook": "127.0.0.1",
    "http://127.1/hook": "127.0.0.1",
    "http://private.example.com/hook": "10.9.8.7",
    "https://user:pw@hooks.example.com/hook": PUBLIC,
    "https://hooks.example.com:22/hook": PUBLIC,
    "file:///etc/passwd": "",
    "gopher://hooks.example.com/": PUBLIC,
}


@pytest.fixture
def dns(spy: SocketSpy) -> SocketSpy:
    spy.dns.update({"hooks.example.com": [PUBLIC], "private.example.com": ["10.9.8.7"]})
    return spy


def assert_no_connection(spy: SocketSpy, address: str) -> None:
    assert all(a.startswith("127.") or a == "::1" for a in spy.connects), spy.connects
    if address and address != "127.0.0.1":
        assert not spy.touched(address)


@pytest.mark.parametrize("url", sorted(REFUSED))
async def test_refused_urls_are_rejected_at_job_and_endpoint_creation(
    client: AsyncTestClient[Any], tenant: Tenant, dns: SocketSpy, url: str
) -> None:
    body = {"model": "local-video", "prompt": "p", "seconds": "1", "webhook_url": url}
    answer = await client.post("/v1/videos", json=body, headers=tenant.headers)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_webhook_url", "webhook_url")
    assert error["type"] == "invalid_request_error"
    endpoint = await client.post("/v1/webhooks/endpoints", json={"url": url}, headers=tenant.headers)
    assert endpoint.status_code == 400 and endpoint.json()["error"]["param"] == "url", endpoint.text
    assert endpoint.json()["error"]["code"] == "invalid_webhook_url"
    assert_no_connection(dns, REFUSED[url])


async def test_image_jobs_check_their_webhook_url_too(
    client: AsyncTestClient[Any], tenant: Tenant, dns: SocketSpy
) -> None:
    body = {"model": "local-image", "prompt": "p", "webhook_url": "http://169.254.169.254/"}
    headers = {**tenant.headers, "Prefer": "respond-async"}
    answer = await client.post("/v1/images/generations", json=body, headers=headers)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_webhook_url", answer.text
    assert_no_connection(dns, "169.254.169.254")


async def _delivery_of(deps: Deps, job_id: str) -> WebhookDelivery:
    async with deps.jobs.sessionmaker() as session:
        stmt = select(WebhookDelivery).join(WebhookEvent).where(col(WebhookEvent.job_id) == job_id)
        return (await session.exec(stmt)).one()


async def _attempt_all(deps: Deps) -> None:
    """Run only the webhook attempts (the job itself is not needed): four, per the test schedule."""
    while webhook := [m for m in deps.sender.sent if m.actor is ActorName.WEBHOOK_DELIVER]:
        deps.sender.sent.remove(webhook[0])
        await delivery.deliver(deps.hooks, webhook[0].object_id)


@pytest.mark.parametrize("url", sorted(REFUSED))
async def test_refused_urls_fail_at_delivery_without_connecting(
    wdeps: Deps, tenant: Tenant, dns: SocketSpy, url: str
) -> None:
    # A URL stored before the rules changed (or written behind the API's back) is checked again.
    job = await make_job(wdeps, tenant, webhook_url=url, webhook_events=["video.queued"])
    await _attempt_all(wdeps)
    sent = await _delivery_of(wdeps, job.id)
    assert sent.state == "failed" and "refused before connecting" in (sent.last_error or "")
    async with wdeps.jobs.sessionmaker() as session:
        attempts = (await session.exec(select(WebhookAttempt).where(col(WebhookAttempt.delivery_id) == sent.id))).all()
    assert len(attempts) == 4 and all(a.address is None and a.status_code is None for a in attempts)
    assert_no_connection(dns, REFUSED[url])


async def test_dns_rebinding_is_refused_at_delivery(wdeps: Deps, tenant: Tenant, dns: SocketSpy) -> None:
    # Given an endpoint whose name resolved to a public address when it was created
    dns.dns["rebind.example.com"] = [PUBLIC]
    async with transaction(wdeps.jobs.sessionmaker, wdeps.sender) as session:
        body = endpoint_body(EndpointCreateBody(url="https://rebind.example.com/hook", events=["video.queued"]))
        await service.create_endpoint(session, wdeps.hooks.guard, tenant.account_id, body)
    # When the name now resolves to the cloud metadata address (and, another time, to a mix)
    dns.dns["rebind.example.com"] = ["169.254.169.254"]
    first = await make_job(wdeps, tenant)
    await _attempt_all(wdeps)
    dns.dns["rebind.example.com"] = [PUBLIC, "10.0.0.5"]
    second = await make_job(wdeps, tenant)
    await _attempt_all(wdeps)
    # Then every attempt was refused before connecting, and no socket went anywhere but loopback
    for job in (first, second):
        sent = await _delivery_of(wdeps, job.id)
        assert sent.state == "failed" and "refused before connecting" in (sent.last_error or ""), sent
    assert "resolves to 169.254.169.254" in ((await _delivery_of(wdeps, first.id)).last_error or "")
    assert dns.lookups.count("rebind.example.com") == 1 + 4 + 4  # resolved once per check
    assert_no_connection(dns, "169.254.169.254")
    assert not dns.touched(PUBLIC) and not dns.touched("10.0.0.5")
