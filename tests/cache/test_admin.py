"""Deleting an account's cached answers: the admin API and the CLI."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient
from redis import Redis

from app.cache.store import cache_redis_url
from app.cli.commands import main
from app.core.settings import Settings, get_settings
from tests.billing.test_billing_api import topup
from tests.cache.conftest import ON, priced_model
from tests.conftest import ADMIN_HEADERS, AddChannel, Tenant
from tests.fakes.upstream import MockUpstream
from tests.support import apoll, settings_env

CHAT = "/v1/chat/completions"


async def test_the_admin_api_deletes_one_accounts_entries_only(
    client: AsyncTestClient[Any], make_tenant: Any, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await priced_model(client, add_channel, mock_upstream)
    a: Tenant = await make_tenant()
    b: Tenant = await make_tenant()

    async def ask(tenant: Tenant, content: str) -> str:
        body = {"model": model, "messages": [{"role": "user", "content": content}]}
        response = await client.post(CHAT, headers={**tenant.headers, **ON}, json=body)
        assert response.status_code == 200, response.text
        return str(response.headers["x-heytoken-cache"])

    for tenant in (a, b):
        await topup(client, tenant, 1_000_000)
        assert [await ask(tenant, "one"), await ask(tenant, "two")] == ["miss", "miss"]
    cleared = await client.delete(f"/admin/accounts/{a.account_name}/cache", headers=ADMIN_HEADERS)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json() == {"object": "cache", "account_id": a.account_id, "deleted": 2}
    assert [await ask(a, "one"), await ask(b, "one"), await ask(b, "two")] == ["miss", "hit", "hit"]

    missing = await client.delete("/admin/accounts/no-such-account/cache", headers=ADMIN_HEADERS)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "account_not_found"
    refused = await client.delete(f"/admin/accounts/{a.account_id}/cache", headers=a.headers)
    assert refused.status_code in (401, 403)


@pytest.fixture
def cli(settings: Settings) -> Iterator[CliRunner]:
    env = {k: v for k, v in settings_env(settings).items() if k.startswith("HEYTOKEN_")}
    get_settings.cache_clear()
    yield CliRunner(env=env)
    get_settings.cache_clear()


def test_the_cli_deletes_an_accounts_entries(cli: CliRunner, settings: Settings) -> None:
    name = f"cache-cli-{uuid.uuid4().hex[:8]}"
    created = cli.invoke(main, ["account", "create", name])
    assert created.exit_code == 0, created.output
    account_id = created.stdout.strip()
    redis = Redis.from_url(cache_redis_url(settings))
    mine = [f"{settings.redis_prefix}cache:{account_id}:chat:{i}" for i in range(3)]
    other = f"{settings.redis_prefix}cache:acct_someone_else:chat:0"
    for name_ in (*mine, other):
        redis.set(name_, b"{}", ex=60)
    get_settings.cache_clear()
    result = cli.invoke(main, ["cache", "clear", name])
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.strip() == "3"
    assert redis.exists(*mine) == 0 and redis.exists(other) == 1
    redis.delete(other)

    get_settings.cache_clear()
    default = cli.invoke(main, ["cache", "default", "--account", name, "--ttl", "900"])
    assert default.exit_code == 0, (default.output, default.exception)
    assert '"ttl_seconds": 900' in default.stdout and account_id in default.stdout


async def test_an_account_default_caches_without_an_opt_in_and_a_key_may_opt_out(
    client: AsyncTestClient[Any], tenant: Tenant, add_channel: AddChannel, mock_upstream: MockUpstream
) -> None:
    model = await priced_model(client, add_channel, mock_upstream)
    await topup(client, tenant, 1_000_000)
    body = {"model": model, "messages": [{"role": "user", "content": "by default"}]}
    answer = await client.put(
        f"/admin/accounts/{tenant.account_id}/cache", headers=ADMIN_HEADERS, json={"ttl_seconds": 600}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "object": "cache.default",
        "account_id": tenant.account_id,
        "key_id": None,
        "ttl_seconds": 600,
    }

    async def status(**headers: str) -> str | None:
        response = await client.post(CHAT, headers={**tenant.headers, **headers}, json=body)
        assert response.status_code == 200, response.text
        return response.headers.get("x-heytoken-cache")

    async def cached_by_default() -> bool:  # the key cache (0.5 s in the tests) picks the change up
        return await status() == "hit"

    await apoll(cached_by_default, message="the account's default applied")
    assert await status(**{"x-heytoken-cache": "off"}) is None
    calls = len(mock_upstream.calls(CHAT))

    off = await client.put(f"/admin/keys/{tenant.key_id}/cache", headers=ADMIN_HEADERS, json={"ttl_seconds": 0})
    assert off.status_code == 200 and off.json()["key_id"] == tenant.key_id

    async def key_opted_out() -> bool:
        return await status() is None

    await apoll(key_opted_out, message="the key's own default (off) applied")
    assert len(mock_upstream.calls(CHAT)) > calls
    bad = await client.put(f"/admin/keys/{tenant.key_id}/cache", headers=ADMIN_HEADERS, json={"ttl_seconds": -1})
    assert bad.status_code == 400
