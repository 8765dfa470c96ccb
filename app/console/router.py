"""The console's routes, templates and static files, mounted by app/api/main.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar import Request, Router, get
from litestar.exceptions import HTTPException
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig, TemplateProtocol
from litestar.types import ControllerRouterHandler

from app.console import (
    auth_routes,
    billing_routes,
    jobs_routes,
    keys_routes,
    operator_channels,
    operator_routes,
    playground_routes,
    team_routes,
    usage_routes,
    webhooks_routes,
)
from app.console.guard import load_session
from app.console.pages import console_error, usd
from app.core.errors import GatewayError

if TYPE_CHECKING:
    from litestar.plugins.jinja import JinjaTemplateEngine

HERE = Path(__file__).parent
PAGES = (
    auth_routes,
    keys_routes,
    billing_routes,
    usage_routes,
    jobs_routes,
    webhooks_routes,
    playground_routes,
    team_routes,
    operator_routes,
    operator_channels,
)


def _with_filters(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters["usd"] = usd
    engine.engine.filters["when"] = when
    engine.engine.filters["unix"] = lambda value: when(dt.datetime.fromtimestamp(value, dt.UTC)) if value else "—"


def when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


class LazyJinja:
    """Litestar's Jinja engine, made on the console's first page: Jinja2 stays out of a web process
    that only serves the API (issue #23, docs/architecture.md "Memory"). Once made, it is kept."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._callables: list[tuple[str, Callable[..., Any]]] = []
        self._engine: JinjaTemplateEngine | None = None

    def _made(self) -> JinjaTemplateEngine:
        engine = self._engine
        if engine is None:
            from litestar.plugins.jinja import JinjaTemplateEngine

            engine = JinjaTemplateEngine(directory=self._directory)
            _with_filters(engine)
            for key, template_callable in self._callables:
                engine.register_template_callable(key, template_callable)
            self._engine = engine
        return engine

    def get_template(self, template_name: str) -> TemplateProtocol:
        return self._made().get_template(template_name)

    def render_string(self, template_string: str, context: Mapping[str, Any]) -> str:
        return self._made().render_string(template_string, context)

    def register_template_callable(self, key: str, template_callable: Callable[..., Any]) -> None:
        if self._engine is not None:
            self._engine.register_template_callable(key, template_callable)
        else:
            self._callables.append((key, template_callable))


def console_templates() -> TemplateConfig[LazyJinja]:
    return TemplateConfig(instance=LazyJinja(HERE / "templates"))


@get(["/", "/dashboard", "/billing"], include_in_schema=False)
async def to_console(request: Request[Any, Any, Any]) -> Redirect:
    """The docs send people to "the dashboard" and "the Billing section"."""
    target = "/console/billing" if request.url.path == "/billing" else "/console/"
    return Redirect(path=target, status_code=302)


def console_handlers() -> list[ControllerRouterHandler]:
    router = Router(
        path="/console",
        route_handlers=[handler for module in PAGES for handler in module.HANDLERS],
        before_request=load_session,
        exception_handlers={GatewayError: console_error, HTTPException: console_error, Exception: console_error},
        include_in_schema=False,
    )
    static = create_static_files_router(
        path="/console/static", directories=[HERE / "static"], include_in_schema=False, send_as_attachment=False
    )
    return [router, static, to_console]
