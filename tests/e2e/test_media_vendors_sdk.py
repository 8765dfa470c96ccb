"""Every media vendor end to end with the OpenAI SDK (`videos.create` / `images.generate`): the gateway
and a worker started as the Procfile starts them, a priced channel per vendor against its fake upstream
(tests/fakes/media_vendors.py), a webhook receiver. The result lands in our storage, the webhook fires
once, the ledger captures the listed price. Then the vendors' callbacks: signed ones complete a job
without waiting for the next poll, forged ones are refused, and a lost one still completes by polling."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import APIStatusError, AsyncOpenAI, NotFoundError

from app.core.settings import Settings
from app.jobs.callbacks import job_token
from tests.conftest import ADMIN_HEADERS, AddChannel, Tenant, unique_model
from tests.e2e.conftest import FAST
from tests.fakes.media import PNG, Fault
from tests.fakes.media_vendors import REPLICATE_SECRET, FakeVendors
from tests.providers.test_media_vendors import VENDORS, Vendor
from tests.support import LiveServer, WorkerProcess, apoll
from tests.webhooks.support import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
VIDEO_PRICE = {"per_video_second": 50_000}  # $0.05 a second
IMAGE_PRICE = {"per_image": {"1024x1024": 40_000, "default": 90_000}}  # $0.04 at 1024x1024


class Stack:
    def __init__(self, web: LiveServer, worker: WorkerProcess, settings: Settings) -> None:
        self.web, self.worker, self.settings = web, worker, settings


@pytest.fixture(scope="module")
def vendors() -> Iterator[FakeVendors]:
    server = FakeVendors().start()
    yield server
    server.stop()


@pytest.fixture
def fake(vendors: FakeVendors) -> Iterator[FakeVendors]:
    vendors.reset()
    yield vendors
    vendors.reset()


@pytest.fixture(scope="module")
def stack(settings: Settings, vendors: FakeVendors) -> Iterator[Stack]:
    # Its own queues (this module's worker must take only this module's jobs), fal's keys from the fake,
    # and the worker hands vendors this web process's address for callbacks.
    mine = settings.model_copy(
        update={
            "redis_prefix": f"{settings.redis_prefix}mv{uuid.uuid4().hex[:6]}:",
            "fal_jwks_url": f"{vendors.root}/fal/jwks",
        }
    )
    web = LiveServer(mine)
    # Links to our copies (an uploaded input_reference given to vendors by URL) point at this web process.
    mine = mine.model_copy(update={"callback_base_url": web.url, "public_base_url": web.url})
    web.settings = web.settings.model_copy(update={"callback_base_url": web.url, "public_base_url": web.url})
    web.start()
    worker = WorkerProcess(mine, **FAST).start()
    yield Stack(web, worker, mine)
    worker.stop()
    web.stop()


@pytest.fixture(scope="module")
def hooks() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


async def topped_up(stack: Stack, tenant: Tenant, amount: int = 5_000_000) -> AsyncOpenAI:
    async with httpx.AsyncClient(base_url=stack.web.url) as http:
        answer = await http.post(
            f"/admin/accounts/{tenant.account_id}/topups",
            headers=ADMIN_HEADERS,
            json={"amount": amount, "reason": "test"},
        )
        assert answer.status_code == 201, answer.text
    return AsyncOpenAI(api_key=tenant.key, base_url=f"{stack.web.url}/v1", max_retries=0)


async def channel(
    add_channel: AddChannel, fake: FakeVendors, vendor: Vendor, options: dict[str, Any] | None = None
) -> str:
    model = unique_model(vendor.name)
    await add_channel(
        fake.base_url(vendor.name),
        [f"{model}={vendor.upstream}"],
        provider=vendor.provider,
        api_key=vendor.api_key,
        options={"min_poll_seconds": 0, **(options or {})},
        price=VIDEO_PRICE if vendor.kind.value == "video" else IMAGE_PRICE,
    )
    return model


async def listed(client: AsyncOpenAI, model: str) -> None:
    async def seen() -> bool | None:
        return True if model in [m.id async for m in client.models.list()] else None

    await apoll(seen, timeout=10, interval=0.1, message=f"{model} listed")


async def job_of(stack: Stack, tenant: Tenant, job_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.web.url, headers=tenant.headers) as http:
        answer: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}")).json()
        return answer


async def create(client: AsyncOpenAI, vendor: Vendor, model: str, hook: str) -> tuple[str, bytes | None]:
    """Create the job as a user would; returns (id, the image bytes when the call waited for them)."""
    if vendor.kind.value == "video":
        video = await client.videos.create(
            model=model, prompt="a paper boat", seconds="4", size="1280x720", extra_body={"webhook_url": hook}
        )
        return video.id, None
    image = await client.images.generate(
        model=model, prompt="a red fox", size="1024x1024", response_format="b64_json", extra_body={"webhook_url": hook}
    )
    return str(image._request_id), base64.b64decode(image.data[0].b64_json or "")  # type: ignore[union-attr]


async def finished_video(client: AsyncOpenAI, video_id: str, timeout: float = 60) -> Any:
    async def done() -> Any:
        video = await client.videos.retrieve(video_id)
        return video if video.status in ("completed", "failed") else None

    return await apoll(done, timeout=timeout, interval=0.2, message="video finished")


@pytest.mark.parametrize("name", list(VENDORS))
async def test_sdk_result_in_our_storage_webhook_once_ledger_captures_the_price(
    stack: Stack, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors, hooks: Receiver, name: str
) -> None:
    vendor = VENDORS[name]
    client = await topped_up(stack, tenant)
    model = await channel(add_channel, fake, vendor)
    await listed(client, model)
    path = f"/{name}-{uuid.uuid4().hex[:6]}"
    job_id, image = await create(client, vendor, model, hooks.url(path))
    if vendor.kind.value == "video":
        video = await finished_video(client, job_id)
        assert video.status == "completed", video.error
        assert (await client.videos.download_content(job_id)).read() == vendor.result
        price = VIDEO_PRICE["per_video_second"] * 4
    else:
        assert image == vendor.result
        price = IMAGE_PRICE["per_image"]["1024x1024"]

    async def delivered() -> Any:
        return hooks.at(path) or None

    (received,) = await apoll(delivered, timeout=30, interval=0.1, message="webhook delivered")
    assert received.json()["type"] == f"{vendor.kind.value}.completed"
    billing = (await job_of(stack, tenant, job_id))["billing"]
    assert (billing["state"], billing["hold"], billing["captured"]) == ("captured", price, price)
    assert sorted(e["kind"] for e in billing["ledger"]) == ["capture", "hold", "release"]
    assert hooks.at(path) == [received]  # once


async def test_a_failed_video_releases_its_hold_and_tells_the_sdk(
    stack: Stack, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors, hooks: Receiver
) -> None:
    client = await topped_up(stack, tenant)
    model = await channel(add_channel, fake, VENDORS["veo"])
    await listed(client, model)
    fake.outcome = "moderated"
    video_id, _ = await create(client, VENDORS["veo"], model, hooks.url("/veo-refused"))
    video = await finished_video(client, video_id)
    assert video.status == "failed" and video.error is not None and video.error.code == "content_policy_violation"
    billing = (await job_of(stack, tenant, video_id))["billing"]
    assert billing["state"] == "released" and not billing["captured"]


async def test_a_sora_model_no_channel_serves_is_404_naming_the_retirement(stack: Stack, tenant: Tenant) -> None:
    client = await topped_up(stack, tenant, 1)
    with pytest.raises(NotFoundError) as caught:
        await client.videos.create(model="sora-2", prompt="a cat")
    error = caught.value.body
    assert isinstance(error, dict) and error["code"] == "model_retired"
    assert "2026-09-24" in error["message"] and "local-video" in error["message"]


# -- callbacks -------------------------------------------------------------------------------------

SIGNING = {"replicate": {"webhook_secret": REPLICATE_SECRET}}


@pytest.mark.parametrize("name", ["replicate", "fal", "kling", "midjourney"])
async def test_a_signed_callback_completes_the_job_without_waiting_for_the_next_poll(
    stack: Stack, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors, name: str
) -> None:
    vendor = VENDORS[name]
    client = await topped_up(stack, tenant)
    # Polls two minutes apart: only the callback can finish the job within the test's deadline.
    model = await channel(add_channel, fake, vendor, {**SIGNING.get(name, {}), "min_poll_seconds": 120})
    await listed(client, model)
    fake.instant, fake.send_callbacks = True, True
    job_id, image = await create(client, vendor, model, "http://127.0.0.1:9/unused")
    if vendor.kind.value == "video":
        video = await finished_video(client, job_id, timeout=60)
        assert video.status == "completed", video.error
    else:
        assert image == vendor.result
    assert fake.callbacks_sent and fake.callbacks_sent[-1][1] == 200
    assert len(fake.names(f"{'mj' if name == 'midjourney' else name}.poll")) == 1  # the poll the callback caused


@pytest.mark.parametrize("name", ["replicate", "fal"])
async def test_a_callback_with_a_bad_signature_is_refused_and_changes_nothing(
    stack: Stack, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors, name: str
) -> None:
    vendor = VENDORS[name]
    client = await topped_up(stack, tenant)
    model = await channel(add_channel, fake, vendor, {**SIGNING.get(name, {}), "min_poll_seconds": 120})
    await listed(client, model)
    fake.instant = True  # the task is done upstream; no callback is sent by the fake
    video = await client.videos.create(model=model, prompt="x", seconds="4") if vendor.kind.value == "video" else None
    if video is None:
        image = await client.images.generate(model=model, prompt="x", extra_headers={"prefer": "respond-async"})
        job_id = str(image._request_id)
    else:
        job_id = video.id

    async def submitted() -> Any:
        job = await job_of(stack, tenant, job_id)
        return job if job["status"] == "in_progress" and fake.tasks else None

    await apoll(submitted, timeout=30, interval=0.1, message="job submitted")
    (task_id,) = [t for t, task in fake.tasks.items() if task.callback and job_id in task.callback]
    headers, body = fake.signed_callback(task_id, forge=True)
    token = job_token(stack.settings.resolved_secret_key(), name, job_id)
    url = f"{stack.web.url}/callbacks/{name}/{token}"
    async with httpx.AsyncClient() as http:
        forged = await http.post(url, content=body, headers=headers)
        assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_signature"
        wrong_token = await http.post(f"{url[:-3]}xyz", content=body, headers=dict(fake.signed_callback(task_id)[0]))
        assert wrong_token.status_code == 401
        polls = len(fake.names(f"{name}.poll"))
        assert (await job_of(stack, tenant, job_id))["status"] == "in_progress" and polls == 0
        good_headers, good_body = fake.signed_callback(task_id)
        assert (await http.post(url, content=good_body, headers=good_headers)).status_code == 200

    async def completed() -> Any:
        job = await job_of(stack, tenant, job_id)
        return job if job["status"] == "completed" else None

    await apoll(completed, timeout=30, interval=0.1, message="completed after the valid callback")


async def test_a_lost_callback_still_completes_by_polling(
    stack: Stack, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors
) -> None:
    client = await topped_up(stack, tenant)
    model = await channel(add_channel, fake, VENDORS["replicate"], SIGNING["replicate"])
    await listed(client, model)
    video = await client.videos.create(model=model, prompt="x", seconds="4")  # the fake never calls back
    done = await finished_video(client, video.id)
    assert done.status == "completed" and fake.callbacks_sent == []
    ((_, _, body),) = [s for s in fake.seen if s[0] == "replicate.submit"]
    assert body["webhook"].startswith(f"{stack.web.url}/callbacks/replicate/{video.id}.")
    assert body["webhook_events_filter"] == ["completed"]


# -- input_reference -------------------------------------------------------------------------------

FAL_VIDEO = Vendor("fal", "fal", VENDORS["veo"].kind, "fal-ai/kling-video/v2/master/image-to-video")
UPLOAD_TARGETS = {"veo": VENDORS["veo"], "kling": VENDORS["kling"], "replicate": VENDORS["replicate"], "fal": FAL_VIDEO}


def sent_reference(name: str, body: dict[str, Any]) -> str:
    """Where each vendor's request carries the reference image."""
    if name == "veo":
        return str(body["instances"][0]["image"]["bytesBase64Encoded"])
    if name == "kling":
        return str(body["image"])
    if name == "replicate":
        return str(body["input"]["image"])
    return str(body["image_url"])


