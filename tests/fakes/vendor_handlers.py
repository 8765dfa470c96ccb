# ruff: noqa: E501  (vendor answers written out as the vendors document them, one per line)
"""The fake vendors' handlers (tests/fakes/media_vendors.py serves them), one section per vendor, each
in its documented wire format: paths, auth, statuses, results, failures and moderation refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.fakes.media import PNG

if TYPE_CHECKING:
    from tests.fakes.media_vendors import VTask

KLING_ACCESS, KLING_SECRET = "ak-test", "sk-test"


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class VendorHandlers:
    """Mixed into FakeVendors, which holds the tasks and the scenario (`outcome`, `instant`)."""

    tasks: dict[str, VTask]
    outcome: str
    instant: bool
    root: str
    fal_key: Ed25519PrivateKey

    def _new(self, vendor: str, kind: str, model: str = "", callback: str | None = None, **extra: Any) -> str:
        raise NotImplementedError

    def file_url(self, task: VTask, name: str) -> str:
        raise NotImplementedError

    # -- Veo ---------------------------------------------------------------------------------------

    async def veo(self, request: web.Request, body: Any) -> web.StreamResponse:
        if request.headers.get("x-goog-api-key") != "sk-upstream-test":
            return web.json_response(
                {"error": {"code": 403, "message": "API key not valid.", "status": "PERMISSION_DENIED"}}, status=403
            )
        tail = request.match_info["tail"]
        if request.method == "POST" and tail.endswith(":predictLongRunning"):
            model = tail.removeprefix("models/").removesuffix(":predictLongRunning")
            instances = (body or {}).get("instances")
            if not isinstance(instances, list) or not instances or not instances[0].get("prompt"):
                return web.json_response(
                    {
                        "error": {
                            "code": 400,
                            "message": "instances[0].prompt is required",
                            "status": "INVALID_ARGUMENT",
                        }
                    },
                    status=400,
                )
            task_id = self._new("veo", "video", model)
            return web.json_response({"name": f"models/{model}/operations/{task_id}"})
        if tail.startswith("files/"):
            raise web.HTTPFound(self.file_url(self.tasks[tail.split("/")[1].split(":")[0]], "v.mp4"))
        if "/operations/" in tail:
            task_id = tail.rsplit("/", 1)[1]
            task = self.tasks[task_id]
            state = task.step(self.instant)
            if state != "done":
                return web.json_response({"name": tail, "metadata": {}})
            if task.outcome == "fail":
                return web.json_response(
                    {
                        "name": tail,
                        "done": True,
                        "error": {"code": 13, "message": "Internal error while generating.", "status": "INTERNAL"},
                    }
                )
            result: dict[str, Any] = {"generateVideoResponse": {}}
            if task.outcome == "moderated":
                result["generateVideoResponse"] = {
                    "raiMediaFilteredCount": 1,
                    "raiMediaFilteredReasons": ["The prompt violates the usage guidelines."],
                }
            else:
                uri = f"{self.root}/v1beta/files/{task_id}:download?alt=media"
                result["generateVideoResponse"] = {"generatedSamples": [{"video": {"uri": uri}}]}
            return web.json_response(
                {
                    "name": tail,
                    "done": True,
                    "response": {
                        "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                        **result,
                    },
                }
            )
        return web.json_response({"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}, status=404)

    # -- Stability -----------------------------------------------------------------------------------

    async def stability(self, request: web.Request, body: Any) -> web.Response:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return web.json_response({"name": "unauthorized", "errors": ["missing authorization"]}, status=401)
        if not isinstance(body, dict) or not body.get("prompt"):
            return web.json_response({"name": "bad_request", "errors": ["prompt: required"]}, status=400)
        if request.match_info["endpoint"] == "sd3" and not body.get("model", "").startswith("sd3"):
            return web.json_response({"name": "bad_request", "errors": ["model: invalid"]}, status=400)
        if self.outcome == "moderated":
            return web.json_response(
                {
                    "id": "e1",
                    "name": "content_moderation",
                    "errors": ["Your request was flagged by our content moderation system."],
                },
                status=403,
            )
        if self.outcome == "fail":
            return web.json_response(
                {"id": "e2", "name": "bad_request", "errors": ["aspect_ratio: invalid"]}, status=400
            )
        return web.json_response({"image": base64.b64encode(PNG).decode(), "finish_reason": "SUCCESS", "seed": 1})

    # -- BFL -----------------------------------------------------------------------------------------

    async def bfl_submit(self, request: web.Request, body: Any) -> web.Response:
        if request.headers.get("x-key") != "sk-upstream-test":
            return web.json_response({"detail": "Not authenticated"}, status=403)
        task_id = self._new("bfl", "image", request.match_info["model"])
        return web.json_response({"id": task_id, "polling_url": f"{self.root}/bfl/v1/get_result?id={task_id}"})

    async def bfl_poll(self, request: web.Request, body: Any) -> web.Response:
        if request.headers.get("x-key") != "sk-upstream-test":
            return web.json_response({"detail": "Not authenticated"}, status=403)
        task_id = request.query["id"]
        task = self.tasks[task_id]
        state = task.step(self.instant)
        if state != "done":
            return web.json_response(
                {"id": task_id, "status": "Pending", "progress": 0.5 if state == "running" else 0.0}
            )
        status = {"fail": "Error", "moderated": "Content Moderated"}.get(task.outcome, "Ready")
        answer: dict[str, Any] = {"id": task_id, "status": status}
        if status == "Ready":
            answer["result"] = {"sample": self.file_url(task, "sample.png"), "prompt": "p"}
        return web.json_response(answer)

    # -- Replicate -----------------------------------------------------------------------------------

    def _prediction(self, task_id: str, status: str, task: VTask) -> dict[str, Any]:
        prediction: dict[str, Any] = {
            "id": task_id,
            "model": task.model,
            "status": status,
            "output": None,
            "error": None,
        }
        if status == "succeeded":
            name = "out.mp4" if task.kind == "video" else "out.png"
            prediction["output"] = self.file_url(task, name) if task.kind == "video" else [self.file_url(task, name)]
        elif status == "failed":
            prediction["error"] = (
                "NSFW content detected. Try a different prompt."
                if task.outcome == "moderated"
                else "CUDA out of memory."
            )
        return prediction

    async def rep_submit(self, request: web.Request, body: Any) -> web.Response:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return web.json_response({"detail": "Unauthenticated"}, status=401)
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return web.json_response({"detail": "input is required", "status": 422}, status=422)
        model = (
            f"{request.match_info.get('owner')}/{request.match_info.get('name')}"
            if "owner" in request.match_info
            else str(body.get("version"))
        )
        kind = "video" if "video" in model else "image"
        task_id = self._new("replicate", kind, model, body.get("webhook"))
        return web.json_response(self._prediction(task_id, "starting", self.tasks[task_id]), status=201)

    async def rep_poll(self, request: web.Request, body: Any) -> web.Response:
        task_id = request.match_info["id"]
        task = self.tasks[task_id]
        state = task.step(self.instant)
        status = {"queued": "starting", "running": "processing"}.get(state) or (
            "succeeded" if task.outcome in ("ok", "expired") else "failed"
        )
        return web.json_response(self._prediction(task_id, status, task))

    async def rep_cancel(self, request: web.Request, body: Any) -> web.Response:
        task = self.tasks[request.match_info["id"]]
        return web.json_response(self._prediction(request.match_info["id"], "canceled", task))

    # -- fal -----------------------------------------------------------------------------------------

    async def fal_submit(self, request: web.Request, body: Any) -> web.Response:
        if not request.headers.get("authorization", "").startswith("Key "):
            return web.json_response({"detail": "Unauthorized"}, status=401)
        model = request.match_info["model"]
        task_id = self._new("fal", "video" if "video" in model else "image", model, request.query.get("fal_webhook"))
        app = "/".join(model.split("/")[:2])
        base = f"{self.root}/fal/{app}/requests/{task_id}"
        return web.json_response(
            {
                "request_id": task_id,
                "status_url": f"{base}/status",
                "response_url": base,
                "cancel_url": f"{base}/cancel",
                "queue_position": 0,
            }
        )

    async def fal_status(self, request: web.Request, body: Any) -> web.Response:
        task = self.tasks[request.match_info["id"]]
        state = task.step(self.instant)
        status = {"queued": "IN_QUEUE", "running": "IN_PROGRESS"}.get(state, "COMPLETED")
        return web.json_response({"status": status, "request_id": request.match_info["id"], "queue_position": 0})

    async def fal_result(self, request: web.Request, body: Any) -> web.Response:
        task = self.tasks[request.match_info["id"]]
        if task.outcome == "moderated":
            return web.json_response(
                {
                    "detail": [
                        {
                            "type": "content_policy_violation",
                            "msg": "The content could not be processed because it contained material flagged by a content checker.",
                        }
                    ]
                },
                status=422,
            )
        if task.outcome == "fail":
            return web.json_response({"detail": "Internal server error while running the model."}, status=422)
        if task.kind == "video":
            return web.json_response({"video": {"url": self.file_url(task, "v.mp4"), "content_type": "video/mp4"}})
        return web.json_response(
            {
                "images": [
                    {"url": self.file_url(task, "i.png"), "content_type": "image/png", "width": 32, "height": 32}
                ],
                "has_nsfw_concepts": [False],
            }
        )

    # -- Kling ---------------------------------------------------------------------------------------

    def _kling_auth(self, request: web.Request) -> bool:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            header, payload, signature = token.split(".")
        except ValueError:
            return False
        expected = hmac.new(KLING_SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        claims = json.loads(_b64url_decode(payload))
        return (
            hmac.compare_digest(_b64url_decode(signature), expected)
            and json.loads(_b64url_decode(header)) == {"alg": "HS256", "typ": "JWT"}
            and claims["iss"] == KLING_ACCESS
            and claims["nbf"] <= time.time() < claims["exp"]
        )

    async def kling_submit(self, request: web.Request, body: Any) -> web.Response:
        if not self._kling_auth(request):
            return web.json_response(
                {"code": 1004, "message": "Authorization token is invalid", "request_id": "r"}, status=401
            )
        path = f"{request.match_info['a']}/{request.match_info['b']}"
        if path not in ("videos/text2video", "videos/image2video", "images/generations") or not body.get("model_name"):
            return web.json_response(
                {"code": 1201, "message": "Invalid request parameters", "request_id": "r"}, status=400
            )
        if path == "videos/image2video" and not body.get("image"):
            return web.json_response({"code": 1201, "message": "image is required", "request_id": "r"}, status=400)
        if self.outcome == "refused":
            return web.json_response(
                {"code": 1301, "message": "Trigger the content security policy of the platform", "request_id": "r"},
                status=400,
            )
        task_id = self._new(
            "kling",
            "image" if path.startswith("images") else "video",
            body["model_name"],
            body.get("callback_url"),
            path=path,
        )
        return web.json_response(
            {
                "code": 0,
                "message": "SUCCEED",
                "request_id": "r",
                "data": {"task_id": task_id, "task_status": "submitted", "created_at": 1, "updated_at": 1},
            }
        )

    async def kling_poll(self, request: web.Request, body: Any) -> web.Response:
        if not self._kling_auth(request):
            return web.json_response({"code": 1004, "message": "Authorization token is invalid"}, status=401)
        task_id = request.match_info["id"]
        task = self.tasks[task_id]
        state = task.step(self.instant)
        data: dict[str, Any] = {
            "task_id": task_id,
            "task_status": {"queued": "submitted", "running": "processing"}.get(state, "succeed"),
        }
        if state == "done" and task.outcome in ("fail", "moderated"):
            data["task_status"] = "failed"
            data["task_status_msg"] = (
                "Failure to pass the risk control system"
                if task.outcome == "moderated"
                else "Internal error, please retry"
            )
        elif state == "done":
            if task.kind == "image":
                data["task_result"] = {"images": [{"index": 0, "url": self.file_url(task, "k.png")}]}
            else:
                data["task_result"] = {"videos": [{"id": "v1", "url": self.file_url(task, "k.mp4"), "duration": "5"}]}
        return web.json_response({"code": 0, "message": "SUCCEED", "request_id": "r", "data": data})

    # -- midjourney-proxy ----------------------------------------------------------------------------

    async def mj_submit(self, request: web.Request, body: Any) -> web.Response:
        if request.headers.get("mj-api-secret") != "sk-upstream-test":
            return web.json_response({"code": 401, "description": "unauthorized"}, status=401)
        what = request.match_info["what"]
        if what == "imagine":
            if self.outcome == "moderated":
                return web.json_response(
                    {"code": 24, "description": "banned prompt detected", "properties": {"bannedWord": "x"}}
                )
            task_id = self._new(
                "midjourney", "image", "mj", body.get("notifyHook"), action="IMAGINE", prompt=body.get("prompt")
            )
        elif what == "action":
            source = self.tasks.get(str(body.get("taskId")))
            if source is None or not str(body.get("customId", "")).startswith("MJ::JOB::"):
                return web.json_response({"code": 4, "description": "validation error"})
            task_id = self._new("midjourney", "image", "mj", body.get("notifyHook"), action=body["customId"])
        else:
            return web.json_response({"code": 4, "description": "unknown action"}, status=404)
        return web.json_response({"code": 1, "description": "Submit success", "result": task_id, "properties": {}})

    async def mj_fetch(self, request: web.Request, body: Any) -> web.Response:
        task_id = request.match_info["id"]
        task = self.tasks[task_id]
        state = task.step(self.instant)
        status = {"queued": "SUBMITTED", "running": "IN_PROGRESS"}.get(state) or (
            "FAILURE" if task.outcome == "fail" else "SUCCESS"
        )
        answer: dict[str, Any] = {
            "id": task_id,
            "action": "IMAGINE",
            "status": status,
            "progress": {"queued": "0%", "running": "45%"}.get(state, "100%"),
            "failReason": None,
            "imageUrl": None,
            "buttons": [],
        }
        if status == "FAILURE":
            answer["failReason"] = "Discord account timed out"
        if status == "SUCCESS":
            answer["imageUrl"] = self.file_url(task, "grid.png")
            answer["buttons"] = [
                {"customId": f"MJ::JOB::upsample::{i}::hash{task_id}", "label": f"U{i}"} for i in range(1, 5)
            ]
            answer["buttons"] += [
                {"customId": f"MJ::JOB::variation::{i}::hash{task_id}", "label": f"V{i}"} for i in range(1, 5)
            ]
            answer["buttons"].append({"customId": f"MJ::JOB::reroll::0::hash{task_id}::SOLO", "label": "🔄"})
        return web.json_response(answer)
