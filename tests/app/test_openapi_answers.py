"""Real requests that succeed (which generated ones rarely do: they seldom name a served model), each
answer checked against the schema /schema/openapi.json documents for its status."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import ADMIN_HEADERS
from tests.support import LiveServer

HOOK = "http://127.0.0.1:9/hook"


class Api:
    def __init__(self, gateway: LiveServer, api_key: str) -> None:
        document = httpx.get(f"{gateway.url}/schema/openapi.json", timeout=30).json()
        self.schema = schemathesis.openapi.from_dict(document)
        self.base_url = gateway.url
        self.key = api_key

    def __call__(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        """Call the documented operation `method path` (path parameters in `path_parameters`)."""
        admin = path.startswith("/admin")
        headers = {"Authorization": ADMIN_HEADERS["Authorization"] if admin else f"Bearer {self.key}"}
        headers.update(kwargs.pop("headers", {}))
        if "body" in kwargs:
            kwargs.setdefault("media_type", "application/json")
        case = self.schema[path][method].Case(headers=headers, **kwargs)
        response = case.call_and_validate(
            base_url=self.base_url,
            checks=[not_a_server_error, response_schema_conformance],
            allow_redirects=False,
        )
        assert response.status_code == status, (method, path, response.text)
        return response.json() if response.content else None


@pytest.fixture(scope="module")
def api(gateway: LiveServer) -> Api:
    """An account of its own: the Schemathesis run's account may have fetched its webhook secret
    already (shown once), whichever test runs first."""
    with httpx.Client(base_url=gateway.url, headers=ADMIN_HEADERS, timeout=30) as admin:
        account = admin.post("/admin/accounts", json={"name": "answers-key"}).json()
        key = admin.post(f"/admin/accounts/{account['id']}/keys", json={"name": "answers"}).json()
        admin.patch(f"/admin/keys/{key['id']}", json={"rpm": 0, "rph": 0, "tpm": 0, "max_streams": 0})
        admin.post(f"/admin/accounts/{account['id']}/topups", json={"amount_usd": "1000"})
    return Api(gateway, str(key["key"]))


def test_media_jobs_and_their_answers(api: Api) -> None:
    body = {"model": "local-video", "prompt": "p", "seconds": "4", "metadata": {"k": "v"}, "webhook_url": HOOK,
            "webhook_events": ["video.completed", "video.cancelled"]}  # fmt: skip
    video = api("POST", "/v1/videos", 200, body=body)
    generation = api("POST", "/v1/videos/generations", 200, body={"model": "local-video", "prompt": "q"})
    assert generation["task_id"] == generation["id"]
    upload = api(
        "POST",
        "/v1/videos",
        200,
        body={"model": "local-video", "prompt": "r", "input_reference": b"\x89PNG\r\n\x1a\n" + b"\0" * 64},
        media_type="multipart/form-data",
    )
    assert upload["status"] == "queued"
    ids = {"video_id": video["id"]}
    api("GET", "/v1/videos/{video_id}", 200, path_parameters=ids)
    api("GET", "/v1/videos", 200, query={"limit": 2, "order": "asc"})
    api("GET", "/v1/videos/{video_id}/content", 404, path_parameters=ids)
    api("POST", "/v1/videos/{video_id}/cancel", 200, path_parameters=ids)
    api("DELETE", "/v1/videos/{video_id}", 200, path_parameters=ids)
    image = api("POST", "/v1/images/generations", 202, body={"model": "local-image", "prompt": "p"},
                headers={"Prefer": "respond-async"})  # fmt: skip
    api("GET", "/v1/images/generations/{image_id}", 200, path_parameters={"image_id": image["id"]})
    job = api("GET", "/v1/jobs/{job_id}", 200, path_parameters={"job_id": generation["id"]})
    assert job["kind"] == "video" and job["progress"] == 0
    api("GET", "/v1/jobs/{job_id}/events", 200, path_parameters={"job_id": generation["id"]})


def test_webhooks_and_their_answers(api: Api) -> None:
    api("GET", "/v1/webhooks/secret", 200)
    api("POST", "/v1/webhooks/secret", 200)
    api("POST", "/v1/webhooks/secret/rotate", 200, body={"overlap_seconds": 60})
    endpoint = api("POST", "/v1/webhooks/endpoints", 200, body={"url": HOOK, "description": "d"})
    ids = {"endpoint_id": endpoint["id"]}
    api("GET", "/v1/webhooks/endpoints", 200)
    api("GET", "/v1/webhooks/endpoints/{endpoint_id}", 200, path_parameters=ids)
    api("POST", "/v1/webhooks/endpoints/{endpoint_id}", 200, path_parameters=ids, body={"status": "disabled"})
    body = {"model": "local-video", "prompt": "p", "webhook_url": HOOK, "webhook_events": ["video.cancelled"]}
    video = api("POST", "/v1/videos", 200, body=body)
    api("POST", "/v1/videos/{video_id}/cancel", 200, path_parameters={"video_id": video["id"]})
    events = api("GET", "/v1/webhooks/events", 200, query={"job_id": video["id"]})
    assert events["data"], events
    event = {"event_id": events["data"][0]["id"]}
    api("GET", "/v1/webhooks/events/{event_id}", 200, path_parameters=event)
    api("POST", "/v1/webhooks/events/{event_id}/redeliver", 200, path_parameters=event)
    api("DELETE", "/v1/webhooks/endpoints/{endpoint_id}", 200, path_parameters=ids)


def test_account_models_and_admin_answers(api: Api) -> None:
    api("GET", "/v1/models", 200)
    api("GET", "/v1/models/{model_id}", 200, path_parameters={"model_id": "local-chat"})
    api("GET", "/v1/account", 200)
    api("GET", "/v1/usage", 200)
    api("GET", "/v1/ledger", 200, query={"limit": 5})
    codes = api("POST", "/admin/codes", 201, body={"amount": 1000, "count": 1, "note": "n"})
    api("POST", "/v1/redeem", 200, body={"code": codes["data"][0]["code"]})
    account = api("POST", "/admin/accounts", 201, body={"name": "answers"})
    ids = {"account": account["id"]}
    api("GET", "/admin/accounts", 200)
    api("GET", "/admin/accounts/{account}", 200, path_parameters=ids)
    api("PATCH", "/admin/accounts/{account}", 200, path_parameters=ids, body={"rpm": 5})
    key = api("POST", "/admin/accounts/{account}/keys", 201, path_parameters=ids, body={"name": "k"})
    api("GET", "/admin/accounts/{account}/keys", 200, path_parameters=ids)
    api("PATCH", "/admin/keys/{key_id}", 200, path_parameters={"key_id": key["id"]}, body={"tpm": 10})
    api("POST", "/admin/keys/{key_id}/revoke", 200, path_parameters={"key_id": key["id"]})
    api("POST", "/admin/accounts/{account}/topups", 201, path_parameters=ids, body={"amount_usd": "2.50"})
    api("POST", "/admin/accounts/{account}/adjustments", 201, path_parameters=ids, body={"amount": -1, "reason": "r"})
    api("GET", "/admin/accounts/{account}/ledger", 200, path_parameters=ids)
    api("GET", "/admin/ledger/verify", 200)
    api("PUT", "/admin/prices/{model}", 200, path_parameters={"model": "m-answers"}, body={"input_per_mtok": 1})
    api("GET", "/admin/prices", 200)
    api("DELETE", "/admin/prices/{model}", 200, path_parameters={"model": "m-answers"})
    api("PUT", "/admin/tiers/{name}", 200, path_parameters={"name": "answers"}, body={"rpm": 1})
    api("GET", "/admin/tiers", 200)
    api("GET", "/admin/status", 200)
    body = {"name": "answers", "provider": "openai", "base_url": "http://127.0.0.1:9/v1", "models": ["answers-m"]}
    channel = {"channel": api("POST", "/admin/channels", 201, body=body)["id"]}
    api("GET", "/admin/channels", 200)
    api("GET", "/admin/channels/{channel}", 200, path_parameters=channel)
    api("PATCH", "/admin/channels/{channel}", 200, path_parameters=channel, body={"weight": 2})
    api("POST", "/admin/channels/{channel}/models", 200, path_parameters=channel, body={"models": ["answers-n"]})
    api("DELETE", "/admin/channels/{channel}/models/{model}", 200, path_parameters={**channel, "model": "answers-n"})
    api("GET", "/admin/cooldowns", 200)
    api("DELETE", "/admin/cooldowns/{channel}", 404, path_parameters=channel)
    api("DELETE", "/admin/channels/{channel}", 200, path_parameters=channel)
