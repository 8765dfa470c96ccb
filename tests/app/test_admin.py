"""The admin API is guarded by its own token, and absent when none is configured."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from app.api.main import create_app
from tests.conftest import ADMIN_HEADERS, Tenant


async def test_admin_needs_the_admin_token(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    assert (await client.get("/admin/status", headers=ADMIN_HEADERS)).status_code == 200
    for headers in ({}, tenant.headers, {"Authorization": "Bearer wrong"}):
        response = await client.get("/admin/status", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_admin_token"


async def test_no_admin_api_without_a_token(settings: Any) -> None:
    app = create_app(settings.model_copy(update={"admin_token": None}))
    async with AsyncTestClient(app=app) as bare:
        response = await bare.get("/admin/status", headers=ADMIN_HEADERS)
    assert response.status_code == 404
