"""Browsers: a short-lived client secret (one model, minutes), presented in the subprotocol."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import websockets
from openai import AsyncOpenAI
from websockets.exceptions import InvalidStatus

from app.core.crypto import encrypt
from app.core.settings import Settings
from tests.realtime.conftest import OPEN
from tests.realtime.test_handshake import refusal
from tests.support import LiveServer

pytestmark = pytest.mark.e2e


def ws_url(live: LiveServer, model: str) -> str:
    return live.url.replace("http", "ws") + f"/v1/realtime?model={model}"


async def browser(live: LiveServer, model: str, secret: str) -> websockets.ClientConnection:
    return await websockets.connect(ws_url(live, model), subprotocols=["realtime", "openai-insecure-api-key." + secret])


async def test_browser_session_with_a_client_secret(sdk: AsyncOpenAI, live: LiveServer) -> None:
    secret = await sdk.realtime.client_secrets.create(
        session={"type": "realtime", "model": "local-realtime"}, expires_after={"anchor": "created_at", "seconds": 120}
    )
    assert secret.value.startswith("ek_") and secret.expires_at > time.time() + 100
    ws = await browser(live, "local-realtime", secret.value)
    try:
        assert ws.subprotocol == "realtime"
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}))  # fmt: skip
        await ws.send(json.dumps({"type": "response.create"}))
        while (event := json.loads(await ws.recv()))["type"] != "response.done":
            assert event["type"] != "error", event
    finally:
        await ws.close()

    # Refused for a second model, and anywhere but /v1/realtime.
    with pytest.raises(InvalidStatus) as caught:
        await browser(live, "local-chat", secret.value)
    status, error = refusal(caught.value)
    assert status == 403 and error["code"] == "client_secret_model_mismatch"
    async with httpx.AsyncClient(base_url=live.url, headers={"Authorization": f"Bearer {secret.value}"}) as http:
        assert (await http.get("/v1/models")).status_code == 401
        chat = await http.post("/v1/chat/completions", json={"model": "local-chat", "messages": []})
        assert chat.status_code == 401 and chat.json()["error"]["code"] == "invalid_api_key"
        minted = await http.post("/v1/realtime/client_secrets", json={"session": {"model": "local-realtime"}})
        assert minted.status_code == 401


async def test_expired_and_forged_secrets(live: LiveServer, tenant, settings: Settings) -> None:
    claims = {"k": tenant.key, "m": "local-realtime", "e": int(time.time()) - 1}
    expired = "ek_" + encrypt(settings.resolved_secret_key(), json.dumps(claims)).rstrip("=")
    with pytest.raises(InvalidStatus) as caught:
        await browser(live, "local-realtime", expired)
    status, error = refusal(caught.value)
    assert status == 401 and error["code"] == "client_secret_expired"
    with pytest.raises(InvalidStatus) as caught:
        await browser(live, "local-realtime", "ek_" + "A" * 120)
    status, error = refusal(caught.value)
    assert status == 401 and error["code"] == "invalid_client_secret"


async def test_sdk_with_a_client_secret_and_a_key_in_the_subprotocol(
    sdk: AsyncOpenAI, live: LiveServer, tenant
) -> None:
    secret = await sdk.realtime.client_secrets.create(session={"type": "realtime", "model": "local-realtime"})
    assert 50 <= secret.expires_at - time.time() <= 61
    with_secret = AsyncOpenAI(api_key=secret.value, base_url=f"{live.url}/v1", max_retries=0)
    async with with_secret.realtime.connect(model="local-realtime", websocket_connection_options=OPEN) as connection:
        assert (await connection.recv()).type == "session.created"
    ws = await browser(live, "local-realtime", tenant.key)
    try:
        assert json.loads(await ws.recv())["type"] == "session.created"
    finally:
        await ws.close()


async def test_secret_lifetime_is_bounded(sdk: AsyncOpenAI, live: LiveServer, tenant) -> None:
    async with httpx.AsyncClient(base_url=live.url, headers=tenant.headers) as http:
        r = await http.post(
            "/v1/realtime/client_secrets",
            json={"session": {"type": "realtime", "model": "local-realtime"}, "expires_after": {"seconds": 7200}},
        )
        assert r.status_code == 400 and r.json()["error"]["param"] == "expires_after.seconds"
        r = await http.post("/v1/realtime/client_secrets", json={"session": {"model": "nope"}})
        assert r.status_code == 404
