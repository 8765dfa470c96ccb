"""/schema/openapi.json describes the API (bodies, parameters, typed answers, the error envelope, the
bearer schemes), and the docs page at /schema works with the network off."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from tests.support import LiveServer

ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}
# Their answers (a ChatCompletion, a stream, an embeddings list) are the lead's to type (issue 16).
UNTYPED_ANSWERS: set[tuple[str, str]] = set()
BODYLESS = {
    ("post", "/v1/webhooks/secret"),
    ("post", "/v1/videos/{video_id}/cancel"),
    ("post", "/admin/keys/{key_id}/revoke"),
}


@pytest.fixture(scope="module")
async def document(client: AsyncTestClient[Any]) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_every_route_is_documented_once(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert document["openapi"].startswith("3.1")
    for path in ("/v1/videos", "/v1/images/generations", "/v1/ledger", "/v1/webhooks/endpoints", "/admin/accounts"):
        assert path in paths
    assert not [p for p in paths if not p.startswith(("/v1/", "/admin/"))], "only the API, once (no root aliases)"


def test_errors_are_the_openai_envelope(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert set(schemas["ErrorEnvelope"]["required"]) == {"error"}
    assert {"message", "type", "param", "code"} <= set(schemas["ErrorDetail"]["properties"])
    for method, path, op in operations(document):
        errors = {status: r for status, r in op["responses"].items() if int(status) >= 400}
        assert {"400", "401", "500"} <= set(errors), (method, path)
        for status, response in errors.items():
            assert response["content"]["application/json"]["schema"] == ENVELOPE, (method, path, status)
    assert "detail" not in str(document["paths"]), "Litestar's {status_code, detail} is never documented"


def test_bodies_parameters_and_answers_are_typed(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        if method in ("post", "put", "patch") and (method, path) not in BODYLESS:
            assert "requestBody" in op, (method, path)
        documented = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert documented == set(re.findall(r"{(\w+)}", path)), (method, path)
        ok = next(r for status, r in op["responses"].items() if status.startswith(("2", "3")))
        schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
        assert schema.get("type") != "string", (method, path, ok)
        if (method, path) not in UNTYPED_ANSWERS and "content" in ok:
            assert "$ref" in schema, (method, path, ok)


def test_bearer_schemes(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "http", "scheme": "bearer"}
    assert "sk-ht-" in schemes["ApiKey"]["bearerFormat"]
    assert document["security"] == [{"ApiKey": []}]
    for _, path, op in operations(document):
        if path.startswith("/admin/"):
            assert {"AdminToken": []} in op["security"], path


async def test_the_docs_page_loads_everything_from_the_gateway(client: AsyncTestClient[Any]) -> None:
    page = await client.get("/schema")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "SwaggerUIBundle" in html
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert len(assets) >= 3, html
    assert not [a for a in assets if not a.startswith("/")], "nothing from another host (a CDN)"
    assert "cdn." not in html and "unpkg" not in html and "googleapis" not in html
    for asset in assets:
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 500, asset
    assert (await client.get("/static/swagger-ui/swagger-editor-bundle.js")).status_code == 404


def test_the_docs_page_costs_the_web_process_no_imports() -> None:
    """Its files come from swagger-ui-py's package directory, never from importing the package (whose
    __init__ loads Jinja2 and the handlers of other frameworks)."""
    code = "import sys; from app.api.main import create_app; create_app(); print('swagger_ui' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


@pytest.mark.e2e
def test_the_web_process_runs_without_docstrings_and_documents_the_same_api(
    live: LiveServer, document: dict[str, Any]
) -> None:
    """The Procfile runs the web process with `python -OO`: no docstrings or asserts kept in memory (5 MB
    of it under the bench's load, issue #23). Nothing the gateway serves may come from a docstring: the
    OpenAPI document is the same as the one of an app built with them."""
    assert live.proc is not None
    argv = Path(f"/proc/{live.proc.pid}/cmdline").read_bytes().split(b"\0")
    assert b"-OO" in argv, argv
    served = httpx.get(live.url + "/schema/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == document
