"""Refused handshakes answer an HTTP status with the OpenAI error envelope, never a bare 403."""

from __future__ import annotations

import contextlib
import json

import pytest
import websockets
from openai import AsyncOpenAI
from websockets.exceptions import InvalidStatus

from tests.conftest import Tenant
from tests.realtime.conftest import OPEN, until
from tests.support import LiveServer

pytestmark = pytest.mark.e2e


def refusal(exc: InvalidStatus) -> tuple[int, dict]:
    return exc.response.status_code, json.loads(bytes(exc.response.body or b""))["error"]


@pytest.mark.parametrize("path", ["/v1/realtime", "/realtime"])
async def test_no_key(live: LiveServer, path: str) -> None:
    url = live.url.replace("http", "ws") + path + "?model=local-realtime"
    with pytest.raises(InvalidStatus) as caught:
        await websockets.connect(url)
    status, error = refusal(caught.value)
    assert status == 401 and error["code"] == "missing_api_key" and error["type"] == "invalid_request_error"


async def test_bad_key(live: LiveServer) -> None:
    sdk = AsyncOpenAI(api_key="sk-ht-" + "x" * 40, base_url=f"{live.url}/v1", max_retries=0)
    with pytest.raises(InvalidStatus) as caught:
        async with sdk.realtime.connect(model="local-realtime", websocket_connection_options=OPEN):
            pass
    status, error = refusal(caught.value)
    assert status == 401 and error["code"] == "invalid_api_key"


async def test_unknown_model(sdk: AsyncOpenAI) -> None:
    with pytest.raises(InvalidStatus) as caught:
        async with sdk.realtime.connect(model="no-such-realtime-model", websocket_connection_options=OPEN):
            pass
    status, error = refusal(caught.value)
    assert status == 404 and error["code"] == "model_not_found" and error["param"] == "model"


async def test_a_chat_model_is_not_a_realtime_model(sdk: AsyncOpenAI) -> None:
    with pytest.raises(InvalidStatus) as caught:
        async with sdk.realtime.connect(model="local-chat", websocket_connection_options=OPEN):
            pass
    status, _ = refusal(caught.value)
    assert status == 400


async def test_eleventh_concurrent_session(sdk: AsyncOpenAI) -> None:
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(10):
            connection = await stack.enter_async_context(
                sdk.realtime.connect(model="local-realtime", websocket_connection_options=OPEN)
            )
            await until(connection, "session.created", [])
        with pytest.raises(InvalidStatus) as caught:
            async with sdk.realtime.connect(model="local-realtime", websocket_connection_options=OPEN):
                pass
        status, error = refusal(caught.value)
        assert status == 429 and error["code"] == "concurrent_streams"
        assert caught.value.response.headers["retry-after"] == "1"
    # Closed sessions give their slots back.
    async with sdk.realtime.connect(model="local-realtime", websocket_connection_options=OPEN) as connection:
        await until(connection, "session.created", [])


async def test_missing_model(live: LiveServer, tenant: Tenant) -> None:
    url = live.url.replace("http", "ws") + "/v1/realtime"
    with pytest.raises(InvalidStatus) as caught:
        await websockets.connect(url, additional_headers=tenant.headers)
    status, error = refusal(caught.value)
    assert status == 400 and error["code"] == "missing_model"
