"""GET /v1/jobs/{id} right after a chat or embedding answer, before the batched job log writes its row."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from redis import Redis

from app.api.main import create_app
from app.core.db import SessionMaker
from app.core.settings import Settings
from app.jobs.models import Job
from app.jobs.preview import PreviewRow
from app.jobs.records import JOB_COLUMNS
from tests.conftest import Tenant
from tests.support import apoll

FIELDS = ("id", "kind", "status", "usage", "created_at", "channel_id")


async def row(sessionmaker: SessionMaker, job_id: str) -> Job | None:
    async with sessionmaker() as session:
        return await session.get(Job, job_id)


async def test_a_chat_job_answers_before_its_row_is_written(
    settings: Settings, client: AsyncTestClient[Any], tenant: Tenant, make_tenant: Any, sessionmaker: SessionMaker
) -> None:
    # The log flushes every ten minutes or at 10,000 rows: no row of this test is written on its own.
    lazy = settings.model_copy(update={"job_log_flush_ms": 600_000, "job_log_batch_size": 10_000})
    stranger = await make_tenant()
    async with AsyncTestClient(app=create_app(lazy), timeout=30) as slow:
        reply = await slow.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json={"model": "local-chat", "messages": [{"role": "user", "content": "find me"}]},
        )
        assert reply.status_code == 200, reply.text
        completion = reply.json()
        job = await slow.get(f"/v1/jobs/{completion['id']}", headers=tenant.headers)
        assert job.status_code == 200, job.text
        assert await row(sessionmaker, completion["id"]) is None  # it came from the pending record
        found = job.json()
        assert (found["id"], found["object"], found["kind"], found["status"]) == (
            completion["id"],
            "job",
            "chat",
            "completed",
        )
        assert found["usage"]["completion_tokens"] == completion["usage"]["completion_tokens"]
        assert found["channel_id"] == "ch_local" and found["attempts"][0]["channel"] == "local"
        assert found["billing"]["unit"] == "usd_micros"
        assert (await slow.get(f"/v1/jobs/{completion['id']}", headers=stranger.headers)).status_code == 404

        embedded = await slow.post(
            "/v1/embeddings", headers=tenant.headers, json={"model": "local-embedding", "input": "x"}
        )
        assert embedded.status_code == 200, embedded.text
        answer = await slow.get(f"/v1/jobs/{embedded.headers['x-request-id']}", headers=tenant.headers)
        assert answer.status_code == 200 and answer.json()["kind"] == "embedding"
        streamed = await slow.post(
            "/v1/chat/completions",
            headers=tenant.headers,
            json={"model": "local-chat", "messages": [{"role": "user", "content": "s"}], "stream": True},
        )
        assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
        answer = await slow.get(f"/v1/jobs/{streamed.headers['x-request-id']}", headers=tenant.headers)
        assert answer.status_code == 200 and answer.json()["stream"] is True
        recorder = slow.app.state.resources.recorder

    # The app's shutdown flushed the log: the row answers from then on (in any process), the same job.
    assert recorder.find(completion["id"]) is None
    assert await row(sessionmaker, completion["id"]) is not None
    after = await client.get(f"/v1/jobs/{completion['id']}", headers=tenant.headers)
    assert after.status_code == 200
    assert {k: after.json()[k] for k in FIELDS} == {k: found[k] for k in FIELDS}


def test_the_preview_row_has_the_job_log_columns_in_order() -> None:
    assert PreviewRow.__struct_fields__ == JOB_COLUMNS


async def test_with_the_preview_on_another_process_answers_too(
    settings: Settings, client: AsyncTestClient[Any], tenant: Tenant, make_tenant: Any
) -> None:
    """Two apps stand for two web processes behind a load balancer: one Redis, one database."""
    lazy = settings.model_copy(
        update={"job_log_flush_ms": 600_000, "job_log_batch_size": 10_000, "job_log_preview": True}
    )
    stranger = await make_tenant()
    redis = Redis.from_url(settings.redis_url)
    async with AsyncTestClient(app=create_app(lazy), timeout=30) as other:
        async with AsyncTestClient(app=create_app(lazy), timeout=30) as served:
            reply = await served.post(
                "/v1/chat/completions",
                headers=tenant.headers,
                json={"model": "local-chat", "messages": [{"role": "user", "content": "anyone?"}]},
            )
            assert reply.status_code == 200, reply.text
            completion = reply.json()
            path = f"/v1/jobs/{completion['id']}"

            async def seen_by_the_other() -> Any:
                answer = await other.get(path, headers=tenant.headers)
                return answer.json() if answer.status_code == 200 else None

            found = await apoll(seen_by_the_other, timeout=5, message="the job through the Redis preview")
            assert (found["kind"], found["status"]) == ("chat", "completed")
            assert found["usage"]["completion_tokens"] == completion["usage"]["completion_tokens"]
            assert (await other.get(path, headers=stranger.headers)).status_code == 404
            key = f"{settings.redis_prefix}jobpreview:{completion['id']}"
            assert redis.exists(key)
        # The serving process stopped: its log flushed and its preview entries went with the rows.
        assert not redis.exists(key)
        after = await other.get(path, headers=tenant.headers)
        assert after.status_code == 200
        assert {k: after.json()[k] for k in FIELDS} == {k: found[k] for k in FIELDS}
    redis.close()


def test_the_preview_row_has_the_job_log_columns_in_their_order() -> None:
    """`row_of` fills a PreviewRow positionally from JOB_COLUMNS: a column added to one and not the other,
    or moved, would shift every value after it."""
    from app.jobs.preview import PreviewRow
    from app.jobs.records import JOB_COLUMNS

    assert PreviewRow.__struct_fields__ == tuple(JOB_COLUMNS)
