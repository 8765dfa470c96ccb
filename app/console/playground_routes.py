"""The playground: chat (streamed), an image and a video, sent from the browser to the same /v1 API
a program calls, with a key of the account's own (made here on request, named "playground", kept in
the tab's sessionStorage and revocable from the keys page like any other)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post

from app.console.pages import render
from app.console.resources import account_id, operations, resources

KEY_NAME = "playground"


def _models(request: Request[Any, Any, Any]) -> list[str]:
    return sorted(resources(request).catalog.current.models)


def _pick(models: list[str], word: str, fallback: str) -> str:
    """The built-in model of that kind when it is served (it costs nothing), else the first that says so."""
    if f"local-{word}" in models:
        return f"local-{word}"
    return next((m for m in models if word in m), fallback)


async def _page(request: Request[Any, Any, Any], **context: Any) -> Response[Any]:
    account_id(request)  # the operator has no playground
    models = _models(request)
    return render(
        request, "playground.html", models=models,
        chat_model=_pick(models, "chat", models[0] if models else ""),
        image_model=_pick(models, "image", ""), video_model=_pick(models, "video", ""), **context,
    )  # fmt: skip


@get("/playground")
async def playground_page(request: Request[Any, Any, Any]) -> Response[Any]:
    return await _page(request)


@post("/playground/key", status_code=200)
async def playground_key(request: Request[Any, Any, Any]) -> Response[Any]:
    _, plaintext = await operations(request).create_key(account_id(request), KEY_NAME)
    return await _page(request, new_key=plaintext)


HANDLERS = [playground_page, playground_key]
