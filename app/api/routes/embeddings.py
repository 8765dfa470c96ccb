"""POST /v1/embeddings (and the docs' alias POST /embeddings)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.params import JSONBody

from app.api.api_docs import docs
from app.api.calls import Call, Reply
from app.api.deps import call_of, to_response
from app.chat.admission import admit_embeddings
from app.core.edge import convert, decode_object
from app.core.ids import new_id
from app.embeddings import cached, service
from app.embeddings.schemas import EmbeddingList, EmbeddingRequest


@post(
    "/embeddings",
    status_code=200,
    operation_id="createEmbedding",
    summary="Create embeddings",
    description="OpenAI's Embeddings API; unknown fields pass through to the upstream.",
    responses=docs(EmbeddingList, 402, 404, 503),
)
async def create_embedding(request: Request[Any, Any, Any], data: JSONBody[EmbeddingRequest]) -> Response[Any]:
    # Documentation of the route: the ASGI edge (app.api.fastpath) serves every POST to this path.
    return to_response(await embedding(call_of(request), await request.body()))


async def embedding(call: Call, raw: bytes) -> Reply:
    body = decode_object(raw)
    request = convert(body, EmbeddingRequest)
    request.check()
    job_id = new_id("emb_")
    if call.cache is not None or call.principal.cache_ttl or call.res.cache.policy.embedding_defaults:
        ttl = call.principal.cache_ttl
        mode = call.res.cache.policy.mode(
            request.model, call.cache, call.cache_control, embeddings=True, default_ttl=ttl
        )
        if mode is not None:
            status, body_out = await cached.serve(
                call.res, call.principal, job_id, request, body, mode, call.set_rate_headers
            )
            return Reply(200, body_out, {"x-request-id": job_id, "x-heytoken-cache": status})
    admitted = await admit_embeddings(call.res, call.principal, job_id, request.model, body["input"])
    call.set_rate_headers(admitted.admission.headers)
    content = await service.embed(call.res, call.principal, job_id, request, body, admitted)
    return Reply(200, content, {"x-request-id": job_id})
