"""POST /v1/chat/completions."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, post

from app.chat import service
from app.chat.schemas import validate_chat
from app.deps import principal_of, resources_of
from app.ids import new_id
from app.streaming import ClosingStream
from app.validation import parse_json_object

_encode = msgspec.json.Encoder().encode
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


@post("/chat/completions", status_code=200, operation_id="createChatCompletion")
async def create_chat_completion(request: Request[Any, Any, Any]) -> Response[Any]:
    res = resources_of(request)
    body = parse_json_object(await request.body())
    params = validate_chat(body)
    ctx = service.ChatContext(principal_of(request), new_id("chatcmpl-"), params)
    if params.stream:
        route, stream = await service.open_stream(res, ctx, body)
        return ClosingStream(
            service.relay(res, ctx, route, stream),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, "x-request-id": ctx.job_id},
        )
    completion = await service.complete(res, ctx, body)
    return Response(content=_encode(completion), media_type="application/json", headers={"x-request-id": ctx.job_id})
