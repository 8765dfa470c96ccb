"""The web application: `create_app(settings)` builds it; the lifespan opens the resources.

Served by uvicorn (see Procfile). Every API route is
mounted twice, under `/v1` and at the root, so both `base_url=http://host/v1` (the SDK convention) and
the docs' `https://api.heytoken.ai` + `/embeddings` work.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ASGIApp, ControllerRouterHandler

from app.api.api_docs import openapi_config, with_error_docs
from app.api.api_edge import EdgeRequest, validation_exception_handler
from app.api.deps import add_rate_headers, require_api_key
from app.api.docs_page import docs_asset
from app.api.fastpath import FastPath, Gateway
from app.api.resources import Resources
from app.api.routes.admin import admin_router
from app.api.routes.billing import list_ledger, redeem_code, retrieve_account, retrieve_usage
from app.api.routes.callbacks import vendor_callback
from app.api.routes.catalog import list_models, retrieve_model
from app.api.routes.chat import create_chat_completion
from app.api.routes.embeddings import create_embedding
from app.api.routes.files import download_blob
from app.api.routes.images import create_image, retrieve_image_generation
from app.api.routes.jobs import retrieve_job
from app.api.routes.observability import metrics_handler, metrics_served
from app.api.routes.realtime import PATHS as REALTIME_PATHS
from app.api.routes.realtime import RealtimeSockets, create_client_secret
from app.api.routes.system import healthz, readyz
from app.api.routes.videos import (
    cancel_video,
    create_video,
    create_video_generation,
    delete_video,
    download_video_content,
    list_videos,
    retrieve_video,
)
from app.api.routes.webhooks import HANDLERS as WEBHOOK_HANDLERS
from app.console.router import console_handlers, console_templates
from app.core.errors import GatewayError, gateway_error_handler, http_exception_handler, internal_error_handler
from app.core.logging import configure_logging
from app.core.settings import Settings, get_settings
from app.observability import dump
from app.observability.middleware import ObservabilityMiddleware
from app.webhooks.events import install as install_job_events

API_HANDLERS: list[ControllerRouterHandler] = [
    create_chat_completion,
    create_embedding,
    list_models,
    retrieve_model,
    retrieve_job,
    retrieve_account,
    retrieve_usage,
    list_ledger,
    redeem_code,
    create_image,
    retrieve_image_generation,
    create_video,
    create_video_generation,
    list_videos,
    retrieve_video,
    download_video_content,
    cancel_video,
    delete_video,
    create_client_secret,
    *WEBHOOK_HANDLERS,
]


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings)
    install_job_events()
    metrics = None
    if metrics_served(settings):
        # prometheus-client (~1 MB) is imported only by a process that serves metrics (issue #23).
        from app.observability.metrics import Metrics

        metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        resources = await Resources.open(settings)
        if metrics is not None:
            resources.recorder.observer = metrics.observe_job
        app.state.resources = resources
        # The objects of start-up (modules, the app, the resources) live as long as the process: moved
        # out of the collector's sight, every full collection skips them (measured: ~10 % less CPU
        # per chat request under load). No gc.collect() first: it would add 0.15 s to the start-up.
        gc.freeze()
        loop = asyncio.get_running_loop()
        dump.install(loop)
        try:
            yield
        finally:
            dump.uninstall(loop)
            await realtime.drain()
            await resources.close()

    with_error_docs(API_HANDLERS)
    v1 = Router(path="/v1", route_handlers=API_HANDLERS, before_request=require_api_key)
    extra: list[ControllerRouterHandler] = []
    if metrics is not None:
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        extra.append(metrics_handler(metrics, token))
    if settings.console_enabled:
        extra.extend(console_handlers())
    app = Gateway(
        route_handlers=[v1, admin_router(), healthz, readyz, download_blob, vendor_callback, docs_asset, *extra],
        lifespan=[lifespan],
        exception_handlers={
            GatewayError: gateway_error_handler,
            ValidationException: validation_exception_handler,
            HTTPException: http_exception_handler,
            Exception: internal_error_handler,
        },
        request_class=EdgeRequest,
        request_max_body_size=settings.max_body_bytes,
        logging_config=None,
        before_send=[add_rate_headers],
        openapi_config=openapi_config(),
        template_config=console_templates() if settings.console_enabled else None,
        debug=False,
    )

    def observe(inner: ASGIApp) -> ASGIApp:
        if metrics is None and not settings.overhead_header:
            return inner
        return ObservabilityMiddleware(inner, metrics, settings.overhead_header)

    # Wrapped once around routing rather than given as route middleware: Litestar would then build a
    # middleware stack with an extra exception-handling layer into every route (measured: it cost more
    # than the timing itself).
    app.asgi_handler = observe(app.asgi_handler)
    app.fast = observe(FastPath(app.state, settings.max_body_bytes))
    realtime = RealtimeSockets(app.state)
    if metrics is not None:
        metrics.realtime = realtime.traffic
    app.realtime, app.realtime_paths = realtime, REALTIME_PATHS
    app.unversioned = frozenset(route.path.split("/")[2] for route in v1.routes)
    return app
