"""GET /v1/models and GET /v1/models/{id}: the models the configured channels serve."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from app.api.api_docs import docs
from app.api.deps import resources_of
from app.channels.catalog import ModelInfo
from app.channels.catalog_schemas import ModelList, ModelObject
from app.core.edge import is_clean_id
from app.core.errors import NotFound
from app.core.params import ModelPath


def _model(info: ModelInfo) -> dict[str, Any]:
    return {"id": info.id, "object": "model", "created": info.created, "owned_by": info.owned_by}


@get("/models", operation_id="listModels", responses=docs(ModelList))
async def list_models(request: Request[Any, Any, Any]) -> dict[str, Any]:
    models = resources_of(request).catalog.current.models
    return {"object": "list", "data": [_model(models[k]) for k in sorted(models)]}


@get("/models/{model_id:path}", operation_id="retrieveModel", responses=docs(ModelObject, 404))
async def retrieve_model(request: Request[Any, Any, Any], model_id: ModelPath) -> dict[str, Any]:
    model_id = model_id.lstrip("/")
    catalog = resources_of(request).catalog.current
    info = catalog.models.get(model_id) if is_clean_id(model_id) else None
    if info is None:
        if not is_clean_id(model_id):
            raise NotFound(
                f"The model '{model_id}' does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
        raise catalog.unknown(model_id)
    return _model(info)
