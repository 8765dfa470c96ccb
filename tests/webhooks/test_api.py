"""The webhook API: the signing secret, endpoints, events with attempts, redelivery; bad input gets
the OpenAI error envelope, and another account's objects read as unknown."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.webhooks import delivery
from tests.conftest import Tenant
from tests.webhooks.conftest import Deps, drain, make_job
from tests.webhooks.support import Receiver, Reply, verify_both


def error_of(answer: Any, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return error


async def test_the_secret_is_shown_once_and_rotation_keeps_the_old_one_for_the_overlap(
    client: AsyncTestClient[Any], tenant: Tenant
) -> None:
    before = (await client.get("/v1/webhooks/secret", headers=tenant.headers)).json()
    assert before == {"object": "webhook_secret", "created_at": None, "revealed": False, "previous_expires_at": None}
    shown = (await client.post("/v1/webhooks/secret", headers=tenant.headers)).json()
    secret = shown["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32 and shown["revealed"]
    again = await client.post("/v1/webhooks/secret", headers=tenant.headers)
    assert error_of(again, 409)["code"] == "webhook_secret_already_shown"
    assert "secret" not in (await client.get("/v1/webhooks/secret", headers=tenant.headers)).json()
    rotate = "/v1/webhooks/secret/rotate"
    rotated = (await client.post(rotate, json={"overlap_seconds": 600}, headers=tenant.headers)).json()
    assert rotated["secret"] != secret and rotated["previous_expires_at"] - rotated["created_at"] == 600
    plain = (await client.post("/v1/webhooks/secret/rotate", headers=tenant.headers)).json()
    assert plain["previous_expires_at"] - plain["created_at"] == 86_400  # HEYTOKEN_WEBHOOK_SECRET_OVERLAP_SECONDS
    for bad in ({"overlap_seconds": -1}, {"overlap_seconds": "1"}, {"overlap_seconds": 10**9}):
        answer = await client.post("/v1/webhooks/secret/rotate", json=bad, headers=tenant.headers)
        assert error_of(answer, 400)["param"] == "overlap_seconds"


async def test_endpoints_crud_and_validation(client: AsyncTestClient[Any], tenant: Tenant, make_tenant: Any) -> None:
    url = "http://127.0.0.1:9/in"
    created = await client.post(
        "/v1/webhooks/endpoints", json={"url": url, "events": ["video.completed"], "description": "ci"},
        headers=tenant.headers,
    )  # fmt: skip
    assert created.status_code == 200, created.text
    endpoint = created.json()
    assert endpoint["id"].startswith("whe_") and endpoint["object"] == "webhook_endpoint"
    assert (endpoint["url"], endpoint["events"], endpoint["status"]) == (url, ["video.completed"], "enabled")
    default = (await client.post("/v1/webhooks/endpoints", json={"url": url}, headers=tenant.headers)).json()
    assert "video.queued" not in default["events"] and {"video.completed", "image.failed"} <= set(default["events"])
    listed = (await client.get("/v1/webhooks/endpoints", headers=tenant.headers)).json()
    assert {e["id"] for e in listed["data"]} == {endpoint["id"], default["id"]}
    path = f"/v1/webhooks/endpoints/{endpoint['id']}"
    changed = await client.post(path, json={"status": "disabled", "events": ["video.failed"]}, headers=tenant.headers)
    assert changed.json()["status"] == "disabled" and changed.json()["events"] == ["video.failed"], changed.text
    assert changed.json()["disabled_reason"] == "disabled by the account"
    enabled = (await client.post(path, json={"status": "enabled"}, headers=tenant.headers)).json()
    assert enabled["status"] == "enabled" and enabled["disabled_reason"] is None
    other = await make_tenant()
    assert error_of(await client.get(path, headers=other.headers), 404)["code"] == "webhook_endpoint_not_found"
    assert error_of(await client.delete(path, headers=other.headers), 404)["code"] == "webhook_endpoint_not_found"
    deleted = (await client.delete(path, headers=tenant.headers)).json()
    assert deleted == {"id": endpoint["id"], "object": "webhook_endpoint.deleted", "deleted": True}
    assert error_of(await client.get(path, headers=tenant.headers), 404)["param"] == "id"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "url"),
        ({"url": 7}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http://127.0.0.1:9/", "events": ["video.exploded"]}, "events"),
        ({"url": "http://127.0.0.1:9/", "events": []}, "events"),
        ({"url": "http://127.0.0.1:9/", "events": "video.completed", "colour": "red"}, "colour"),
        ({"url": "http://127.0.0.1:9/", "description": "x" * 501}, "description"),
    ],
)
async def test_endpoint_bad_input_names_the_field(
    client: AsyncTestClient[Any], tenant: Tenant, body: dict[str, Any], param: str
) -> None:
    answer = await client.post("/v1/webhooks/endpoints", json=body, headers=tenant.headers)
    assert error_of(answer, 400)["param"] == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"webhook_url": 5}, "webhook_url"),
        ({"webhook_url": "ftp://x/"}, "webhook_url"),
        ({"webhook_url": "http://127.0.0.1:9/", "webhook_events": ["image.completed"]}, "webhook_events"),
        ({"webhook_url": "http://127.0.0.1:9/", "webhook_events": ["video.nope"]}, "webhook_events"),
        ({"webhook_url": "http://127.0.0.1:9/", "webhook_events": 3}, "webhook_events"),
    ],
)
async def test_job_webhook_fields_are_validated(
    client: AsyncTestClient[Any], tenant: Tenant, body: dict[str, Any], param: str
) -> None:
    answer = await client.post(
        "/v1/videos", json={"model": "local-video", "prompt": "p", **body}, headers=tenant.headers
    )
    assert error_of(answer, 400)["param"] == param


async def test_events_list_with_attempts_and_redeliver(
    client: AsyncTestClient[Any], tenant: Tenant, wdeps: Deps, receiver: Receiver, make_tenant: Any
) -> None:
    # Given a job whose completion reached the receiver on the second attempt
    secret = (await client.post("/v1/webhooks/secret", headers=tenant.headers)).json()["secret"]
    receiver.script["/api"] = [Reply(500, body=b"oops")]
    job = await make_job(wdeps, tenant, webhook_url=receiver.url("/api"))
    await drain(wdeps)
    # When its events are listed
    listed = (await client.get(f"/v1/jobs/{job.id}/events", headers=tenant.headers)).json()
    (event,) = listed["data"]
    assert event["object"] == "webhook.event" and event["type"] == "video.completed" and event["job_id"] == job.id
    assert event["status"] == "delivered" and event["payload"]["data"]["status"] == "completed"
    (sent,) = event["deliveries"]
    assert sent["url"] == receiver.url("/api") and sent["status"] == "delivered" and sent["endpoint_id"] is None
    assert [(a["status_code"], a["response_body"]) for a in sent["attempts"]] == [(500, "oops"), (200, "ok")]
    assert all(a["latency_ms"] >= 0 and a["attempted_at"] and a["address"] == "127.0.0.1" for a in sent["attempts"])
    account_wide = (await client.get("/v1/webhooks/events", params={"job_id": job.id}, headers=tenant.headers)).json()
    assert [e["id"] for e in account_wide["data"]] == [event["id"]]
    one = (await client.get(f"/v1/webhooks/events/{event['id']}", headers=tenant.headers)).json()
    assert one["deliveries"][0]["attempts"] == sent["attempts"]
    # Then a redelivery starts it over, with the same webhook-id
    again = await client.post(f"/v1/webhooks/events/{event['id']}/redeliver", headers=tenant.headers)
    assert again.status_code == 200 and again.json()["deliveries"][0]["status"] == "pending", again.text
    await delivery.deliver(wdeps.hooks, sent["id"])
    first, second, third = receiver.at("/api")
    assert first.webhook_id == second.webhook_id == third.webhook_id == event["id"]
    verify_both(third, secret)
    final = (await client.get(f"/v1/webhooks/events/{event['id']}", headers=tenant.headers)).json()
    assert final["status"] == "delivered" and len(final["deliveries"][0]["attempts"]) == 3
    # And another account sees none of it
    other = await make_tenant()
    assert error_of(await client.get(f"/v1/webhooks/events/{event['id']}", headers=other.headers), 404)["code"] == (
        "webhook_event_not_found"
    )
    assert error_of(await client.post(f"/v1/webhooks/events/{event['id']}/redeliver", headers=other.headers), 404)
    job_events = await client.get(f"/v1/jobs/{job.id}/events", headers=other.headers)
    assert error_of(job_events, 404)["code"] == "job_not_found"
    assert (await client.get("/v1/webhooks/events", headers=other.headers)).json()["data"] == []


async def test_queued_events_show_pending_and_list_filters_are_checked(
    client: AsyncTestClient[Any], tenant: Tenant
) -> None:
    body = {"model": "local-video", "prompt": "p", "seconds": "1", "webhook_url": "http://127.0.0.1:9/q",
            "webhook_events": ["video.queued"]}  # fmt: skip
    created = await client.post("/v1/videos", json=body, headers=tenant.headers)
    assert created.status_code == 200, created.text
    listed = (await client.get(f"/v1/jobs/{created.json()['id']}/events", headers=tenant.headers)).json()
    (event,) = listed["data"]
    assert event["type"] == "video.queued" and event["status"] == "pending"
    assert event["deliveries"][0]["attempts"] == [] and event["deliveries"][0]["next_attempt_at"] is not None
    for query, param in [({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"), ({"order": "up"}, "order"),
                         ({"type": "video.nope"}, "type")]:  # fmt: skip
        answer = await client.get("/v1/webhooks/events", params=query, headers=tenant.headers)
        assert error_of(answer, 400)["param"] == param
    redeliver = await client.post(
        f"/v1/webhooks/events/{event['id']}/redeliver", json={"endpoint_id": "whe_nope"}, headers=tenant.headers
    )
    assert error_of(redeliver, 404)["param"] == "endpoint_id"
    bad = await client.post(f"/v1/webhooks/events/{event['id']}/redeliver", content=b"[1]", headers=tenant.headers)
    assert error_of(bad, 400)["code"] == "invalid_json"
