"""A fake media upstream on 127.0.0.1 that follows three vendors' documented wire formats:

- OpenAI Images: `POST /v1/images/generations` → `{"created", "data": [{"b64_json"} | {"url"}]}`;
- OpenAI Videos (Sora): `POST /v1/videos` → Video; `GET /v1/videos/{id}` (queued → in_progress →
  completed); `GET /v1/videos/{id}/content?variant=video|thumbnail`;
- Runway: `POST /v1/text_to_video` → `{"id"}`; `GET /v1/tasks/{id}` (PENDING → RUNNING → SUCCEEDED with
  `output` URLs, or FAILED with `failure`/`failureCode`); `DELETE /v1/tasks/{id}`; needs X-Runway-Version.

Tasks advance one state per poll. `faults` queues error replies per route name ("runway.poll", …),
served before the real answer; `seen` records every request. `hold(name)` stops the next request to a
route until the test releases it, so a test can kill a worker at exactly that step.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from app.providers.local_media import draw_frame, encode_image, render_video

MP4 = render_video("fake upstream video", (64, 64), 1)
WEBP = encode_image(draw_frame("thumb", (64, 64), 0.0), "webp")
PNG = encode_image(draw_frame("fake upstream image", (32, 32), 0.0), "png")


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=lambda: {"error": {"message": "upstream trouble"}})


@dataclass
class Hold:
    """The next request to a route waits here: `arrived` is set when it came, and it is answered (as
    usual) once the test sets `released`."""

    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)


@dataclass
class Task:
    polls: int = 0
    fail: bool = False


class FakeMediaUpstream:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.faults: dict[str, list[Fault]] = {}
        self.holds: dict[str, Hold] = {}
        self.tasks: dict[str, Task] = {}
        self.fail_next = False
        self.image_urls = False
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fake-media")
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p in self.seen if m == method and p.startswith(prefix))

    def hold(self, name: str) -> Hold:
        hold = self.holds[name] = Hold()
        return hold

    def reset(self) -> None:
        for hold in self.holds.values():
            hold.released.set()
        self.holds.clear()
        self.seen.clear()
        self.faults.clear()
        self.fail_next = False
        self.image_urls = False

    def start(self) -> FakeMediaUpstream:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        app = web.Application()
        r = app.router
        r.add_post("/v1/images/generations", self._route("images.create", self.images_create))
        r.add_post("/v1/videos", self._route("sora.create", self.sora_create))
        r.add_get("/v1/videos/{id}", self._route("sora.poll", self.sora_poll))
        r.add_get("/v1/videos/{id}/content", self._route("sora.content", self.sora_content))
        r.add_post("/v1/text_to_video", self._route("runway.create", self.runway_create))
        r.add_get("/v1/tasks/{id}", self._route("runway.poll", self.runway_poll))
        r.add_delete("/v1/tasks/{id}", self._route("runway.cancel", self.runway_cancel))
        r.add_get("/files/{name}", self._route("files", self.files))
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _route(self, name: str, handler: Any) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.seen.append((request.method, request.path))
            hold = self.holds.pop(name, None)
            if hold is not None:
                hold.arrived.set()
                await asyncio.get_running_loop().run_in_executor(None, hold.released.wait, 60)
            queue = self.faults.get(name)
            if queue:
                fault = queue.pop(0)
                return web.json_response(fault.body, status=fault.status, headers=fault.headers)
            response: web.StreamResponse = await handler(request)
            return response

        return handle

    def _new_task(self) -> str:
        task_id = f"task-{next(self._ids)}"
        self.tasks[task_id] = Task(fail=self.fail_next)
        return task_id

    async def images_create(self, request: web.Request) -> web.Response:
        body = await request.json()
        n = int(body.get("n") or 1)
        if self.image_urls:
            data = [{"url": f"http://127.0.0.1:{self.port}/files/image.png"} for _ in range(n)]
        else:
            data = [{"b64_json": base64.b64encode(PNG).decode(), "revised_prompt": "revised"} for _ in range(n)]
        return web.json_response({"created": 1700000000, "data": data})

    async def sora_create(self, request: web.Request) -> web.Response:
        body = await request.json()
        task_id = self._new_task()
        return web.json_response({"id": task_id, "object": "video", "status": "queued", "model": body["model"]})

    async def sora_poll(self, request: web.Request) -> web.Response:
        task = self.tasks[request.match_info["id"]]
        task.polls += 1
        status = {1: "queued", 2: "in_progress"}.get(task.polls, "failed" if task.fail else "completed")
        video: dict[str, Any] = {"id": request.match_info["id"], "object": "video", "status": status, "progress": 50}
        if status == "failed":
            video["error"] = {"code": "moderation_blocked", "message": "Blocked by the fake moderation."}
        return web.json_response(video)

    async def sora_content(self, request: web.Request) -> web.Response:
        if request.query.get("variant") == "thumbnail":
            return web.Response(body=WEBP, content_type="image/webp")
        return web.Response(body=MP4, content_type="video/mp4")

    async def runway_create(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Runway-Version") != "2024-11-06":
            return web.json_response({"error": "X-Runway-Version header is required"}, status=400)
        return web.json_response({"id": self._new_task()})

    async def runway_poll(self, request: web.Request) -> web.Response:
        task = self.tasks[request.match_info["id"]]
        task.polls += 1
        if task.polls == 1:
            return web.json_response({"id": request.match_info["id"], "status": "PENDING"})
        if task.polls == 2:
            return web.json_response({"id": request.match_info["id"], "status": "RUNNING", "progress": 0.4})
        if task.fail:
            return web.json_response(
                {
                    "id": request.match_info["id"],
                    "status": "FAILED",
                    "failure": "Prompt was flagged.",
                    "failureCode": "SAFETY.INPUT.TEXT",
                }
            )
        url = f"http://127.0.0.1:{self.port}/files/out.mp4"
        return web.json_response({"id": request.match_info["id"], "status": "SUCCEEDED", "output": [url]})

    async def runway_cancel(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def files(self, request: web.Request) -> web.Response:
        if request.match_info["name"].endswith(".png"):
            return web.Response(body=PNG, content_type="image/png")
        return web.Response(body=MP4, content_type="video/mp4")
