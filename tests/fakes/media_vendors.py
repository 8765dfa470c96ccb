"""One fake server on 127.0.0.1 for the media vendors of issue #21, each under its own base URL and in
its documented wire format (see each adapter's docstring in app/providers/; the handlers are in
tests/fakes/vendor_handlers.py):

    Veo (Gemini API)   /v1beta            predictLongRunning → operation → files/{id}:download
    Stability          /stability         v2beta/stable-image/generate/{sd3|core|ultra} (multipart)
    BFL (Flux)         /bfl/v1            /{model} → polling_url → get_result
    Replicate          /replicate/v1      predictions (+ signed Standard Webhooks callbacks)
    fal                /fal               queue: submit → requests/{id}/status → requests/{id} (+ ED25519 callbacks)
    Kling              /kling             /v1/videos/text2video|image2video, /v1/images/generations (JWT)
    midjourney-proxy   /mj-proxy          /mj/submit/imagine|action, /mj/task/{id}/fetch (+ notifyHook)

Tasks advance one state per poll (queued → running → done). `outcome` decides how the next tasks end:
"ok", "fail", "moderated" or "expired" (a result link that answers 403). `faults[name]` queues error
replies per route name ("veo.submit", "kling.poll", …). With `instant`, a task is done at once and,
with `send_callbacks`, the vendor's callback is posted to the URL the gateway gave it (signed as the
vendor signs). `seen` records (route name, headers, body) of every request.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.fakes.media import MP4, PNG, Fault
from tests.fakes.vendor_handlers import VendorHandlers

REPLICATE_SECRET = "whsec_" + base64.b64encode(b"replicate-test-signing-key-32byt").decode()


@dataclass
class VTask:
    vendor: str
    kind: str
    outcome: str
    model: str = ""
    polls: int = 0
    callback: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def step(self, instant: bool) -> str:
        """'queued', 'running' or 'done' after this poll."""
        self.polls += 1
        if instant:
            return "done"
        return {1: "queued", 2: "running"}.get(self.polls, "done")


class FakeVendors(VendorHandlers):
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str], Any]] = []
        self.faults: dict[str, list[Fault]] = {}
        self.tasks: dict[str, VTask] = {}
        self.outcome = "ok"
        self.instant = False
        self.send_callbacks = False
        self.callbacks_sent: list[tuple[str, int]] = []
        self.fal_key = Ed25519PrivateKey.generate()
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fake-vendors")
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- plumbing ----------------------------------------------------------------------------------

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def base_url(self, vendor: str) -> str:
        return (
            self.root
            + {
                "veo": "/v1beta",
                "stability": "/stability",
                "bfl": "/bfl/v1",
                "replicate": "/replicate/v1",
                "fal": "/fal",
                "kling": "/kling",
                "midjourney": "/mj-proxy",
            }[vendor]
        )

    def names(self, prefix: str) -> list[str]:
        return [name for name, _, _ in self.seen if name.startswith(prefix)]

    def reset(self) -> None:
        self.seen.clear()
        self.faults.clear()
        self.callbacks_sent.clear()
        self.outcome = "ok"
        self.instant = False
        self.send_callbacks = False

    def start(self) -> FakeVendors:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        r = app.router
        r.add_route("*", "/v1beta/{tail:.*}", self._route("veo", self.veo))
        r.add_post(
            "/stability/v2beta/stable-image/generate/{endpoint}", self._route("stability.submit", self.stability)
        )
        r.add_get("/bfl/v1/get_result", self._route("bfl.poll", self.bfl_poll))
        r.add_post("/bfl/v1/{model}", self._route("bfl.submit", self.bfl_submit))
        r.add_post("/replicate/v1/models/{owner}/{name}/predictions", self._route("replicate.submit", self.rep_submit))
        r.add_post("/replicate/v1/predictions", self._route("replicate.submit", self.rep_submit))
        r.add_get("/replicate/v1/predictions/{id}", self._route("replicate.poll", self.rep_poll))
        r.add_post("/replicate/v1/predictions/{id}/cancel", self._route("replicate.cancel", self.rep_cancel))
        r.add_get("/fal/jwks", self.fal_jwks)
        r.add_get("/fal/{owner}/{app}/requests/{id}/status", self._route("fal.poll", self.fal_status))
        r.add_get("/fal/{owner}/{app}/requests/{id}", self._route("fal.result", self.fal_result))
        r.add_post("/fal/{model:.+}", self._route("fal.submit", self.fal_submit))
        r.add_post("/kling/v1/{a}/{b}", self._route("kling.submit", self.kling_submit))
        r.add_get("/kling/v1/{a}/{b}/{id}", self._route("kling.poll", self.kling_poll))
        r.add_post("/mj-proxy/mj/submit/{what}", self._route("mj.submit", self.mj_submit))
        r.add_get("/mj-proxy/mj/task/{id}/fetch", self._route("mj.poll", self.mj_fetch))
        r.add_get("/files/{name}", self.files)
        r.add_get("/expired/{name}", self.expired)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _route(self, name: str, handler: Any) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            label = name
            if name == "veo":
                label = "veo.submit" if request.method == "POST" else "veo.poll"
                label = "veo.file" if "/files/" in request.path else label
            body: Any = None
            if request.content_type == "application/json":
                body = await request.json()
            elif request.content_type.startswith("multipart/"):
                body = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
            self.seen.append((label, dict(request.headers), body))
            queue = self.faults.get(label)
            if queue:
                fault = queue.pop(0)
                return web.json_response(fault.body, status=fault.status, headers=fault.headers)
            response: web.StreamResponse = await handler(request, body)
            return response

        return handle

    def _new(self, vendor: str, kind: str, model: str = "", callback: str | None = None, **extra: Any) -> str:
        task_id = f"{vendor}-{next(self._ids)}"
        self.tasks[task_id] = VTask(vendor, kind, self.outcome, model, callback=callback, extra=extra)
        if self.instant and self.send_callbacks and callback:
            asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(self._callback(task_id)))
        return task_id

    def file_url(self, task: VTask, name: str) -> str:
        return f"{self.root}/{'expired' if task.outcome == 'expired' else 'files'}/{name}"

    async def files(self, request: web.Request) -> web.Response:
        if request.match_info["name"].endswith(".png"):
            return web.Response(body=PNG, content_type="image/png")
        return web.Response(body=MP4, content_type="video/mp4")

    async def expired(self, request: web.Request) -> web.Response:
        return web.Response(status=403, body=b"<Error><Code>AccessDenied</Code>Request has expired</Error>")

    # -- callbacks, signed as each vendor signs ------------------------------------------------------

    def signed_callback(self, task_id: str, *, forge: bool = False) -> tuple[dict[str, str], bytes]:
        task = self.tasks[task_id]
        now = str(int(time.time()))
        if task.vendor == "replicate":
            body = json.dumps({"id": task_id, "status": "succeeded", "output": [self.file_url(task, "o.png")]}).encode()
            key = base64.b64decode(REPLICATE_SECRET.removeprefix("whsec_"))
            msg_id = f"msg_{task_id}"
            sig = base64.b64encode(hmac.new(key, f"{msg_id}.{now}.".encode() + body, hashlib.sha256).digest()).decode()
            if forge:
                sig = base64.b64encode(b"x" * 32).decode()
            headers = {"webhook-id": msg_id, "webhook-timestamp": now, "webhook-signature": f"v1,{sig}"}
            return headers, body
        if task.vendor == "fal":
            body = json.dumps({"request_id": task_id, "status": "OK", "payload": {}}).encode()
            headers = {
                "x-fal-webhook-request-id": task_id,
                "x-fal-webhook-user-id": "user-1",
                "x-fal-webhook-timestamp": now,
            }
            message = "\n".join([task_id, "user-1", now, hashlib.sha256(body).hexdigest()]).encode()
            signer = Ed25519PrivateKey.generate() if forge else self.fal_key
            headers["x-fal-webhook-signature"] = signer.sign(message).hex()
            return headers, body
        if task.vendor == "kling":
            body = json.dumps({"task_id": task_id, "task_status": "succeed"}).encode()
        else:
            body = json.dumps({"id": task_id, "status": "SUCCESS", "progress": "100%"}).encode()
        return {}, body

    async def _callback(self, task_id: str) -> None:
        task = self.tasks[task_id]
        headers, body = self.signed_callback(task_id)
        # Like the vendors, a callback not answered 2xx is tried again (a few times, a moment apart).
        async with httpx.AsyncClient() as client:
            for _ in range(20):
                try:
                    answer = await client.post(
                        str(task.callback), content=body, headers={**headers, "content-type": "application/json"}
                    )
                    status = answer.status_code
                except httpx.HTTPError:
                    status = 0
                self.callbacks_sent.append((task_id, status))
                if 200 <= status < 300 or status in (401, 404):
                    return
                await asyncio.sleep(0.25)

    async def fal_jwks(self, request: web.Request) -> web.Response:
        raw = self.fal_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return web.json_response({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1"}]})
