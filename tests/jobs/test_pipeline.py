"""The job steps against fake vendor upstreams: happy paths, back-off, failures, duplicates, deadline."""

from __future__ import annotations

import hashlib
import io

import httpx
import pytest
from PIL import Image

from app.core.queue import ActorName
from app.jobs.models import JobKind
from app.jobs.reconciler import reconcile_once
from storage.base import read_all
from tests.conftest import AddChannel, Tenant, unique_model
from tests.fakes.media import MP4, PNG, FakeMediaUpstream, Fault
from tests.jobs.conftest import create_job, deliver, reload, sender_of

pytestmark = pytest.mark.usefixtures("fake_media")


async def runway_model(add_channel: AddChannel, fake: FakeMediaUpstream) -> str:
    model = unique_model("gen4")
    await add_channel(fake.base_url, [model], provider="runway", options={"min_poll_seconds": 0})
    return model


async def test_runway_backs_off_on_5xx_and_429_while_polling_and_completes(
    deps, tenant: Tenant, add_channel: AddChannel, fake_media: FakeMediaUpstream
) -> None:
    # Given a Runway task whose polls first meet a 503 and a 429 with Retry-After
    model = await runway_model(add_channel, fake_media)
    fake_media.faults["runway.poll"] = [Fault(503), Fault(429, headers={"retry-after": "0"}), Fault(502)]
    job = await create_job(deps, tenant, JobKind.VIDEO, model, seconds=5, size="1280x720")
    # When the worker runs every message it is sent
    await deliver(deps)
    # Then the job completed after backing off, with one upstream submit and our copy of the MP4
    done = await reload(deps, job.id)
    assert done.status == "completed" and done.stage == "completed" and done.progress == 100
    assert fake_media.count("POST", "/v1/text_to_video") == 1
    assert fake_media.count("GET", "/v1/tasks/") == 3 + 3  # three faults, then PENDING, RUNNING, SUCCEEDED
    (asset,) = done.assets or []
    assert asset["variant"] == "video" and asset["content_type"] == "video/mp4"
    assert asset["bytes"] == len(MP4) and asset["sha256"] == hashlib.sha256(MP4).hexdigest()
    assert await read_all(deps.store, asset["key"]) == MP4
    assert done.upstream_id is not None and done.expires_at is not None


async def test_upstream_permanent_failure_fails_the_job_with_its_reason(
    deps, tenant: Tenant, add_channel: AddChannel, fake_media: FakeMediaUpstream
) -> None:
    model = await runway_model(add_channel, fake_media)
    fake_media.fail_next = True
    job = await create_job(deps, tenant, JobKind.VIDEO, model, seconds=5, size="1280x720")
    await deliver(deps)
    failed = await reload(deps, job.id)
    assert failed.status == "failed"
    assert failed.error_code == "SAFETY.INPUT.TEXT" and failed.error_message == "Prompt was flagged."
    assert failed.assets is None


async def test_submit_refused_with_4xx_fails_at_once(
    deps, tenant: Tenant, add_channel: AddChannel, fake_media: FakeMediaUpstream
) -> None:
    model = await runway_model(add_channel, fake_media)
    fake_media.faults["runway.create"] = [Fault(400, body={"error": "promptText is too long"})]
    job = await create_job(deps, tenant, JobKind.VIDEO, model, seconds=5)
    await deliver(deps)
    failed = await reload(deps, job.id)
    assert failed.status == "failed" and failed.error_code == "upstream_rejected"
    assert "promptText is too long" in (failed.error_message or "")


async def test_submit_gives_up_after_max_attempts_of_5xx(
    deps, tenant: Tenant, add_channel: AddChannel, fake_media: FakeMediaUpstream
) -> None:
    model = await runway_model(add_channel, fake_media)
    fake_media.faults["runway.create"] = [Fault(500) for _ in range(deps.settings.job_max_attempts)]
    job = await create_job(deps, tenant, JobKind.VIDEO, model, seconds=5)
    await deliver(deps)
    failed = await reload(deps, job.id)
    assert failed.status == "failed" and failed.error_code == "upstream_unavailable"
    assert fake_media.count("POST", "/v1/text_to_video") == deps.settings.job_max_attempts


async def test_sora_create_poll_and_download_both_variants(
    deps, tenant: Tenant, add_channel: AddChannel, fake_media: FakeMediaUpstream
) -> None:
    model = unique_model("sora")
    await add_channel(fake_media.base_url, [model])
    job = await create_job(deps, tenant, JobKind.VIDEO, model, seconds=4, size="720x1280")
    await deliver(deps)
    done = await reload(deps, job.id)
    assert done.status == "completed"
    assets = {a["variant"]: a for a in done.assets or []}
    assert set(assets) == {"video", "thumbnail"}
    assert assets["thumbnail"]["content_type"] == "image/webp"
    assert await read_all(deps.store, assets["video"]["key"]) == MP4
    assert fake_media.count("GET", f"/v1/videos/{done.upstream_id}/content") == 2


async def test_sora_failure_keeps_the_upstream_code(
    deps, tenant: Tenant, add_channel: AddChannel, fake_media: FakeMediaUpstream
) -> None:
    model = unique_model("sora")
    await add_channel(fake_media.base_url, [model])
    fake_media.fail_next = True
    job = await create_job(deps, tenant, JobKind.VIDEO, model)
    await deliver(deps)
    failed = await reload(deps, job.id)
    assert (failed.status, failed.error_code) == ("failed", "moderation_blocked")


