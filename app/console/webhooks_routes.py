"""Webhooks: the account's endpoints (add, choose events, enable/disable, delete), the signing secret
(reveal once, rotate with an overlap), a test event, and the latest events. Through app.webhooks,
as the API does."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from litestar import Request, Response, get, post

from app.console.pages import redirect, render
from app.console.resources import ConsoleResources, account_id, resources
from app.core.edge import convert
from app.core.errors import GatewayError
from app.core.ids import new_id
from app.core.params import IdPath
from app.core.queue import transaction
from app.core.ssrf import RefusedUrl
from app.jobs.events import DEFAULT_EVENTS, EVENT_TYPES
from app.webhooks import service, signing
from app.webhooks.delivery import USER_AGENT
from app.webhooks.schemas import (
    EndpointCreateBody,
    EndpointUpdateBody,
    endpoint_body,
    endpoint_public,
    secret_public,
)

BACK = "/console/webhooks"
TEST_TIMEOUT_SECONDS = 10.0


async def _page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Response[Any]:
    account = account_id(request)
    async with resources(request).sessionmaker() as session:
        endpoints = [endpoint_public(e) for e in await service.list_endpoints(session, account)]
        secret = secret_public(await signing.describe(session, account))
        events, _ = await service.list_events(session, account, limit=20)
        rendered = await service.render_events(session, events)
    return render(
        request, "webhooks.html", status=status, endpoints=endpoints, secret=secret, events=rendered,
        event_types=sorted(EVENT_TYPES), default_events=DEFAULT_EVENTS, **context,
    )  # fmt: skip


@get("/webhooks")
async def webhooks_page(request: Request[Any, Any, Any]) -> Response[Any]:
    return await _page(request)


@post("/webhooks/endpoints", status_code=303)
async def add_endpoint(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    res = resources(request)
    raw: dict[str, Any] = {"url": str(form.get("url") or "").strip(), "events": form.getall("events") or None}
    if form.get("description"):
        raw["description"] = str(form.get("description"))
    try:
        async with transaction(res.sessionmaker, res.sender) as session:
            endpoint = await service.create_endpoint(
                session, res.url_guard, account_id(request), endpoint_body(convert(raw, EndpointCreateBody))
            )
    except GatewayError as exc:
        return redirect(request, BACK, error=exc.message)
    return redirect(request, BACK, notice=f"Endpoint {endpoint.id} added.")


@post("/webhooks/endpoints/{endpoint_id:str}/status", status_code=303)
async def set_status(request: Request[Any, Any, Any], endpoint_id: IdPath) -> Response[Any]:
    form = await request.form()
    res = resources(request)
    body = endpoint_body(convert({"status": str(form.get("status") or "")}, EndpointUpdateBody))
    async with transaction(res.sessionmaker, res.sender) as session:
        endpoint = await service.update_endpoint(session, res.url_guard, account_id(request), endpoint_id, body)
    return redirect(request, BACK, notice=f"Endpoint {endpoint.id} {endpoint.status}.")


@post("/webhooks/endpoints/{endpoint_id:str}/delete", status_code=303)
async def delete_endpoint(request: Request[Any, Any, Any], endpoint_id: IdPath) -> Response[Any]:
    res = resources(request)
    async with transaction(res.sessionmaker, res.sender) as session:
        await service.delete_endpoint(session, account_id(request), endpoint_id)
    return redirect(request, BACK, notice=f"Endpoint {endpoint_id} deleted.")


@post("/webhooks/secret", status_code=200)
async def reveal_secret(request: Request[Any, Any, Any]) -> Response[Any]:
    res = resources(request)
    try:
        async with transaction(res.sessionmaker, res.sender) as session:
            _, secret = await signing.reveal(session, account_id(request), res.settings.resolved_secret_key())
    except GatewayError as exc:
        return await _page(request, status=exc.status_code, error=exc.message)
    return await _page(request, shown_secret=secret)


@post("/webhooks/secret/rotate", status_code=200)
async def rotate_secret(request: Request[Any, Any, Any]) -> Response[Any]:
    res = resources(request)
    overlap = res.settings.webhook_secret_overlap_seconds
    async with transaction(res.sessionmaker, res.sender) as session:
        _, secret = await signing.rotate(session, account_id(request), res.settings.resolved_secret_key(), overlap)
    return await _page(request, shown_secret=secret, notice=f"Rotated: the old secret keeps signing for {overlap} s.")


async def send_test(res: ConsoleResources, account: str, url: str) -> dict[str, Any]:
    """One signed `webhook.test` POST, now, from this process: to the address the SSRF guard checked
    (the name goes in Host and TLS SNI), as a delivery attempt does. Nothing is stored or retried."""
    event_id = new_id("evt_test_")
    payload = json.dumps(
        {"id": event_id, "object": "event", "type": "webhook.test", "created_at": int(time.time()), "data": {}}
    ).encode()
    async with res.sessionmaker() as session:
        secrets_ = await signing.signing_secrets(session, account, res.settings.resolved_secret_key())
    started = time.monotonic()
    result: dict[str, Any] = {"url": url, "status": None, "error": None, "body": ""}
    try:
        async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
            destination = await res.url_guard.resolve(url)
            timestamp = int(time.time())
            headers = {
                "host": destination.url.host_header,
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                "webhook-id": event_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signing.signature(secrets_, event_id, timestamp, payload),
            }
            async with res.upstream.post(
                destination.url.url_at(destination.address), data=payload, headers=headers,
                server_hostname=destination.url.host, allow_redirects=False,
            ) as answer:  # fmt: skip
                result["status"] = answer.status
                result["body"] = (await answer.content.read(2048)).decode(errors="replace")
    except RefusedUrl as exc:
        result["error"] = f"refused before connecting: {exc}"
    except TimeoutError:
        result["error"] = f"no answer within {TEST_TIMEOUT_SECONDS:g} s"
    except aiohttp.ClientError as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    result["latency_ms"] = int((time.monotonic() - started) * 1000)
    return result


@post("/webhooks/endpoints/{endpoint_id:str}/test", status_code=200)
async def test_endpoint(request: Request[Any, Any, Any], endpoint_id: IdPath) -> Response[Any]:
    res = resources(request)
    account = account_id(request)
    async with res.sessionmaker() as session:
        endpoint = await service.get_endpoint(session, account, endpoint_id)
    return await _page(request, test_result=await send_test(res, account, endpoint.url))


HANDLERS = [webhooks_page, add_endpoint, set_status, delete_endpoint, reveal_secret, rotate_secret, test_endpoint]
