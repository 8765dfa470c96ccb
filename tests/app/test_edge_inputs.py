"""What the core must never see stops at the edge, on every route but chat and embeddings (their own
tests): NUL and lone surrogates, integers past 64 bits, deep nesting, invalid UTF-8, non-ASCII digits.
(A JSON body that is not UTF-8 or holds a lone surrogate was already a 400 on these routes; the
multipart cases here were not.)
Each answer is the OpenAI envelope with a non-null code, and nothing is logged as an ERROR (the suite
runs on SQLite and PostgreSQL, where a NUL used to reach SQL)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import ADMIN_HEADERS, Tenant

VIDEO = {"model": "local-video", "prompt": "p"}
IMAGE = {"model": "local-image", "prompt": "p"}
HOOK = "http://127.0.0.1:9/"
CHANNEL = {"name": "c", "provider": "local", "base_url": "http://x", "models": ["m"]}
DEEP: Any = "x"
for _ in range(100):
    DEEP = {"a": DEEP}

GET_CASES = [
    # (path, status, code, param)
    ("/v1/videos/abc%00", 404, "video_not_found", "id"),
    ("/v1/videos/abc%00/content", 404, "video_not_found", "id"),
    ("/v1/images/generations/img%00", 404, "image_not_found", "id"),
    ("/v1/jobs/job%00x", 404, "job_not_found", "id"),
    ("/v1/jobs/job%00x/events", 404, "job_not_found", "id"),
    ("/v1/webhooks/endpoints/whe_%00", 404, "webhook_endpoint_not_found", "id"),
    ("/v1/webhooks/events/evt_%00", 404, "webhook_event_not_found", "id"),
    ("/v1/videos?after=video_%00", 404, "not_found", "after"),
    ("/v1/webhooks/events?after=evt_%00", 404, "not_found", "after"),
    ("/v1/webhooks/events?job_id=a%00", 404, "job_not_found", "job_id"),
    ("/v1/ledger?before=99999999999999999999", 400, "invalid_value", "before"),
    ("/v1/ledger?before=-1", 400, "invalid_value", "before"),
    ("/v1/ledger?before=%C2%B2", 400, "invalid_type", "before"),
    ("/v1/ledger?limit=99999999999999999999", 400, "invalid_value", "limit"),
    ("/v1/videos?model=a%00", 400, "invalid_value", "model"),
    ("/v1/videos?order=sideways", 400, "invalid_value", "order"),
    ("/v1/videos/video_x/content?variant=%00", 400, "invalid_value", "variant"),
    ("/v1/usage?start=2026-13-01", 400, "invalid_value", "start"),
    ("/v1/usage?end=%00", 400, "invalid_value", "end"),
    ("/v1/usage?end=9999-12-31", 400, "invalid_value", "end"),
    ("/v1/usage?end=0001-01-05", 400, "invalid_value", "end"),
    ("/v1/usage?start=0001-01-01&end=0001-01-02", 400, "invalid_value", "start"),
]


def assert_envelope(response: Any, status: int, code: str, param: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["param"] == param, error
    assert error["type"] == "invalid_request_error" and error["message"]


def assert_no_error_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize(("path", "status", "code", "param"), GET_CASES)
async def test_bad_path_and_query_values(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    caplog: pytest.LogCaptureFixture,
    path: str,
    status: int,
    code: str,
    param: str,
) -> None:
    with caplog.at_level(logging.WARNING):
        response = await client.get(path, headers=tenant.headers)
    assert_envelope(response, status, code, param)
    assert_no_error_logged(caplog)


BODY_CASES = [
    # (path, json body, status, code, param)
    ("/v1/videos", {**VIDEO, "prompt": "a\x00b"}, 400, "invalid_value", "prompt"),
    ("/v1/videos", {**VIDEO, "metadata": {"k": "v\x00"}}, 400, "invalid_value", "metadata.k"),
    ("/v1/videos", {**VIDEO, "metadata": {"k\x00": "v"}}, 400, "invalid_value", "metadata"),
    ("/v1/videos", {**VIDEO, "metadata": {"k": {"deep": "v"}}}, 400, "invalid_type", "metadata"),
    ("/v1/videos", {**VIDEO, "vendor_option": DEEP}, 400, "nesting_too_deep", "vendor_option" + ".a" * 31),
    ("/v1/videos", {**VIDEO, "seconds": 2**64}, 400, "invalid_value", "seconds"),
    ("/v1/videos", {**VIDEO, "seconds": "²"}, 400, "invalid_value", "seconds"),
    ("/v1/videos", {**VIDEO, "webhook_url": "http://127.0.0.1:9/\x00"}, 400, "invalid_value", "webhook_url"),
    ("/v1/videos", {**VIDEO, "input_reference": {"file_id": "f\x00"}}, 400, "invalid_value", "input_reference.file_id"),
    ("/v1/videos/generations", {**VIDEO, "model": "local\x00video"}, 400, "invalid_value", "model"),
    ("/v1/images/generations", {**IMAGE, "metadata": {"k": "\x00"}}, 400, "invalid_value", "metadata.k"),
    ("/v1/webhooks/endpoints", {"url": "http://127.0.0.1:9/\x00"}, 400, "invalid_value", "url"),
    ("/v1/webhooks/endpoints", {"url": HOOK, "description": "\x00"}, 400, "invalid_value", "description"),
    ("/v1/webhooks/endpoints", {"url": "http://127.0.0.1:9/", "colour": "red"}, 400, "unknown_parameter", "colour"),
    ("/v1/webhooks/events/evt_x/redeliver", {"endpoint_id": "whe_\x00"}, 400, "invalid_value", "endpoint_id"),
    ("/v1/redeem", {"code": "HT-\x00"}, 400, "invalid_value", "code"),
]


@pytest.mark.parametrize(("path", "body", "status", "code", "param"), BODY_CASES)
async def test_bad_body_values(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    caplog: pytest.LogCaptureFixture,
    path: str,
    body: dict[str, Any],
    status: int,
    code: str,
    param: str,
) -> None:
    with caplog.at_level(logging.WARNING):
        response = await client.post(path, headers=tenant.headers, json=body)
    assert_envelope(response, status, code, param)
    assert_no_error_logged(caplog)


RAW_BODIES = [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-array"),
    pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, id="deep-object"),
]


@pytest.mark.parametrize("path", ["/v1/videos", "/v1/images/generations", "/v1/webhooks/endpoints", "/v1/redeem"])
@pytest.mark.parametrize("raw", RAW_BODIES)
async def test_bad_raw_bodies(
    client: AsyncTestClient[Any], tenant: Tenant, caplog: pytest.LogCaptureFixture, path: str, raw: bytes
) -> None:
    with caplog.at_level(logging.WARNING):
        response = await client.post(path, headers={**tenant.headers, "content-type": "application/json"}, content=raw)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("invalid_json", "nesting_too_deep")
    assert_no_error_logged(caplog)


MULTIPART = "multipart/form-data; boundary=zzz"


def form(name: str, value: bytes) -> bytes:
    return b'--zzz\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n--zzz--\r\n' % (name.encode(), value)


@pytest.mark.parametrize(
    ("content_type", "raw", "code", "param"),
    [
        (MULTIPART, form("prompt", b"\xff\xfe"), "invalid_json", None),
        (MULTIPART, form("prompt", b"a\x00b"), "invalid_value", "prompt"),
        (MULTIPART, form("input_reference", b'{"a":' + b"[" * 5000), "nesting_too_deep", "input_reference"),
        (MULTIPART, form("input_reference", b"{not json"), "invalid_json", "input_reference"),
    ],
)
async def test_bad_multipart_bodies(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    caplog: pytest.LogCaptureFixture,
    content_type: str,
    raw: bytes,
    code: str,
    param: str | None,
) -> None:
    with caplog.at_level(logging.WARNING):
        response = await client.post(
            "/v1/videos", headers={**tenant.headers, "content-type": content_type}, content=raw
        )
    assert_envelope(response, 400, code, param)
    assert_no_error_logged(caplog)


@pytest.mark.parametrize("expires", ["%C2%B2", "%C2%B9%C2%B2"])
async def test_blob_links_with_bad_expiry_are_refused(
    client: AsyncTestClient[Any], caplog: pytest.LogCaptureFixture, expires: str
) -> None:
    with caplog.at_level(logging.WARNING):
        response = await client.get(f"/blobs/some/key.png?expires={expires}&sig=abc")
    assert response.status_code in (400, 403), response.text
    assert response.json()["error"]["code"]
    assert_no_error_logged(caplog)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/admin/accounts/acct%00x", None, 404, "account_not_found"),
        ("GET", "/admin/channels/ch%00x", None, 404, "channel_not_found"),
        ("PATCH", "/admin/keys/key%00", {"rpm": 1}, 404, "key_not_found"),
        ("PUT", "/admin/prices/m%00x", {}, 400, "invalid_value"),
        ("PUT", "/admin/prices/m-x", {"output_per_mtok": 2**62}, 400, "invalid_value"),
        ("PUT", "/admin/tiers/t%00x", {}, 400, "invalid_value"),
        ("POST", "/admin/codes", {"amount": 1, "expires_at": 2**62}, 400, "invalid_value"),
        ("POST", "/admin/accounts/acct_x/topups", {"amount": 2**63}, 400, "invalid_value"),
        ("POST", "/admin/channels", {**CHANNEL, "base_url": "\x00"}, 400, "invalid_value"),
        ("POST", "/admin/channels", {**CHANNEL, "provider": "nope"}, 400, "invalid_value"),
        ("PATCH", "/admin/accounts/acct_x", {"status": "deleted"}, 400, "invalid_value"),
        ("POST", "/admin/accounts", {"name": "a\x00b"}, 400, "invalid_value"),
        ("POST", "/admin/accounts", {"name": "x", "deep": DEEP}, 400, "nesting_too_deep"),
    ],
)
async def test_admin_bad_inputs(
    client: AsyncTestClient[Any],
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    with caplog.at_level(logging.WARNING):
        response = await client.request(method, path, headers=ADMIN_HEADERS, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert_no_error_logged(caplog)


async def test_a_repeated_authorization_header_is_refused_on_the_admin_api(client: AsyncTestClient[Any]) -> None:
    """The /v1 routes' rule (tests/app/test_fastpath.py) on the admin guard too: no copy wins."""
    headers = [("authorization", ADMIN_HEADERS["Authorization"]), ("authorization", "Bearer someone-else")]
    # httpx's own ASGI transport sends repeated headers as they are (the test client folds them).
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app), base_url="http://test") as raw:
        for order in (headers, headers[::-1]):
            response = await raw.get("/admin/accounts", headers=order)
            assert response.status_code == 400, response.text
            assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
                "invalid_header",
                "Authorization",
            )