@pytest.mark.parametrize("name", list(UPLOAD_TARGETS))
async def test_an_uploaded_input_reference_reaches_the_vendor_as_it_takes_it(
    stack: Stack, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors, name: str
) -> None:
    vendor = UPLOAD_TARGETS[name]
    client = await topped_up(stack, tenant)
    model = await channel(add_channel, fake, vendor)
    await listed(client, model)
    video = await client.videos.create(
        model=model, prompt="make it move", seconds="4", input_reference=("start.png", PNG, "image/png")
    )
    assert (await finished_video(client, video.id)).status == "completed"
    ((_, _, body),) = [s for s in fake.seen if s[0] == f"{name}.submit"]
    sent = sent_reference(name, body)
    if name in ("veo", "kling"):
        assert base64.b64decode(sent) == PNG  # inline, as bare base64
    else:
        assert sent.startswith(f"{stack.web.url}/blobs/")  # a short-lived signed link to our copy
        async with httpx.AsyncClient() as http:
            assert (await http.get(sent)).content == PNG


# -- what a user sees when a vendor fails ------------------------------------------------------------

EXPECTED = {"moderated": "content_policy_violation", "expired": "result_expired"}
OUTCOMES = [
    (n, o) for n in VENDORS for o in ("fail", "moderated", "expired") if not (n == "stability" and o == "expired")
]


