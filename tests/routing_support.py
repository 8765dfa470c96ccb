"""Helpers for the routing tests: models served by several channels, job rows, SSE bodies."""

from __future__ import annotations

import json
from typing import Any

from litestar.testing import AsyncTestClient

from tests.conftest import AddChannel, Tenant, unique_model
from tests.support import apoll

CHAT_PATH = "/v1/chat/completions"
QUIET = {"cooldown_failures": 1000}
"""Channel options keeping a failover test's failures from opening a cooldown."""


async def model_on(
    client: AsyncTestClient[Any], add_channel: AddChannel, *channels: tuple[str, dict[str, Any]], prefix: str = "fo"
) -> str:
    """A fresh model served by each (base_url, add_channel kwargs); waits until the catalog has them all."""
    model = unique_model(prefix)
    for base_url, kwargs in channels:
        await add_channel(base_url, [model], **kwargs)

    def loaded() -> bool:
        routes = client.app.state.resources.catalog.current.routes.get(model) or []
        return len(routes) == len(channels)

    await apoll(loaded, timeout=10, message=f"{len(channels)} routes of {model} in the catalog")
    return model


async def job_of(client: AsyncTestClient[Any], tenant: Tenant, job_id: str) -> dict[str, Any]:
    async def fetch() -> dict[str, Any] | None:
        response = await client.get(f"/v1/jobs/{job_id}", headers=tenant.headers)
        return response.json() if response.status_code == 200 else None

    job: dict[str, Any] = await apoll(fetch, timeout=10, message=f"job {job_id}")
    return job


def sse_events(text: str) -> list[Any]:
    """The data of each SSE event: decoded JSON, or the raw string ('[DONE]')."""
    out: list[Any] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def streamed_text(events: list[Any]) -> str:
    return "".join(
        (choice.get("delta") or {}).get("content") or ""
        for event in events
        if isinstance(event, dict)
        for choice in event.get("choices") or []
    )


def chat_body(model: str, *, stream: bool = False, text: str = "hi") -> dict[str, Any]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}
