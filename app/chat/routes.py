"""POST /v1/chat/completions."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, post

from app.admission import admit_chat
from app.calls import Call, Reply
from app.chat import service
from app.chat.schemas import validate_chat
from app.deps import call_of, to_response
from app.errors import InvalidRequest
from app.idempotency import service as idempotency
from app.ids import new_id
from app.validation import parse_json_object

_encode = msgspec.json.Encoder().encode
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


@post("/chat/completions", status_code=200, operation_id="createChatCompletion")
async def create_chat_completion(request: Request[Any, Any, Any]) -> Response[Any]:
    return to_response(await chat_completion(call_of(request), await request.body()))


async def chat_completion(call: Call, raw: bytes) -> Reply:
    body = parse_json_object(raw)
    params = validate_chat(body)
    ctx = service.ChatContext(call.principal, new_id("chatcmpl-"), params)
    if params.stream:
        if call.idempotency_key is not None:
            raise InvalidRequest(
                "Idempotency-Key is supported for non-streaming requests only.",
                param="Idempotency-Key",
                code="idempotency_not_supported",
            )
        await _admit(call, ctx)
        route, stream = await service.open_stream(call.res, ctx, body)
        return Reply(200, b"", {**SSE_HEADERS, "x-request-id": ctx.job_id}, service.relay(call.res, ctx, route, stream))

    async def work() -> idempotency.Outcome:
        await _admit(call, ctx)
        completion = await service.complete(call.res, ctx, body)
        return idempotency.Outcome(200, _encode(completion), {"x-request-id": ctx.job_id}, ctx.job_id)

    return await idempotency.idempotent_reply(call, body, work)


async def _admit(call: Call, ctx: service.ChatContext) -> None:
    admitted = await admit_chat(call.res, ctx.principal, ctx.job_id, ctx.params)
    ctx.admission, ctx.price = admitted.admission, admitted.price
    call.set_rate_headers(admitted.admission.headers)
