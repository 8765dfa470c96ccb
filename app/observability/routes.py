"""GET /metrics: the Prometheus text format, optionally behind its own bearer token."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.deps import resources_of
from app.errors import AuthenticationFailed
from app.observability.metrics import Metrics


def metrics_handler(metrics: Metrics, token: str | None) -> Any:
    expected = f"Bearer {token}".encode() if token else None

    @get("/metrics", operation_id="metrics", include_in_schema=False)
    async def scrape(request: Request[Any, Any, Any]) -> Response[bytes]:
        if expected is not None:
            given = (request.headers.get("authorization") or "").encode()
            if not hmac.compare_digest(given, expected):
                raise AuthenticationFailed("GET /metrics needs 'Authorization: Bearer <HEYTOKEN_METRICS_TOKEN>'.")
        await metrics.refresh(resources_of(request))
        return Response(content=generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return scrape
