"""People: `heytoken user create`, POST /admin/users, and signing in with what they create; Stripe's
webhook verified and credited once (in-process; the browser test runs the whole checkout)."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient
from pydantic import SecretStr

from app.api.main import create_app
from app.cli.commands import main
from app.console.models import StripeCheckout
from app.core.db import unit_of_work
from app.core.settings import Settings, get_settings
from tests.conftest import ADMIN_HEADERS
from tests.console.conftest import PASSWORD, sign_in
from tests.fakes.stripe import WEBHOOK_SECRET, completed_event, sign
from tests.support import settings_env


def test_user_create_cli_then_sign_in(settings: Settings, client: AsyncTestClient[Any]) -> None:
    env = {k: v for k, v in settings_env(settings).items() if k.startswith("HEYTOKEN_")}
    runner = CliRunner(env=env)
    get_settings.cache_clear()
    try:
        name = f"team-{uuid.uuid4().hex[:6]}"
        assert runner.invoke(main, ["account", "create", name]).exit_code == 0
        email = f"Ada-{uuid.uuid4().hex[:6]}@Example.com"
        result = runner.invoke(main, ["user", "create", "--account", name, "--email", email, "--password", PASSWORD])
        assert result.exit_code == 0, result.output
        assert re.fullmatch(r"user_[0-9A-Z]{26}", result.stdout.strip())
        listing = runner.invoke(main, ["user", "list", "--account", name]).stdout
        assert email.lower() in listing and "owner" in listing
        again = runner.invoke(main, ["user", "create", "--account", name, "--email", email, "--password", PASSWORD])
        assert again.exit_code != 0 and "already exists" in again.output
        weak = runner.invoke(
            main, ["user", "create", "--account", name, "--email", "x@example.com", "--password", "short"]
        )
        assert weak.exit_code != 0
    finally:
        get_settings.cache_clear()


async def test_admin_api_invites_a_user_who_signs_in(client: AsyncTestClient[Any]) -> None:
    client.cookies.clear()
    name = f"team-{uuid.uuid4().hex[:6]}"
    assert (await client.post("/admin/accounts", json={"name": name}, headers=ADMIN_HEADERS)).status_code == 201
    email = f"{uuid.uuid4().hex[:6]}@example.com"
    body = {"account": name, "email": email, "password": PASSWORD, "role": "member"}
    created = await client.post("/admin/users", json=body, headers=ADMIN_HEADERS)
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "member"
    assert (await client.post("/admin/users", json=body, headers=ADMIN_HEADERS)).status_code == 409
    assert (await client.post("/admin/users", json=body)).status_code == 401
    answer = await sign_in(client, email.upper())
    assert answer.status_code == 303
    page = await client.get("/console/keys")
    assert page.status_code == 200 and email in page.text and "member" in page.text
    client.cookies.clear()
    assert (await sign_in(client, email, "not the password")).status_code == 401


async def test_admin_api_lists_people_in_pages(client: AsyncTestClient[Any]) -> None:
    name = f"team-{uuid.uuid4().hex[:6]}"
    assert (await client.post("/admin/accounts", json={"name": name}, headers=ADMIN_HEADERS)).status_code == 201
    made = []
    for _ in range(3):
        body = {"account": name, "email": f"{uuid.uuid4().hex[:6]}@example.com", "password": PASSWORD}
        made.append((await client.post("/admin/users", json=body, headers=ADMIN_HEADERS)).json()["id"])
    first = (await client.get("/admin/users", params={"account": name, "limit": 2}, headers=ADMIN_HEADERS)).json()
    assert [u["id"] for u in first["data"]] == made[:2] and first["has_more"] is True
    query = {"account": name, "after": first["last_id"]}
    rest = (await client.get("/admin/users", params=query, headers=ADMIN_HEADERS)).json()
    assert [u["id"] for u in rest["data"]] == made[2:] and rest["has_more"] is False
    assert rest["first_id"] == rest["last_id"] == made[2]
    everyone = (await client.get("/admin/users", params={"limit": 100}, headers=ADMIN_HEADERS)).json()
    assert len(everyone["data"]) <= 100
    bad = await client.get("/admin/users", params={"limit": 0}, headers=ADMIN_HEADERS)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"


@pytest.fixture
async def stripe_app(settings: Settings) -> Any:
    configured = settings.model_copy(
        update={"stripe_secret_key": SecretStr("sk_test_x"), "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET)}
    )
    async with AsyncTestClient(app=create_app(configured)) as web:
        yield web


async def test_stripe_webhook_is_verified_and_credits_once(stripe_app, tenant, sessionmaker) -> None:
    session_id = f"cs_test_{uuid.uuid4().hex}"
    async with unit_of_work(sessionmaker) as db:
        db.add(StripeCheckout(id=session_id, account_id=tenant.account_id, amount=15_000_000))
    payload = completed_event({"id": session_id, "object": "checkout.session", "amount_total": 1500})

    def post(body: bytes, signature: str) -> Any:
        return stripe_app.post(
            "/console/stripe/webhook",
            content=body,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        )

    forged = await post(payload, sign(payload, secret="whsec_someone_else"))
    assert forged.status_code == 400
    stale = await post(payload, sign(payload, timestamp=int(time.time()) - 3600))
    assert stale.status_code == 400
    tampered = await post(payload.replace(b"paid", b"PAID"), sign(payload))
    assert tampered.status_code == 400
    for _ in range(3):  # Stripe delivers at least once
        answer = await post(payload, sign(payload))
        assert answer.status_code == 200, answer.text
    account = (await stripe_app.get("/v1/account", headers=tenant.headers)).json()
    assert account["balance"] == 15_000_000
    ledger = (await stripe_app.get("/v1/ledger", headers=tenant.headers)).json()["data"]
    assert [e["amount"] for e in ledger] == [15_000_000]
    unknown = completed_event({"id": "cs_test_unknown", "object": "checkout.session"})
    answer = await post(unknown, sign(unknown))
    assert answer.status_code == 200 and json.loads(answer.text)["outcome"] == "unknown_session"


async def test_stripe_webhook_credits_from_its_metadata_when_our_row_is_missing(stripe_app, tenant) -> None:
    session_id = f"cs_test_{uuid.uuid4().hex}"
    metadata = {"account_id": tenant.account_id, "amount_micros": "5000000"}
    payload = completed_event({"id": session_id, "object": "checkout.session", "metadata": metadata})
    for _ in range(2):
        answer = await stripe_app.post(
            "/console/stripe/webhook",
            content=payload,
            headers={"Stripe-Signature": sign(payload), "Content-Type": "application/json"},
        )
        assert answer.status_code == 200, answer.text
    account = (await stripe_app.get("/v1/account", headers=tenant.headers)).json()
    assert account["balance"] == 5_000_000


async def test_keys_page_shows_a_new_key_once_and_the_limits_that_apply(
    client: AsyncTestClient[Any], make_person, settings: Settings
) -> None:
    from tests.console.conftest import csrf_of

    client.cookies.clear()
    person = await make_person()
    await sign_in(client, person.email)
    page = await client.get("/console/keys")
    created = await client.post("/console/keys", data={"csrf": csrf_of(page.text), "name": "ci"})
    key = re.search(r'id="new-key">(sk-ht-[^<]+)<', created.text)
    assert key, created.text[:2000]
    text = re.sub(r"<[^>]+>", "", created.text)
    assert f"{settings.default_rpm} / {settings.default_rph} / {settings.default_tpm}" in text
    again = await client.get("/console/keys")
    assert key.group(1) not in again.text and key.group(1)[-4:] in again.text
    answer = await client.get("/v1/models", headers={"Authorization": f"Bearer {key.group(1)}"})
    assert answer.status_code == 200
