"""Each media vendor adapter driven through the job steps (in-process, real database and storage)
against its fake upstream (tests/fakes/media_vendors.py): done, failure, moderation refusal, 429 with
Retry-After, and a result link that expired before it was copied."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from app.channels.catalog import Catalog
from app.core.queue import ActorName
from app.jobs.models import JobKind
from storage.base import read_all
from tests.conftest import AddChannel, Tenant, unique_model
from tests.fakes.media import MP4, PNG, Fault
from tests.fakes.media_vendors import FakeVendors
from tests.fakes.vendor_handlers import KLING_ACCESS, KLING_SECRET
from tests.jobs.conftest import create_job, deliver, deps, reload, sender_of

__all__ = ["deps"]


@dataclass(frozen=True)
class Vendor:
    name: str
    provider: str
    kind: JobKind
    upstream: str
    api_key: str = "sk-upstream-test"

    @property
    def result(self) -> bytes:
        return MP4 if self.kind is JobKind.VIDEO else PNG


VENDORS = {
    v.name: v
    for v in [
        Vendor("veo", "gemini", JobKind.VIDEO, "veo-3.1-generate-preview"),
        Vendor("stability", "stability", JobKind.IMAGE, "sd3.5-large"),
        Vendor("bfl", "bfl", JobKind.IMAGE, "flux-pro-1.1"),
        Vendor("replicate", "replicate", JobKind.VIDEO, "minimax/video-01"),
        Vendor("fal", "fal", JobKind.IMAGE, "fal-ai/flux/dev"),
        Vendor("kling", "kling", JobKind.VIDEO, "kling-v2-master", f"{KLING_ACCESS}:{KLING_SECRET}"),
        Vendor("midjourney", "midjourney", JobKind.IMAGE, "midjourney"),
    ]
}
ASYNC = [name for name in VENDORS if name != "stability"]  # Stability answers with the image itself


@pytest.fixture(scope="session")
def vendor_server() -> Iterator[FakeVendors]:
    server = FakeVendors().start()
    yield server
    server.stop()


@pytest.fixture
def fake(vendor_server: FakeVendors) -> Iterator[FakeVendors]:
    vendor_server.reset()
    yield vendor_server
    vendor_server.reset()


async def vendor_model(add_channel: AddChannel, fake: FakeVendors, vendor: Vendor) -> str:
    model = unique_model(vendor.name)
    await add_channel(
        fake.base_url(vendor.name),
        [f"{model}={vendor.upstream}"],
        provider=vendor.provider,
        api_key=vendor.api_key,
        options={"min_poll_seconds": 0},
    )
    return model


def params(vendor: Vendor) -> dict[str, object]:
    if vendor.kind is JobKind.VIDEO:
        return {"seconds": 5, "size": "1280x720"}
    return {"n": 1, "size": "1024x1024", "output_format": "png"}


@pytest.mark.parametrize("name", list(VENDORS))
async def test_done_lands_in_our_storage(deps, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors, name: str):
    vendor = VENDORS[name]
    model = await vendor_model(add_channel, fake, vendor)
    job = await create_job(deps, tenant, vendor.kind, model, **params(vendor))
    await deliver(deps)
    done = await reload(deps, job.id)
    assert (done.status, done.error_message) == ("completed", None)
    (asset,) = done.assets or []
    assert asset["variant"] == vendor.kind.value
    assert await read_all(deps.store, asset["key"]) == vendor.result
    submits = fake.names(f"{'mj' if name == 'midjourney' else name}.submit")
    assert len(submits) == 1


@pytest.mark.parametrize("name", list(VENDORS))
async def test_moderation_refusal_fails_with_content_policy_violation(
    deps, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors, name: str
):
    vendor = VENDORS[name]
    model = await vendor_model(add_channel, fake, vendor)
    fake.outcome = "moderated"
    job = await create_job(deps, tenant, vendor.kind, model, **params(vendor))
    await deliver(deps)
    failed = await reload(deps, job.id)
    assert (failed.status, failed.error_code) == ("failed", "content_policy_violation"), failed.error_message
    assert failed.assets is None


@pytest.mark.parametrize("name", list(VENDORS))
async def test_upstream_failure_fails_the_job_with_its_reason(
    deps, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors, name: str
):
    vendor = VENDORS[name]
    model = await vendor_model(add_channel, fake, vendor)
    fake.outcome = "fail"
    job = await create_job(deps, tenant, vendor.kind, model, **params(vendor))
    await deliver(deps)
    failed = await reload(deps, job.id)
    assert failed.status == "failed" and failed.error_code != "content_policy_violation"
    reasons = ["Internal", "invalid", "out of memory", "Error", "retry", "timed out"]
    assert any(word in (failed.error_message or "") for word in reasons), failed.error_message


@pytest.mark.parametrize("name", list(VENDORS))
async def test_429_on_submit_waits_its_retry_after_then_completes(
    deps, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors, name: str
):
    vendor = VENDORS[name]
    model = await vendor_model(add_channel, fake, vendor)
    route = f"{'mj' if name == 'midjourney' else name}.submit"
    fake.faults[route] = [Fault(429, headers={"retry-after": "1"}, body={"error": {"message": "Too many requests"}})]
    job = await create_job(deps, tenant, vendor.kind, model, **params(vendor))
    delivered = await deliver(deps)
    done = await reload(deps, job.id)
    assert done.status == "completed"
    assert len(fake.names(route)) == 2
    retried = [m for m in delivered if m.actor is ActorName.JOB_SUBMIT and m.delay_ms]
    assert [m.delay_ms for m in retried] == [1000]  # Retry-After, not the back-off schedule


@pytest.mark.parametrize("name", ASYNC)
async def test_an_expired_result_link_fails_the_job_as_result_expired(
    deps, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors, name: str
):
    vendor = VENDORS[name]
    model = await vendor_model(add_channel, fake, vendor)
    fake.outcome = "expired"
    job = await create_job(deps, tenant, vendor.kind, model, **params(vendor))
    await deliver(deps)
    failed = await reload(deps, job.id)
    assert (failed.status, failed.error_code) == ("failed", "result_expired")
    assert sender_of(deps).sent == []


async def test_veo_forwards_an_uploaded_reference_image_inline(
    deps, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors
):
    model = await vendor_model(add_channel, fake, VENDORS["veo"])
    key = f"ref-{unique_model()}/input_reference.png"
    await deps.store.put_bytes(key, PNG, "image/png")
    job = await create_job(deps, tenant, JobKind.VIDEO, model, seconds=8, size="720x1280", input_reference_key=key)
    await deliver(deps)
    assert (await reload(deps, job.id)).status == "completed"
    ((_, _, body),) = [s for s in fake.seen if s[0] == "veo.submit"]
    assert body["instances"][0]["image"] == {
        "bytesBase64Encoded": base64.b64encode(PNG).decode(),
        "mimeType": "image/png",
    }
    assert body["parameters"] == {"aspectRatio": "9:16", "resolution": "720p", "durationSeconds": 8}


async def test_kling_takes_a_reference_as_image2video_with_bare_base64(
    deps, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors
):
    model = await vendor_model(add_channel, fake, VENDORS["kling"])
    key = f"ref-{unique_model()}/input_reference.png"
    await deps.store.put_bytes(key, PNG, "image/png")
    job = await create_job(deps, tenant, JobKind.VIDEO, model, seconds=5, input_reference_key=key)
    await deliver(deps)
    assert (await reload(deps, job.id)).status == "completed"
    ((_, _, body),) = [s for s in fake.seen if s[0] == "kling.submit"]
    assert body["image"] == base64.b64encode(PNG).decode() and body["duration"] == "5"


async def test_midjourney_upscale_is_a_follow_up_job_on_the_grid(
    deps, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors
):
    model = await vendor_model(add_channel, fake, VENDORS["midjourney"])
    grid = await create_job(deps, tenant, JobKind.IMAGE, model, n=1)
    await deliver(deps)
    grid = await reload(deps, grid.id)
    assert grid.status == "completed"
    upscale = await create_job(
        deps, tenant, JobKind.IMAGE, model, n=1, extra={"action": "upscale", "source_id": grid.id, "index": 2}
    )
    await deliver(deps)
    done = await reload(deps, upscale.id)
    assert done.status == "completed", done.error_message
    (_, _, body) = [s for s in fake.seen if s[0] == "mj.submit"][-1]
    assert body["taskId"] == grid.upstream_id and body["customId"].startswith("MJ::JOB::upsample::2::")

    # Another account's grid is not a source.
    stranger = await create_job(deps, tenant, JobKind.IMAGE, model, n=1, extra={"source_id": "img_nope", "index": 1})
    await deliver(deps)
    refused = await reload(deps, stranger.id)
    assert (refused.status, refused.error_code) == ("failed", "invalid_source")


async def test_kling_refusing_the_prompt_at_submit_is_a_content_policy_violation(
    deps, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors
):
    model = await vendor_model(add_channel, fake, VENDORS["kling"])
    fake.outcome = "refused"  # HTTP 400, code 1301: "Trigger the content security policy of the platform"
    job = await create_job(deps, tenant, JobKind.VIDEO, model, seconds=5)
    await deliver(deps)
    failed = await reload(deps, job.id)
    assert (failed.status, failed.error_code) == ("failed", "content_policy_violation")
    assert "content security" in (failed.error_message or "")


async def test_a_channel_the_workers_catalog_does_not_know_yet_is_looked_up_again(
    deps, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors
):
    # Given a job admitted on a channel added a moment ago, and a worker whose catalog predates it
    model = await vendor_model(add_channel, fake, VENDORS["bfl"])
    job = await create_job(deps, tenant, JobKind.IMAGE, model, n=1, size="1024x1024")
    deps.catalog.current = Catalog()
    # Then the submit step reads a fresh catalog instead of failing the job as channel_unavailable
    await deliver(deps)
    assert (await reload(deps, job.id)).status == "completed"
