"""GET /metrics: the Prometheus text format, optionally behind its own bearer token."""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, get

from app.api.deps import resources_of
from app.core.errors import AuthenticationFailed
from app.core.settings import Settings

if TYPE_CHECKING:
    from app.observability.metrics import Metrics

log = logging.getLogger("heytoken.metrics")


def metrics_served(settings: Settings) -> bool:
    """Whether this process counts and serves metrics. In production /metrics sits on the public API
    port, where it would tell anyone the models, channels, error rates and traffic of every customer:
    so there it needs `metrics_token`, and without one it is not served (a WARNING says so)."""
    if not settings.metrics_enabled:
        return False
    if settings.env == "production" and settings.metrics_token is None:
        log.warning(
            "metrics.not_served: HEYTOKEN_ENV=production and no HEYTOKEN_METRICS_TOKEN, so GET /metrics is off; "
            "set the token (Prometheus: authorization: credentials) to serve it, or HEYTOKEN_METRICS_ENABLED=false"
        )
        return False
    return True


def metrics_handler(metrics: Metrics, token: str | None) -> Any:
    # prometheus-client is imported only by a process that serves metrics (issue #23).
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

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
