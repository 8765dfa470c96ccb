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


async def test_the_account_list_and_an_accounts_ledger_come_in_pages(client: AsyncTestClient[Any]) -> None:
    """Neither answer grows with the number of accounts or with history: pages of `limit`, followed by
    their cursors, give every account once in the order made, and every ledger entry once, newest first."""
    made = [
        (await client.post("/admin/accounts", headers=ADMIN_HEADERS, json={"name": name()})).json() for _ in range(3)
    ]
    seen: list[str] = []
    query: dict[str, Any] = {"limit": 2}
    for _ in range(1000):
        page = (await client.get("/admin/accounts", headers=ADMIN_HEADERS, params=query)).json()
        assert len(page["data"]) <= 2
        seen += [a["id"] for a in page["data"]]
        assert (page["first_id"], page["last_id"]) == (page["data"][0]["id"], page["data"][-1]["id"])
        if not page["has_more"]:
            break
        query["after"] = page["last_id"]
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i in {a["id"] for a in made}] == [a["id"] for a in made]
    whole = (await client.get("/admin/accounts", headers=ADMIN_HEADERS, params={"after": made[0]["id"]})).json()
    assert [a["id"] for a in whole["data"]][:2] == [made[1]["id"], made[2]["id"]]

    path = f"/admin/accounts/{made[0]['id']}"
    for cents in (100, 200, 300):
        await client.post(f"{path}/topups", headers=ADMIN_HEADERS, json={"amount": cents * 10_000, "reason": "t"})
    first = (await client.get(f"{path}/ledger", headers=ADMIN_HEADERS, params={"limit": 2})).json()
    assert [e["amount"] for e in first["data"]] == [3_000_000, 2_000_000] and first["has_more"] is True
    rest = (await client.get(f"{path}/ledger", headers=ADMIN_HEADERS, params={"before": first["last_id"]})).json()
    assert [e["amount"] for e in rest["data"]] == [1_000_000] and rest["has_more"] is False
    assert rest["first_id"] == rest["last_id"] == rest["data"][0]["id"]

    # A malformed id is one that names nothing (404, as for an id in a path); a bad number is a 400.
    for url, params, param, status in (
        ("/admin/accounts", {"limit": 0}, "limit", 400),
        ("/admin/accounts", {"limit": 101}, "limit", 400),
        ("/admin/accounts", {"after": "acct\x00"}, "after", 404),
        (f"{path}/ledger", {"before": -1}, "before", 400),
        (f"{path}/ledger", {"limit": "x"}, "limit", 400),
    ):
        bad = await client.get(url, headers=ADMIN_HEADERS, params=params)
        assert bad.status_code == status, (url, params, bad.text)
        assert bad.json()["error"]["param"] == param and bad.json()["error"]["code"], bad.json()
