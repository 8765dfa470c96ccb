"""POST /v1/embeddings (and the docs' alias POST /embeddings)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from app.admission import admit_embeddings
from app.deps import principal_of, resources_of, set_rate_headers
from app.embeddings import service
from app.embeddings.schemas import validate_embeddings
from app.ids import new_id
from app.validation import parse_json_object


@post("/embeddings", status_code=200, operation_id="createEmbedding")
async def create_embedding(request: Request[Any, Any, Any]) -> Response[bytes]:
    body = parse_json_object(await request.body())
    params = validate_embeddings(body)
    job_id = new_id("emb_")
    res, principal = resources_of(request), principal_of(request)
    admitted = await admit_embeddings(res, principal, job_id, params.model, body["input"])
    set_rate_headers(request, admitted.admission.headers)
    content = await service.embed(res, principal, job_id, params, body, admitted)
    return Response(content=content, media_type="application/json", headers={"x-request-id": job_id})
