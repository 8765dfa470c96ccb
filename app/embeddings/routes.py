"""POST /v1/embeddings (and the docs' alias POST /embeddings)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from app.admission import admit_embeddings
from app.calls import Call, Reply
from app.deps import call_of, to_response
from app.embeddings import service
from app.embeddings.schemas import validate_embeddings
from app.ids import new_id
from app.validation import parse_json_object


@post("/embeddings", status_code=200, operation_id="createEmbedding")
async def create_embedding(request: Request[Any, Any, Any]) -> Response[Any]:
    return to_response(await embedding(call_of(request), await request.body()))


async def embedding(call: Call, raw: bytes) -> Reply:
    body = parse_json_object(raw)
    params = validate_embeddings(body)
    job_id = new_id("emb_")
    admitted = await admit_embeddings(call.res, call.principal, job_id, params.model, body["input"])
    call.set_rate_headers(admitted.admission.headers)
    content = await service.embed(call.res, call.principal, job_id, params, body, admitted)
    return Reply(200, content, {"x-request-id": job_id})
