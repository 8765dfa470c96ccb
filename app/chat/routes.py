"""POST /v1/chat/completions."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, post

from app.admission import admit_chat
from app.chat import service
from app.chat.schemas import validate_chat
from app.deps import principal_of, resources_of, set_rate_headers
from app.errors import InvalidRequest
from app.idempotency import service as idempotency
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
    key = request.headers.get(idempotency.HEADER)
    if params.stream:
        if key is not None:
            raise InvalidRequest(
                "Idempotency-Key is supported for non-streaming requests only.",
                param="Idempotency-Key",
                code="idempotency_not_supported",
            )
        await _admit(request, ctx)
        route, stream = await service.open_stream(res, ctx, body)
        return ClosingStream(
            service.relay(res, ctx, route, stream),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, "x-request-id": ctx.job_id},
        )

    async def work() -> idempotency.Outcome:
        await _admit(request, ctx)
        completion = await service.complete(res, ctx, body)
        return idempotency.Outcome(200, _encode(completion), {"x-request-id": ctx.job_id}, ctx.job_id)

    return await idempotency.idempotent_response(request, body, work)


async def _admit(request: Request[Any, Any, Any], ctx: service.ChatContext) -> None:
    admitted = await admit_chat(resources_of(request), ctx.principal, ctx.job_id, ctx.params)
    ctx.admission, ctx.price = admitted.admission, admitted.price
    set_rate_headers(request, admitted.admission.headers)
