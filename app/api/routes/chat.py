"""POST /v1/chat/completions."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.params import JSONBody

from app.api import idempotency
from app.api.api_docs import docs
from app.api.calls import Call, Reply
from app.api.deps import call_of, to_response
from app.cache.policy import CacheMode
from app.chat import cached, service
from app.chat.admission import admit_chat
from app.chat.schemas import ChatCompletion, ChatRequest
from app.core.edge import convert, decode_object
from app.core.errors import InvalidRequest
from app.core.ids import new_id

_encode = msgspec.json.Encoder().encode
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


@post(
    "/chat/completions",
    status_code=200,
    operation_id="createChatCompletion",
    summary="Create a chat completion",
    description="OpenAI's Chat Completions; unknown fields pass through to the upstream. "
    "`stream: true` answers with server-sent events ending in `data: [DONE]`.",
    responses=docs(ChatCompletion, 402, 404, 503),
)
async def create_chat_completion(request: Request[Any, Any, Any], data: JSONBody[ChatRequest]) -> Response[Any]:
    # Documentation of the route: the ASGI edge (app.api.fastpath) serves every POST to this path, from the
    # same `chat_completion`; `data` only gives the OpenAPI document its request body.
    return to_response(await chat_completion(call_of(request), await request.body()))


async def chat_completion(call: Call, raw: bytes) -> Reply:
    body = decode_object(raw)
    request = convert(body, ChatRequest)
    _check(request)
    ctx = service.ChatContext(call.principal, new_id("chatcmpl-"), request, body)
    if request.stream and call.idempotency_key is not None:
        raise InvalidRequest(
            "Idempotency-Key is supported for non-streaming requests only.",
            param="Idempotency-Key",
            code="idempotency_not_supported",
        )
    if call.cache is not None or call.principal.cache_ttl or call.res.cache.policy.chat_defaults:
        ttl = call.principal.cache_ttl
        mode = call.res.cache.policy.mode(
            request.model, call.cache, call.cache_control, embeddings=False, default_ttl=ttl
        )
        if mode is not None:
            return await _cached(call, ctx, mode, len(raw))
    if request.stream:
        await _admit(call, ctx, len(raw))
        route, stream = await service.open_stream(call.res, ctx)
        return Reply(200, b"", {**SSE_HEADERS, "x-request-id": ctx.job_id}, service.relay(call.res, ctx, route, stream))

    async def work() -> idempotency.Outcome:
        await _admit(call, ctx, len(raw))
        completion = await service.complete(call.res, ctx)
        return idempotency.Outcome(200, _encode(completion), {"x-request-id": ctx.job_id}, ctx.job_id)

    return await idempotency.idempotent_reply(call, body, work)


async def _cached(call: Call, ctx: service.ChatContext, mode: CacheMode, body_bytes: int) -> Reply:
    """Through the response cache (app.chat.cached): `x-heytoken-cache` says hit, coalesced or miss."""

    def admit() -> Awaitable[None]:
        return _admit(call, ctx, body_bytes)

    if ctx.request.stream:
        answer = await cached.serve(call.res, ctx, mode, admit, call.set_rate_headers)
        headers = {**SSE_HEADERS, "x-request-id": ctx.job_id, "x-heytoken-cache": answer.status}
        return Reply(200, b"", headers, answer.stream)

    async def work() -> idempotency.Outcome:
        answer = await cached.serve(call.res, ctx, mode, admit, call.set_rate_headers)
        headers = {"x-request-id": ctx.job_id, "x-heytoken-cache": answer.status}
        return idempotency.Outcome(200, _encode(answer.completion), headers, ctx.job_id)

    return await idempotency.idempotent_reply(call, ctx.body, work)


def _check(request: ChatRequest) -> None:
    """What one field's type cannot say."""
    if request.stream_options is not None and not request.stream:
        raise InvalidRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="invalid_value",
        )
    for i, message in enumerate(request.messages):
        if message.content is None and message.role in ("user", "system", "developer"):
            raise InvalidRequest(
                f"Missing required parameter: 'messages[{i}].content'.",
                param=f"messages[{i}].content",
                code="missing_required_parameter",
            )


async def _admit(call: Call, ctx: service.ChatContext, body_bytes: int) -> None:
    admitted = await admit_chat(call.res, ctx, body_bytes)
    ctx.admission, ctx.price = admitted.admission, admitted.price
    call.set_rate_headers(admitted.admission.headers)
