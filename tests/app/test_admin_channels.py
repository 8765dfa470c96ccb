"""Channels and their models through the admin API; running processes follow within a catalog refresh."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.testing import AsyncTestClient

from tests.conftest import ADMIN_HEADERS, Tenant, unique_model, wait_for_model
from tests.fakes.upstream import MockUpstream
from tests.support import apoll


async def test_channel_lifecycle_through_the_admin_api(
    client: AsyncTestClient[Any], tenant: Tenant, mock_upstream: MockUpstream
) -> None:
    name, model = f"admin-{uuid.uuid4().hex[:8]}", unique_model("adm")
    created = await client.post(
        "/admin/channels",
        headers=ADMIN_HEADERS,
        json={
            "name": name,
            "provider": "openai",
            "base_url": mock_upstream.base_url,
            "api_key": "sk-secret",
            "models": [model],
            "priority": 5,
            "weight": 2,
            "options": {"first_byte_timeout": 10},
        },
    )
    assert created.status_code == 201, created.text
    channel = created.json()
    assert channel["has_api_key"] is True and "sk-secret" not in created.text
    assert (channel["priority"], channel["weight"], channel["cooldown"]) == (5, 2, None)
    await wait_for_model(client, model)
    route = client.app.state.resources.catalog.current.routes[model][0]
    assert route.policy.first_byte_timeout == 10 and route.weight == 2

    updated = await client.patch(
        f"/admin/channels/{name}",
        headers=ADMIN_HEADERS,
        json={"priority": 1, "weight": 7, "options": {"first_byte_timeout": None, "idle_timeout": 3}},
    )
    assert updated.status_code == 200
    assert updated.json()["options"] == {"idle_timeout": 3} and updated.json()["weight"] == 7

    added = await client.post(
        f"/admin/channels/{channel['id']}/models", headers=ADMIN_HEADERS, json={"models": [f"{model}-b=up"]}
    )
    assert [m["upstream_model"] for m in added.json()["models"]] == [model, "up"]
    removed = await client.delete(f"/admin/channels/{name}/models/{model}-b", headers=ADMIN_HEADERS)
    assert [m["model"] for m in removed.json()["models"]] == [model]

    # Disabled: gone from every process's catalog within a refresh.
    await client.patch(f"/admin/channels/{name}", headers=ADMIN_HEADERS, json={"enabled": False})
    await apoll(lambda: model not in client.app.state.resources.catalog.current.models, timeout=10, message="gone")
    listing = (await client.get("/admin/channels", headers=ADMIN_HEADERS)).json()["data"]
    assert next(c for c in listing if c["name"] == name)["enabled"] is False

    deleted = await client.delete(f"/admin/channels/{name}", headers=ADMIN_HEADERS)
    assert deleted.json() == {"id": channel["id"], "object": "channel", "deleted": True}
    assert (await client.get(f"/admin/channels/{name}", headers=ADMIN_HEADERS)).status_code == 404


async def test_admin_channel_input_is_checked(client: AsyncTestClient[Any], mock_upstream: MockUpstream) -> None:
    base = {"name": f"bad-{uuid.uuid4().hex[:8]}", "provider": "openai", "base_url": mock_upstream.base_url}
    cases = [
        ({**base, "models": []}, "models"),
        ({**base, "models": ["m"], "provider": "nope"}, "provider"),
        ({**base, "models": ["m"], "weight": 0}, "weight"),
        ({**base, "models": ["m"], "options": {"idle_timeout": -1}}, "options.idle_timeout"),
        ({**base, "models": ["m"], "options": {"cooldown_failures": 1.5}}, "options.cooldown_failures"),
    ]
    for body, param in cases:
        response = await client.post("/admin/channels", headers=ADMIN_HEADERS, json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["param"] == param
    assert (await client.get("/admin/channels", headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await client.patch("/admin/channels/no-such", headers=ADMIN_HEADERS, json={})).status_code == 404
