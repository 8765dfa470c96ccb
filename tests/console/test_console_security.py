"""The console's security: session cookie flags, CSRF on every form, throttled sign-in, and another
account's things read as unknown."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from redis import Redis

from app.api.main import create_app
from app.core.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import PASSWORD, csrf_of, sign_in

OPEN_FORMS = {"/console/sign-in", "/console/stripe/webhook"}


@pytest.fixture
async def web(client: AsyncTestClient[Any]) -> AsyncTestClient[Any]:
    client.cookies.clear()
    return client


def _cookie_header(response: Any, name: str) -> str:
    return next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(f"{name}="))


async def test_session_cookie_is_httponly_samesite_and_secure_behind_https(web, make_person, settings):
    person = await make_person()
    answer = await sign_in(web, person.email)
    assert answer.status_code == 303
    cookie = _cookie_header(answer, "ht_console").lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/console" in cookie
    assert "secure" not in cookie  # plain http in this test: a Secure cookie would never come back

    https = settings.model_copy(update={"public_base_url": "https://console.example"})
    async with AsyncTestClient(app=create_app(https), base_url="https://console.example") as other:
        answer = await sign_in(other, person.email)
        cookie = _cookie_header(answer, "ht_console").lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


async def test_every_state_changing_form_needs_the_csrf_token(web, make_person):
    person = await make_person()
    await sign_in(web, person.email)
    paths = sorted(
        route.path
        for route in web.app.routes
        if route.path.startswith("/console")
        and route.path not in OPEN_FORMS
        and "POST" in getattr(route, "methods", set())
    )
    assert "/console/keys" in paths and "/console/billing/redeem" in paths
    for path in paths:
        concrete = (
            path.replace("{key_id:str}", "key_x").replace("{job_id:str}", "job_x").replace("{event_id:str}", "evt_x")
        )
        for form in ({}, {"csrf": "forged"}):
            answer = await web.post(concrete, data={"name": "sneaky", **form}, follow_redirects=False)
            assert answer.status_code == 403, (path, answer.status_code)
    keys = await web.get("/console/keys")
    assert "sneaky" not in keys.text
    # The operator's forms too (signed in with the admin token).
    web.cookies.clear()
    await sign_in(web, "operator", ADMIN_TOKEN)
    for path in [p for p in paths if p.startswith("/console/operator")] or ["missing"]:
        answer = await web.post(re.sub(r"\{\w+:str\}", "x_1", path), data={"name": "x"}, follow_redirects=False)
        assert answer.status_code == 403, path
    # The sign-in form: its token must match the cookie the sign-in page set.
    web.cookies.clear()
    answer = await web.post("/console/sign-in", data={"email": person.email, "password": PASSWORD, "csrf": "x"})
    assert answer.status_code == 403


async def test_sign_out_ends_the_session(web, make_person):
    person = await make_person()
    await sign_in(web, person.email)
    page = await web.get("/console/keys")
    stolen = web.cookies.get("ht_console")
    await web.post("/console/sign-out", data={"csrf": csrf_of(page.text)})
    web.cookies.set("ht_console", stolen, path="/console")
    answer = await web.get("/console/keys", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"


def _forget_sign_in_failures(settings: Settings) -> None:
    # The per-address counter is shared by every in-process test (one "testclient" address).
    redis = Redis.from_url(settings.redis_url)
    for key in redis.scan_iter(match=f"{settings.redis_prefix}console:signin:*"):
        redis.delete(key)


async def test_sign_in_is_throttled(web, make_person, settings: Settings):
    person = await make_person()
    _forget_sign_in_failures(settings)
    try:
        for _ in range(settings.console_signin_limit):
            answer = await sign_in(web, person.email, "wrong password!")
            assert answer.status_code == 401
        answer = await sign_in(web, person.email)  # the right password, too late
        assert answer.status_code == 429
        assert int(answer.headers["retry-after"]) > 0
        assert "ht_console" not in web.cookies
    finally:
        _forget_sign_in_failures(settings)


async def test_another_accounts_key_and_job_are_404(web, make_person, tenant):
    person = await make_person()
    reply = await web.post(
        "/v1/chat/completions", json={"model": "local-chat", "messages": [{"role": "user", "content": "hi"}]},
        headers=tenant.headers,
    )  # fmt: skip
    assert reply.status_code == 200
    job_id = reply.json()["id"]
    await sign_in(web, person.email)
    page = await web.get("/console/keys")
    assert (await web.get(f"/console/jobs/{job_id}")).status_code == 404
    answer = await web.post(f"/console/keys/{tenant.key_id}/revoke", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 404
    assert (await web.get("/v1/models", headers=tenant.headers)).status_code == 200
    assert job_id not in (await web.get("/console/jobs")).text
    endpoint = await web.post("/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/hook"}, headers=tenant.headers)
    assert endpoint.status_code == 200, endpoint.text
    for action in ("status", "test", "delete"):
        answer = await web.post(
            f"/console/webhooks/endpoints/{endpoint.json()['id']}/{action}",
            data={"csrf": csrf_of(page.text), "status": "disabled"},
        )
        assert answer.status_code == 404, action
    assert (await web.get("/console/operator", follow_redirects=False)).status_code == 404


async def test_signed_out_pages_redirect_to_sign_in(web):
    for path in ("/console/keys", "/console/billing", "/console/jobs", "/", "/dashboard"):
        answer = await web.get(path, follow_redirects=True)
        assert answer.status_code == 200
        assert "Sign in" in answer.text, path


async def test_only_an_owner_invites(web, make_person):
    from app.console.models import Role

    member = await make_person(Role.MEMBER)
    await sign_in(web, member.email)
    page = await web.get("/console/team")
    assert member.email in page.text and "Invite someone" not in page.text
    answer = await web.post(
        "/console/team", data={"csrf": csrf_of(page.text), "email": "new@example.com", "password": PASSWORD}
    )
    assert "Only an owner" in answer.text
    assert "new@example.com" not in (await web.get("/console/team")).text


async def test_an_owner_invites_a_member_who_signs_in(web, make_person):
    owner = await make_person()
    await sign_in(web, owner.email)
    page = await web.get("/console/team")
    email = f"member-{owner.email}"
    answer = await web.post(
        "/console/team", data={"csrf": csrf_of(page.text), "email": email, "password": PASSWORD, "role": "member"}
    )
    assert "can sign in now, as member" in answer.text
    web.cookies.clear()
    assert (await sign_in(web, email)).status_code == 303
    team = await web.get("/console/team")
    assert owner.email in team.text and email in team.text