@pytest.mark.parametrize(("name", "outcome"), OUTCOMES)
async def test_sdk_sees_the_failure_and_the_hold_is_released(
    stack: Stack, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors, hooks: Receiver, name: str, outcome: str
) -> None:
    vendor = VENDORS[name]
    client = await topped_up(stack, tenant)
    model = await channel(add_channel, fake, vendor)
    await listed(client, model)
    fake.outcome = outcome
    path = f"/{name}-{outcome}-{uuid.uuid4().hex[:6]}"
    if vendor.kind.value == "video":
        video = await client.videos.create(
            model=model, prompt="x", seconds="4", extra_body={"webhook_url": hooks.url(path)}
        )
        job_id = video.id
        failed = await finished_video(client, job_id)
        assert failed.status == "failed" and failed.error is not None
        code = failed.error.code
    else:
        with pytest.raises(APIStatusError) as caught:
            await client.images.generate(
                model=model, prompt="x", size="1024x1024", extra_body={"webhook_url": hooks.url(path)}
            )
        match = re.search(r"\(job (img_\w+)\)", caught.value.message)  # the error names its job
        assert match is not None, caught.value.message
        job_id = match[1]
        code = caught.value.body["code"] if isinstance(caught.value.body, dict) else None
        # A refused prompt is the caller's fault (400); the vendor's own failure is not.
        assert (caught.value.status_code == 400) == (code in ("content_policy_violation", "upstream_rejected")), code
    if outcome in EXPECTED:
        assert code == EXPECTED[outcome]
    else:
        assert code not in EXPECTED.values()

    async def delivered() -> Any:
        return hooks.at(path) or None

    (received,) = await apoll(delivered, timeout=30, interval=0.1, message="webhook delivered")
    assert received.json()["type"] == f"{vendor.kind.value}.failed"
    billing = (await job_of(stack, tenant, job_id))["billing"]
    assert billing["state"] == "released" and not billing["captured"]


@pytest.mark.parametrize("name", list(VENDORS))
async def test_sdk_waits_out_a_429_with_retry_after(
    stack: Stack, tenant: Tenant, add_channel: AddChannel, fake: FakeVendors, name: str
) -> None:
    vendor = VENDORS[name]
    client = await topped_up(stack, tenant)
    model = await channel(add_channel, fake, vendor)
    await listed(client, model)
    route = f"{'mj' if name == 'midjourney' else name}.submit"
    fake.faults[route] = [Fault(429, headers={"retry-after": "1"}, body={"error": {"message": "Too many requests"}})]
    job_id, image = await create(client, vendor, model, "http://127.0.0.1:9/unused")
    if vendor.kind.value == "video":
        assert (await finished_video(client, job_id)).status == "completed"
    else:
        assert image == vendor.result
    assert len(fake.names(route)) == 2
