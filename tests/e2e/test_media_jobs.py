"""The OpenAI SDK's videos and images calls end to end: gateway and worker processes started as the
Procfile starts them, the real Redis broker, and results kept in local storage or in S3 (moto)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import av
import boto3
import httpx
import pytest
from openai import AsyncOpenAI
from PIL import Image

from app.core.settings import Settings
from tests.conftest import Tenant
from tests.e2e.conftest import FAST
from tests.support import LiveServer, WorkerProcess, apoll

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@dataclass
class Stack:
    url: str
    name: str


@pytest.fixture(scope="module")
def local_stack(live: LiveServer, worker: WorkerProcess) -> Stack:
    return Stack(live.url, "local")


@pytest.fixture(scope="module")
def s3_stack(settings: Settings, moto_s3: str) -> Iterator[Stack]:
    bucket = f"ht-test-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client(
        "s3", endpoint_url=moto_s3, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    s3.create_bucket(Bucket=bucket)
    s3_settings = settings.model_copy(
        update={
            "storage_url": f"s3://{bucket}/results",
            "s3_endpoint_url": moto_s3,
            "s3_access_key_id": "t",
            "s3_secret_access_key": "t",
            # Its own queues: this stack's worker must not take the other stack's jobs.
            "redis_prefix": f"{settings.redis_prefix}s3:",
        }
    )
    web = LiveServer(s3_settings).start()
    worker = WorkerProcess(s3_settings, **FAST).start()
    yield Stack(web.url, "s3")
    worker.stop()
    web.stop()


@pytest.fixture(params=["local", "s3"])
def stack(request: pytest.FixtureRequest) -> Stack:
    stack: Stack = request.getfixturevalue(f"{request.param}_stack")
    return stack


def sdk(stack: Stack, tenant: Tenant) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=tenant.key, base_url=f"{stack.url}/v1", max_retries=0)


async def test_sdk_video_create_retrieve_list_download(stack: Stack, tenant: Tenant) -> None:
    client = sdk(stack, tenant)
    video = await client.videos.create(
        model="local-video",
        prompt="A calico cat playing a piano on stage",
        seconds="4",
        size="1280x720",
        extra_body={"metadata": {"order": "A-17"}, "webhook_url": "http://127.0.0.1:9/hook"},
    )
    assert video.status == "queued" and video.seconds == "4" and video.size == "1280x720"
    assert video.model_extra == {"metadata": {"order": "A-17"}, "webhook_url": "http://127.0.0.1:9/hook"}

    async def finished():
        current = await client.videos.retrieve(video.id)
        return current if current.status not in ("queued", "in_progress") else None

    done = await apoll(finished, timeout=60, interval=0.2, message="video completed")
    assert done.status == "completed" and done.progress == 100 and done.error is None
    assert done.completed_at and done.expires_at and done.expires_at > done.completed_at
    listed = [v.id async for v in client.videos.list(limit=10)]
    assert video.id in listed

    content = await client.videos.download_content(video.id)
    data = content.read()
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (1280, 720)
        assert container.duration is not None and abs(container.duration / 1e6 - 4.0) < 0.1
        assert sum(1 for _ in container.decode(stream)) == 4 * 24
    thumbnail = (await client.videos.download_content(video.id, variant="thumbnail")).read()
    assert Image.open(io.BytesIO(thumbnail)).format == "WEBP"


async def test_sdk_images_generate_url_and_b64(stack: Stack, tenant: Tenant) -> None:
    client = sdk(stack, tenant)
    as_b64 = await client.images.generate(
        model="local-image", prompt="a red fox in snow", size="512x512", response_format="b64_json"
    )
    import base64

    png = base64.b64decode(as_b64.data[0].b64_json or "")
    assert Image.open(io.BytesIO(png)).size == (512, 512)

    as_url = await client.images.generate(model="local-image", prompt="a red fox", size="256x256", n=2)
    assert len(as_url.data) == 2
    async with httpx.AsyncClient() as http:
        for item in as_url.data:
            assert item.url is not None
            answer = await http.get(item.url)
            assert answer.status_code == 200, answer.text
            image = Image.open(io.BytesIO(answer.content))
            assert (image.format, image.size) == ("PNG", (256, 256))
