"""The admin API, mounted under /admin. Each domain adds its admin handlers to ADMIN_HANDLERS."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get
from litestar.types import ControllerRouterHandler

from app.api.admin import money, users
from app.api.admin.answers import AdminStatus
from app.api.admin.guards import require_admin_token
from app.api.api_docs import ADMIN_TOKEN, docs, with_error_docs
from app.api.deps import resources_of
from app.api.routes.cache import CACHE_ADMIN_HANDLERS
from app.api.routes.channels import CHANNEL_ADMIN_HANDLERS
from app.channels.cooldowns import public


@get("/status", operation_id="adminStatus", responses=docs(AdminStatus))
async def admin_status(request: Request[Any, Any, Any]) -> dict[str, Any]:
    res = resources_of(request)
    return {
        "object": "admin.status",
        "models": len(res.catalog.current.models),
        "job_log_pending": res.recorder.pending,
        # This process's own copy of the cooldown board (GET /admin/cooldowns reads the shared one).
        "local_cooldowns": [public(channel_id, c) for channel_id, c in sorted(res.cooldowns.entries.items())],
    }


ADMIN_HANDLERS: list[ControllerRouterHandler] = [
    admin_status,
    *money.HANDLERS,
    *CHANNEL_ADMIN_HANDLERS,
    *CACHE_ADMIN_HANDLERS,
    *users.HANDLERS,
]


def admin_router() -> Router:
    with_error_docs(ADMIN_HANDLERS, 404)
    return Router(
        path="/admin",
        route_handlers=ADMIN_HANDLERS,
        guards=[require_admin_token],
        security=[{ADMIN_TOKEN: []}],
    )
