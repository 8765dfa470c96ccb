"""The admin API for accounts, keys, limits and money (operator token, not an sk-ht- key)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.testing import AsyncTestClient

from tests.conftest import ADMIN_HEADERS, Tenant


def name() -> str:
    return f"org-{uuid.uuid4().hex[:8]}"


async def test_accounts_keys_and_instant_revocation(client: AsyncTestClient[Any]) -> None:
    created = await client.post("/admin/accounts", headers=ADMIN_HEADERS, json={"name": name()})
    assert created.status_code == 201
    account = created.json()
    duplicate = await client.post("/admin/accounts", headers=ADMIN_HEADERS, json={"name": account["name"]})
    assert duplicate.status_code == 409
    key = (await client.post(f"/admin/accounts/{account['id']}/keys", headers=ADMIN_HEADERS, json={})).json()
    headers = {"Authorization": f"Bearer {key['key']}"}
    assert (await client.get("/v1/models", headers=headers)).status_code == 200  # now cached in the process
    listed = (await client.get(f"/admin/accounts/{account['id']}/keys", headers=ADMIN_HEADERS)).json()
    assert listed["data"][0]["masked"] == f"{key['key'][:10]}…{key['key'][-4:]}"
    assert "key" not in listed["data"][0]

    assert (await client.post(f"/admin/keys/{key['id']}/revoke", headers=ADMIN_HEADERS)).status_code == 200
    # refused at once, although this process still has the key cached
    assert (await client.get("/v1/models", headers=headers)).status_code == 401


async def test_suspend_and_resume(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    path = f"/admin/accounts/{tenant.account_id}"
    assert (await client.get("/v1/models", headers=tenant.headers)).status_code == 200
    assert (await client.patch(path, headers=ADMIN_HEADERS, json={"status": "suspended"})).status_code == 200
    assert (await client.get("/v1/models", headers=tenant.headers)).status_code == 403
    assert (await client.patch(path, headers=ADMIN_HEADERS, json={"status": "active"})).status_code == 200
    assert (await client.get("/v1/models", headers=tenant.headers)).status_code == 200
    bad = await client.patch(path, headers=ADMIN_HEADERS, json={"status": "deleted"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "status"


async def test_topups_are_idempotent_and_adjustments_need_a_reason(
    client: AsyncTestClient[Any], tenant: Tenant
) -> None:
    path = f"/admin/accounts/{tenant.account_id}"
    headers = {**ADMIN_HEADERS, "Idempotency-Key": str(uuid.uuid4())}
    first = await client.post(f"{path}/topups", headers=headers, json={"amount_usd": "1.25"})
    again = await client.post(f"{path}/topups", headers=headers, json={"amount_usd": "1.25"})
    assert first.json()["balance"] == again.json()["balance"] == 1_250_000
    no_reason = await client.post(f"{path}/adjustments", headers=ADMIN_HEADERS, json={"amount": -250_000})
    assert no_reason.status_code == 400 and no_reason.json()["error"]["param"] == "reason"
    adjusted = await client.post(
        f"{path}/adjustments", headers=ADMIN_HEADERS, json={"amount": -250_000, "reason": "goodwill reversal"}
    )
    assert adjusted.json()["balance"] == 1_000_000
    for body, param in (
        ({"amount": 0}, "amount"),
        ({"amount": "5"}, "amount"),
        ({"amount_usd": "1.0000001"}, "amount_usd"),
        ({}, "amount"),
    ):
        bad = await client.post(f"{path}/topups", headers=ADMIN_HEADERS, json=body)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == param, body
    ledger = (await client.get(f"{path}/ledger", headers=ADMIN_HEADERS)).json()["data"]
    assert [(e["kind"], e["amount"]) for e in ledger] == [("adjustment", -250_000), ("topup", 1_250_000)]
    assert (await client.get("/admin/ledger/verify", headers=ADMIN_HEADERS)).json()["ok"] is True


async def test_limits_prices_and_tiers(client: AsyncTestClient[Any], tenant: Tenant) -> None:
    limited = await client.patch(
        f"/admin/keys/{tenant.key_id}", headers=ADMIN_HEADERS, json={"rpm": 5, "tpm": 0, "max_streams": None}
    )
    assert limited.json()["limits"] == {"rpm": 5, "rph": None, "tpm": 0, "max_streams": None}
    bad = await client.patch(f"/admin/keys/{tenant.key_id}", headers=ADMIN_HEADERS, json={"rpm": -1})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "rpm"
    # A PATCH changes what it names: a limit left out keeps its value, null inherits again; a nested
    # `limits` object names them too.
    kept = await client.patch(f"/admin/keys/{tenant.key_id}", headers=ADMIN_HEADERS, json={"rph": 7})
    assert kept.json()["limits"] == {"rpm": 5, "rph": 7, "tpm": 0, "max_streams": None}
    nested = await client.patch(
        f"/admin/keys/{tenant.key_id}", headers=ADMIN_HEADERS, json={"limits": {"rpm": None, "tpm": 9}}
    )
    assert nested.json()["limits"] == {"rpm": None, "rph": 7, "tpm": 9, "max_streams": None}
    for body, param in (({"status": None}, "status"), ({"limits": None}, "limits"), ({"tier": 5}, "tier")):
        refused = await client.patch(f"/admin/accounts/{tenant.account_id}", headers=ADMIN_HEADERS, json=body)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == param, refused.text
    model = f"m-{uuid.uuid4().hex[:6]}"
    price = await client.put(
        f"/admin/prices/{model}",
        headers=ADMIN_HEADERS,
        json={"input_per_mtok": 150_000, "output_per_mtok": 600_000, "per_image": {"1024x1024/hd": 80_000}},
    )
    assert price.json()["input_per_mtok"] == 150_000
    assert any(p["model"] == model for p in (await client.get("/admin/prices", headers=ADMIN_HEADERS)).json()["data"])
    negative = await client.put(f"/admin/prices/{model}", headers=ADMIN_HEADERS, json={"output_per_mtok": -1})
    assert negative.status_code == 400
    for table in ({"1024x1024/hd": -1}, {"1024x1024/hd": True}, ["80000"]):
        refused = await client.put(f"/admin/prices/{model}", headers=ADMIN_HEADERS, json={"per_image": table})
        assert refused.status_code == 400 and refused.json()["error"]["param"].startswith("per_image"), refused.text
    by_size = await client.put(
        f"/admin/prices/{model}", headers=ADMIN_HEADERS, json={"per_video_second_by_size": {"1280x720": 90_000}}
    )
    assert by_size.json()["per_video_second_by_size"] == {"1280x720": 90_000}
    assert by_size.json()["per_image"] == {"1024x1024/hd": 80_000}, "a PUT of one table keeps the other"
    assert (await client.delete(f"/admin/prices/{model}", headers=ADMIN_HEADERS)).status_code == 200
    assert (await client.delete(f"/admin/prices/{model}", headers=ADMIN_HEADERS)).status_code == 404
    tier = await client.put("/admin/tiers/enterprise", headers=ADMIN_HEADERS, json={"rpm": 10_000})
    assert tier.json()["limits"]["rpm"] == 10_000
    unknown = await client.patch(
        f"/admin/accounts/{tenant.account_id}", headers=ADMIN_HEADERS, json={"tier": "no-such-tier"}
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "tier"
