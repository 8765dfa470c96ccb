"""The videos and images routes in-process: validation, ownership, listing, cancel, delete, 504.
No worker runs here: jobs stay queued unless a test moves them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlmodel import col, update

from app.api.main import create_app
from app.core.db import SessionMaker
from app.core.settings import Settings
from app.jobs.models import Job
from tests.conftest import Tenant

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17)


async def create(client: AsyncTestClient[Any], tenant: Tenant, **body: Any) -> Any:
    return await client.post("/v1/videos", headers=tenant.headers, json={"model": "local-video", "prompt": "p", **body})


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "no-such-model"}, 404, "model"),
        ({"size": "1x1"}, 400, "size"),
        ({"seconds": "abc"}, 400, "seconds"),
        ({"seconds": "99"}, 400, "seconds"),
        ({"prompt": ""}, 400, "prompt"),
        ({"prompt": "x" * 32_001}, 400, "prompt"),
        ({"model": "local-chat"}, 400, "model"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, 400, "metadata"),
        ({"webhook_url": "ftp://x"}, 400, "webhook_url"),
    ],
)
async def test_video_bad_input_names_the_field(
    client: AsyncTestClient[Any], tenant: Tenant, body: dict[str, Any], status: int, param: str
) -> None:
    answer = await create(client, tenant, **body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["param"] == param


async def test_video_multipart_as_the_sdk_sends_it(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    answer = await client.post(
        "/v1/videos/generations",
        headers=tenant.headers,
        data={
            "model": "local-video",
            "prompt": "hi",
            "seconds": "8",
            "size": "1280x720",
            "metadata[k]": "v",
            "webhook_url": "http://127.0.0.1:9/hook",
            "webhook_events[]": "video.completed",
        },
        files={"input_reference": ("a.png", PNG, "image/png")},
    )
    assert answer.status_code == 200, answer.text
    video = answer.json()
    assert video["task_id"] == video["id"] and video["object"] == "video" and video["status"] == "queued"
    assert {"id", "object", "model", "status", "progress", "created_at", "completed_at", "expires_at", "prompt",
            "size", "seconds", "remixed_from_video_id", "error"} <= set(video)  # fmt: skip
    assert (video["seconds"], video["size"], video["metadata"]) == ("8", "1280x720", {"k": "v"})
    assert video["webhook_events"] == ["video.completed"]
    assert answer.headers["openai-poll-after-ms"]


async def test_upload_too_large_is_413(client: AsyncTestClient[Any], tenant: Tenant, settings: Settings) -> None:
    big = b"0" * (settings.input_reference_max_bytes + 1)
    answer = await client.post(
        "/v1/videos",
        headers=tenant.headers,
        data={"model": "local-video", "prompt": "hi"},
        files={"input_reference": ("a.png", big, "image/png")},
    )
    assert answer.status_code == 413 and answer.json()["error"]["param"] == "input_reference"


@pytest.mark.parametrize(
    ("content", "declared", "stored_type", "extension"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "application/octet-stream", "image/jpeg", "jpg"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/png", "image/webp", "webp"),
        (b"GIF89a\x01\x00\x01\x00", "text/plain", "image/gif", "gif"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2", "image/png", "video/mp4", "mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "video/mp4", "video/quicktime", "mov"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "image/png", "video/webm", "webm"),
    ],
)
async def test_input_reference_is_stored_as_what_its_bytes_are(
    client: AsyncTestClient[Any],
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    content: bytes,
    declared: str,
    stored_type: str,
    extension: str,
) -> None:
    store = client.app.state.resources.store
    stored: list[tuple[str, str]] = []
    put_bytes = store.put_bytes

    async def spy(key: str, data: bytes, content_type: str) -> Any:
        stored.append((key, content_type))
        return await put_bytes(key, data, content_type)

    monkeypatch.setattr(store, "put_bytes", spy)
    answer = await client.post(
        "/v1/videos",
        headers=tenant.headers,
        data={"model": "local-video", "prompt": "hi"},
        files={"input_reference": ("upload.bin", content + bytes(64), declared)},
    )
    assert answer.status_code == 200, answer.text
    [(key, content_type)] = stored
    assert content_type == stored_type and key.endswith(f"/input_reference.{extension}")


@pytest.mark.parametrize(
    ("content", "declared"),
    [
        (b"just some text, honest", "image/png"),
        (b"<html><script>alert(1)</script></html>", "image/jpeg"),
        (b"\x89PNG fake", "image/png"),  # a signature's first bytes only
        (b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00", "video/mp4"),  # an AVIF image, not a video
        (b"", "image/png"),
    ],
)
async def test_input_reference_that_is_no_image_or_video_is_400(
    client: AsyncTestClient[Any], tenant: Tenant, content: bytes, declared: str
) -> None:
    answer = await client.post(
        "/v1/videos",
        headers=tenant.headers,
        data={"model": "local-video", "prompt": "hi"},
        files={"input_reference": ("a.png", content, declared)},
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (
        "input_reference",
        "invalid_value",
        "invalid_request_error",
    )


async def test_videos_are_private_listed_by_cursor_and_cancellable_once(
    client: AsyncTestClient[Any], tenant: Tenant, make_tenant: Any, sessionmaker: SessionMaker
) -> None:
    ids = [(await create(client, tenant, prompt=f"v{i}")).json()["id"] for i in range(3)]
    stranger = await make_tenant()
    assert (await client.get(f"/v1/videos/{ids[0]}", headers=stranger.headers)).status_code == 404
    assert (await client.get("/v1/videos/video_nope", headers=tenant.headers)).json()["error"]["code"] == (
        "video_not_found"
    )

    page = (await client.get("/v1/videos?limit=2", headers=tenant.headers)).json()
    assert [v["id"] for v in page["data"]] == ids[::-1][:2] and page["has_more"] is True
    rest = (await client.get(f"/v1/videos?limit=2&after={page['last_id']}", headers=tenant.headers)).json()
    assert [v["id"] for v in rest["data"]] == [ids[0]] and rest["has_more"] is False
    ascending = (await client.get("/v1/videos?order=asc&status=queued", headers=tenant.headers)).json()
    assert [v["id"] for v in ascending["data"]] == ids

    not_ready = await client.get(f"/v1/videos/{ids[0]}/content", headers=tenant.headers)
    assert not_ready.status_code == 404 and not_ready.json()["error"]["code"] == "video_not_ready"
    assert (await client.delete(f"/v1/videos/{ids[0]}", headers=tenant.headers)).status_code == 409

    cancelled = await client.post(f"/v1/videos/{ids[0]}/cancel", headers=tenant.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = await client.post(f"/v1/videos/{ids[0]}/cancel", headers=tenant.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "video_not_cancellable"

    deleted = await client.delete(f"/v1/videos/{ids[0]}", headers=tenant.headers)
    assert deleted.json() == {"id": ids[0], "object": "video.deleted", "deleted": True}
    assert (await client.get(f"/v1/videos/{ids[0]}", headers=tenant.headers)).status_code == 404
    job = (await client.get(f"/v1/jobs/{ids[1]}", headers=tenant.headers)).json()
    assert job["kind"] == "video" and job["status"] == "queued" and job["progress"] == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"size": "100x100"}, "size"),
        ({"n": 11}, "n"),
        ({"n": 0}, "n"),
        ({"prompt": " "}, "prompt"),
        ({"response_format": "gif"}, "response_format"),
        ({"model": "local-video"}, "model"),
    ],
)
async def test_image_bad_input_names_the_field(
    client: AsyncTestClient[Any], tenant: Tenant, body: dict[str, Any], param: str
) -> None:
    answer = await client.post(
        "/v1/images/generations", headers=tenant.headers, json={"model": "local-image", "prompt": "p", **body}
    )
    assert answer.status_code == 400 and answer.json()["error"]["param"] == param


@pytest.fixture
async def impatient(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings.model_copy(update={"image_wait_seconds": 0.3}))
    async with AsyncTestClient(app=app, timeout=30) as test_client:
        yield test_client


async def test_image_async_and_wait_timeout(impatient: AsyncTestClient[Any], tenant: Tenant) -> None:
    body = {"model": "local-image", "prompt": "a fox", "size": "256x256"}
    accepted = await impatient.post(
        "/v1/images/generations", headers={**tenant.headers, "Prefer": "respond-async"}, json=body
    )
    assert accepted.status_code == 202
    job = accepted.json()
    assert (job["object"], job["status"], job["result"]) == ("image.generation", "queued", None)
    fetched = await impatient.get(f"/v1/images/generations/{job['id']}", headers=tenant.headers)
    assert fetched.json()["id"] == job["id"]

    timed_out = await impatient.post("/v1/images/generations", headers=tenant.headers, json=body)
    assert timed_out.status_code == 504
    assert timed_out.headers["x-should-retry"] == "false"
    error = timed_out.json()["error"]
    assert error["code"] == "generation_timeout" and error["job_id"].startswith("img_")


async def test_failed_job_reads_as_failed(
    client: AsyncTestClient[Any], tenant: Tenant, sessionmaker: SessionMaker
) -> None:
    video_id = (await create(client, tenant)).json()["id"]
    async with sessionmaker() as session:
        await session.exec(
            update(Job)
            .where(col(Job.id) == video_id)
            .values(status="failed", stage="failed", error_code="timeout", error_message="too slow")
        )  # type: ignore[call-overload]
        await session.commit()
    video = (await client.get(f"/v1/videos/{video_id}", headers=tenant.headers)).json()
    assert video["status"] == "failed" and video["error"] == {"code": "timeout", "message": "too slow"}
    assert "openai-poll-after-ms" not in (await client.get(f"/v1/videos/{video_id}", headers=tenant.headers)).headers
