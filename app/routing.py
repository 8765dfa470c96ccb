"""Which upstream serves a request, and how an upstream failure reads to the client."""

from __future__ import annotations

import math

from app.channels.catalog import Catalog, Route
from app.errors import GatewayError, NotFound, Overloaded, UpstreamFailed
from app.providers.errors import ProviderError, UpstreamRateLimited, UpstreamRejected

# Upstream 4xx statuses that describe the client's own request and are passed through as they are.
PASS_THROUGH = frozenset({400, 404, 409, 413, 415, 422})


def resolve(catalog: Catalog, model: str) -> list[Route]:
    routes = catalog.routes.get(model)
    if not routes:
        raise NotFound(
            f"The model '{model}' does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )
    return routes


class UpstreamClientError(GatewayError):
    """The upstream refused the request itself (a 4xx): its status and error object go to the client."""

    type = "invalid_request_error"


def to_gateway_error(exc: ProviderError, route: Route) -> GatewayError:
    if isinstance(exc, UpstreamRateLimited):
        retry = max(1, math.ceil(exc.retry_after or 1))
        return Overloaded(
            "The model is currently experiencing high traffic. Try again in a few seconds.",
            headers={"retry-after": str(retry), "retry-after-ms": str(retry * 1000)},
        )
    if isinstance(exc, UpstreamRejected) and exc.status in PASS_THROUGH:
        err = exc.error or {}
        out = UpstreamClientError(str(err.get("message") or exc.message), param=err.get("param"), code=err.get("code"))
        out.status_code = exc.status or 400
        if isinstance(err.get("type"), str):
            out.type = err["type"]
        return out
    if isinstance(exc, UpstreamRejected):
        return UpstreamFailed(f"Upstream channel '{route.channel_name}' refused the request ({exc.status}).")
    return UpstreamFailed(f"Upstream provider is temporarily unavailable: {exc.message}")