@pytest.mark.parametrize("as_url", [False, True])
async def test_openai_images_b64_and_url_results_are_copied(
    deps, tenant: Tenant, add_channel: AddChannel, fake_media: FakeMediaUpstream, as_url: bool
) -> None:
    model = unique_model("dall-e")
    await add_channel(fake_media.base_url, [model])
    fake_media.image_urls = as_url
    job = await create_job(deps, tenant, JobKind.IMAGE, model, n=2, size="256x256", output_format="png")
    await deliver(deps)
    done = await reload(deps, job.id)
    assert done.status == "completed"
    assert [a["index"] for a in done.assets or []] == [0, 1]
    for asset in done.assets or []:
        assert await read_all(deps.store, asset["key"]) == PNG
    assert fake_media.count("POST", "/v1/images/generations") == 1


async def test_every_message_delivered_twice_leaves_the_same_end_state(
    deps, tenant: Tenant, add_channel: AddChannel, fake_media: FakeMediaUpstream
) -> None:
    # Given a job whose every message (submit, each poll, store) is delivered twice, concurrently
    model = await runway_model(add_channel, fake_media)
    job = await create_job(deps, tenant, JobKind.VIDEO, model, seconds=5)
    delivered = await deliver(deps, duplicate=True)
    assert {m.actor for m in delivered} == {ActorName.JOB_SUBMIT, ActorName.JOB_POLL, ActorName.JOB_STORE}
    # Then: one upstream task, one stored object, completed — as with single delivery
    done = await reload(deps, job.id)
    assert done.status == "completed"
    assert fake_media.count("POST", "/v1/text_to_video") == 1
    assert len(done.assets or []) == 1
    files = list((deps.store.root / "media" / job.id).iterdir())  # type: ignore[attr-defined]
    assert [f.name for f in files] == ["video.mp4"]
    # And late copies of every message, after the end, change nothing
    version = done.version
    for actor in (ActorName.JOB_SUBMIT, ActorName.JOB_POLL, ActorName.JOB_STORE):
        from tests.jobs.conftest import STEPS

        await STEPS[actor](deps, job.id)
    assert (await reload(deps, job.id)).version == version
    assert sender_of(deps).sent == []


async def test_reconciler_resends_a_lost_message_and_times_out_past_deadline(
    deps, tenant: Tenant, add_channel: AddChannel, fake_media: FakeMediaUpstream
) -> None:
    model = await runway_model(add_channel, fake_media)
    lost = await create_job(deps, tenant, JobKind.VIDEO, model, seconds=5)
    late = await create_job(deps, tenant, JobKind.VIDEO, model, seconds=5, deadline=0)
    sender_of(deps).sent.clear()  # both submit messages are lost
    result = await reconcile_once(deps)
    assert result.timed_out >= 1 and result.resent >= 1
    timed_out = await reload(deps, late.id)
    assert (timed_out.status, timed_out.error_code) == ("failed", "timeout")
    assert any(m.object_id == lost.id and m.actor is ActorName.JOB_SUBMIT for m in sender_of(deps).sent)
    sender_of(deps).sent[:] = [m for m in sender_of(deps).sent if m.object_id == lost.id]
    await deliver(deps)
    assert (await reload(deps, lost.id)).status == "completed"


async def test_local_provider_makes_a_png_of_the_requested_size(deps, tenant: Tenant) -> None:
    job = await create_job(deps, tenant, JobKind.IMAGE, "local-image", size="512x256", n=1, output_format="png")
    await deliver(deps)
    done = await reload(deps, job.id)
    (asset,) = done.assets or []
    image = Image.open(io.BytesIO(await read_all(deps.store, asset["key"])))
    assert (image.format, image.size) == ("PNG", (512, 256))


async def test_started_at_is_the_first_claim_of_the_submit_step(deps, tenant: Tenant) -> None:
    # Given a queued local video job
    job = await create_job(deps, tenant, JobKind.VIDEO, "local-video", seconds=4, size="64x64")
    assert (await reload(deps, job.id)).started_at is None
    # When the worker runs it to the end
    await deliver(deps)
    # Then it records when the worker took it off the queue: after creation, before completion
    done = await reload(deps, job.id)
    assert done.status == "completed" and done.started_at is not None and done.completed_at is not None
    assert done.created_at <= done.started_at <= done.completed_at


async def test_local_provider_tiny_profile_makes_16px_files(deps, tenant: Tenant) -> None:
    import av

    from app.providers.media_registry import build_media_providers

    tiny = deps.settings.model_copy(update={"local_media_tiny": True})
    async with httpx.AsyncClient() as http:
        deps.media = build_media_providers(http, tiny)
        job = await create_job(deps, tenant, JobKind.VIDEO, "local-video", seconds=4, size="1280x720")
        await deliver(deps)
    done = await reload(deps, job.id)
    assets = {a["variant"]: a for a in done.assets or []}
    with av.open(io.BytesIO(await read_all(deps.store, assets["video"]["key"]))) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert (stream.width, stream.height, len(frames)) == (16, 16, 4)  # one frame a second
    thumbnail = Image.open(io.BytesIO(await read_all(deps.store, assets["thumbnail"]["key"])))
    assert thumbnail.size == (16, 16)
