"""A local mock of the two Stripe endpoints the console uses, on 127.0.0.1 in its own thread.

- `POST /v1/checkout/sessions` (Stripe's API, form-encoded, Bearer secret key) answers a Checkout
  Session whose `url` is this server's own checkout page.
- The checkout page (`GET /c/<id>`) has a "Pay" button; paying (`POST /c/<id>`) sends Stripe's
  signed `checkout.session.completed` event to `webhook_url` — `deliveries` times, to play Stripe
  delivering one event more than once — and redirects the browser to the session's `success_url`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from typing import Any

import aiohttp
from aiohttp import web

SECRET_KEY = "sk_test_console_mock"
WEBHOOK_SECRET = "whsec_console_mock_secret"


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    t = str(timestamp if timestamp is not None else int(time.time()))
    mac = hmac.new(secret.encode(), t.encode() + b"." + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def completed_event(session: dict[str, Any]) -> bytes:
    event = {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "type": "checkout.session.completed",
        "data": {"object": {**session, "status": "complete", "payment_status": "paid"}},
    }
    return json.dumps(event).encode()


class MockStripe:
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="MockStripe")
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.sessions: dict[str, dict[str, Any]] = {}
        self.webhook_url = ""
        self.deliveries = 2
        self.webhook_answers: list[int] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MockStripe:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/checkout/sessions", self._create)
        app.router.add_get("/c/{id}", self._page)
        app.router.add_post("/c/{id}", self._pay)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _create(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
            return web.json_response({"error": {"type": "invalid_request_error", "message": "bad key"}}, status=401)
        form = await request.post()
        ident = "cs_test_" + secrets.token_hex(12)
        session = {
            "id": ident,
            "object": "checkout.session",
            "mode": form.get("mode"),
            "client_reference_id": form.get("client_reference_id"),
            "metadata": {"account_id": form.get("metadata[account_id]")},
            "amount_total": int(str(form.get("line_items[0][price_data][unit_amount]"))),
            "currency": form.get("line_items[0][price_data][currency]"),
            "success_url": form.get("success_url"),
            "cancel_url": form.get("cancel_url"),
            "payment_status": "unpaid",
            "url": f"{self.url}/c/{ident}",
        }
        self.sessions[ident] = session
        return web.json_response(session)

    async def _page(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return web.Response(status=404, text="no such session")
        body = (
            "<!doctype html><title>Mock Stripe Checkout</title><h1>Mock Stripe Checkout</h1>"
            f"<p id='total'>Pay {session['amount_total'] / 100:.2f} {html.escape(str(session['currency']))}</p>"
            f"<form method='post'><button type='submit'>Pay</button></form>"
        )
        return web.Response(text=body, content_type="text/html")

    async def _pay(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return web.Response(status=404, text="no such session")
        await self.send_completed(session)
        raise web.HTTPSeeOther(str(session["success_url"]))

    async def send_completed(self, session: dict[str, Any]) -> None:
        payload = completed_event(session)
        async with aiohttp.ClientSession() as http:
            for _ in range(self.deliveries):
                headers = {"Stripe-Signature": sign(payload), "Content-Type": "application/json"}
                async with http.post(self.webhook_url, data=payload, headers=headers) as answer:
                    self.webhook_answers.append(answer.status)
