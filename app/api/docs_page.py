"""The docs page at /schema (Swagger UI), served with the network off: its JavaScript, CSS and icon
come from the `swagger-ui-py` wheel's static files (Swagger UI 5, which reads OpenAPI 3.1), served by
this app under ASSETS_PATH, never from a CDN (Litestar's default)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from litestar import get
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin, SwaggerRenderPlugin
from litestar.params import FromPath
from litestar.response import File

from app.core.errors import NotFound

ASSETS_PATH = "/static/swagger-ui"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css", "favicon-32x32.png")


def _static_dir() -> Path:
    # Found, not imported: the package's __init__ loads Jinja2, PyYAML and urllib (62 ms, for handlers of
    # other frameworks); only its files are used.
    spec = importlib.util.find_spec("swagger_ui")
    assert spec is not None and spec.submodule_search_locations, "swagger-ui-py is not installed"
    return Path(next(iter(spec.submodule_search_locations))) / "static"


_STATIC = _static_dir()


def render_plugins() -> list[OpenAPIRenderPlugin]:
    return [
        SwaggerRenderPlugin(
            path=["/", "/swagger"],
            js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            css_url=f"{ASSETS_PATH}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
        )
    ]


_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png"}


@get(f"{ASSETS_PATH}/{{name:str}}", include_in_schema=False, cache_control=CacheControlHeader(max_age=86_400))
async def docs_asset(name: FromPath[str]) -> File:
    """Only the files the page loads (the wheel also ships Swagger Editor, which is not served)."""
    if name not in ASSETS:
        raise NotFound(f"Unknown path: {ASSETS_PATH}/{name}", code="not_found")
    return File(_STATIC / name, media_type=_TYPES[Path(name).suffix], content_disposition_type="inline")
