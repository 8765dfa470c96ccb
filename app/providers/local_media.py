"""The built-in `local` provider's images and videos: real files, no network, simulated waiting.

A task id carries its submit time, so any worker process can answer a poll (no state in memory): the
task sits in a pretend queue for `queue_seconds`, renders for `render_seconds` (progress rising), then
succeeds. The files are made when they are downloaded: a PNG (or JPEG/WebP) drawn from the prompt with
Pillow, and an H.264 MP4 encoded with PyAV (its wheels bundle libx264) plus a WebP thumbnail. The
`tiny` profile (setting `local_media_tiny`) makes every file 16×16 and every video one frame a second,
each drawn once per shape and reused, so a benchmark of the job queue measures the queue, not the
encoder.

Pillow and PyAV are imported where a file is drawn, not at module import: the web process imports this
module (model names, the provider registry) but never renders, and would carry both libraries for nothing.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from app.channels.names import IMAGE_MODEL, VIDEO_MODEL
from app.core.upstream_errors import UpstreamRejected
from app.providers.base import Download, MediaRequest, Output, Submission, TaskState, TaskStatus

if TYPE_CHECKING:
    from PIL.Image import Image as Picture

    from app.channels.catalog import Route

MEDIA_MODELS = {IMAGE_MODEL: "image", VIDEO_MODEL: "video"}
FPS = 24
IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
CHUNK = 256 * 1024
TINY_SIZE = (16, 16)
TINY_FPS = 1
TINY_PROMPT = "tiny"


class LocalMediaProvider:
    def __init__(self, queue_seconds: float = 0.0, render_seconds: float = 0.0, tiny: bool = False) -> None:
        self._queue = queue_seconds
        self._render = render_seconds
        self._tiny = tiny

    def min_poll_seconds(self, route: Route) -> float:
        return 0.0

    async def submit(self, route: Route, request: MediaRequest) -> Submission:
        if MEDIA_MODELS.get(request.model) != request.kind:
            raise UpstreamRejected(
                f"{request.model} cannot make {request.kind}s.",
                status=400,
                error={"message": f"{request.model} does not support {request.kind} generation.", "param": "model"},
            )
        if not self._queue and not self._render:
            # Nothing to pretend: answer with the result, as OpenAI images does, so the job is drawn
            # and stored in its submit step (one step, no poll, no store message; issue #23).
            return Submission(task_id=None, outputs=self.outputs(request))
        # First look when the pretend queue is over (at once when there is none), so progress shows.
        return Submission(task_id=f"local-{time.time_ns()}", poll_after=self._queue)

    async def poll(self, route: Route, task_id: str, request: MediaRequest) -> TaskStatus:
        started = int(task_id.removeprefix("local-")) / 1e9
        elapsed = time.time() - started
        if elapsed < self._queue:
            return TaskStatus(TaskState.QUEUED, progress=0)
        rendered = elapsed - self._queue
        if rendered < self._render:
            return TaskStatus(TaskState.RUNNING, progress=min(99, int(100 * rendered / self._render)))
        return TaskStatus(TaskState.SUCCEEDED, progress=100, outputs=self.outputs(request))

    @staticmethod
    def outputs(request: MediaRequest) -> list[Output]:
        if request.kind == "video":
            return [Output("video", content_type="video/mp4"), Output("thumbnail", content_type="image/webp")]
        content_type = IMAGE_TYPES.get(request.output_format, "image/png")
        return [Output("image", index=i, content_type=content_type) for i in range(request.n)]

    @asynccontextmanager
    async def download(
        self, route: Route, task_id: str | None, request: MediaRequest, output: Output
    ) -> AsyncIterator[Download]:
        if self._tiny:
            data = render(request, output, tiny=True)  # drawn once per shape, then a cache hit
        else:
            # Encoding is CPU work: a thread keeps the worker's event loop (other jobs' polls) responsive.
            data = await asyncio.to_thread(render, request, output, self._tiny)
        yield Download(output.content_type or "application/octet-stream", _chunks(data))

    async def cancel(self, route: Route, task_id: str) -> None:
        return None


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


def parse_size(size: str | None, default: tuple[int, int]) -> tuple[int, int]:
    if not size or size == "auto":
        return default
    width, _, height = size.partition("x")
    return int(width), int(height)


def render(request: MediaRequest, output: Output, tiny: bool = False) -> bytes:
    if tiny:
        # The tiny profile measures the job queue, not the encoder: its files are drawn once per shape
        # and reused (an H.264 encoder's start-up alone cost ~2.5 ms of CPU per video; issue #23).
        return _tiny_file(output.variant, request.seconds or 4, request.output_format)
    video_size = parse_size(request.size, (720, 1280))
    if output.variant == "video":
        return render_video(request.prompt, video_size, request.seconds or 4, FPS)
    if output.variant == "thumbnail":
        return encode_image(draw_frame(request.prompt, video_size, 0.0), "webp")
    size = parse_size(request.size, (1024, 1024))
    image = draw_frame(f"{request.prompt}", size, output.index / max(1, request.n))
    return encode_image(image, request.output_format)


@functools.lru_cache(maxsize=64)
def _tiny_file(variant: str, seconds: int, output_format: str) -> bytes:
    if variant == "video":
        return render_video(TINY_PROMPT, TINY_SIZE, seconds, TINY_FPS)
    return encode_image(draw_frame(TINY_PROMPT, TINY_SIZE, 0.0), "webp" if variant == "thumbnail" else output_format)


def _palette(prompt: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    digest = hashlib.sha256(prompt.encode()).digest()
    return (digest[0], digest[1], digest[2]), (255 - digest[0], 255 - digest[1], 255 - digest[2])


def draw_frame(prompt: str, size: tuple[int, int], phase: float) -> Picture:
    """A deterministic picture of the prompt: a colour field picked from its hash, the text on top,
    and a bar whose position shows `phase` (0..1) so successive video frames differ."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = size
    background, foreground = _palette(prompt)
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    font_size = max(12, min(width, height) // 16)
    font = ImageFont.load_default(size=font_size)
    lines = textwrap.wrap(prompt, width=max(8, int(width / (font_size * 0.6))))[:8]
    draw.multiline_text((width // 16, height // 8), "\n".join(lines), fill=foreground, font=font)
    bar_x = int(phase * (width - width // 8))
    draw.rectangle((bar_x, height - height // 10, bar_x + width // 8, height - height // 20), fill=foreground)
    return image


def encode_image(image: Picture, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format={"jpeg": "JPEG", "webp": "WEBP"}.get(fmt, "PNG"))
    return buffer.getvalue()


def render_video(prompt: str, size: tuple[int, int], seconds: int, fps: int = FPS) -> bytes:
    """An H.264 MP4 (yuv420p, `fps` frames a second) lasting exactly `seconds`."""
    import av
    from PIL import ImageDraw

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "tune": "stillimage"})
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        total = seconds * fps
        base = draw_frame(prompt, size, 0.0)
        _, foreground = _palette(prompt)
        width, height = size
        for index in range(total):
            image = base.copy()
            bar_x = int(index / total * (width - width // 8))
            ImageDraw.Draw(image).rectangle(
                (bar_x, height - height // 10, bar_x + width // 8, height - height // 20), fill=foreground
            )
            frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()
