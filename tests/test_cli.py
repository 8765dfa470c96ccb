"""`heytoken` admin CLI: scriptable output (create commands print only the id or key)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from app.cli.commands import main
from app.core.settings import Settings, get_settings
from tests.support import settings_env


@pytest.fixture
def cli(settings: Settings) -> Iterator[CliRunner]:
    env = {k: v for k, v in settings_env(settings).items() if k.startswith("HEYTOKEN_")}
    get_settings.cache_clear()
    yield CliRunner(env=env)
    get_settings.cache_clear()


def invoke(cli: CliRunner, *args: str) -> str:
    get_settings.cache_clear()
    result = cli.invoke(main, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout.strip()


def test_account_key_lifecycle(cli: CliRunner) -> None:
    name = f"team-{uuid.uuid4().hex[:6]}"
    account_id = invoke(cli, "account", "create", name)
    assert re.fullmatch(r"acct_[0-9A-Z]{26}", account_id)
    assert name in invoke(cli, "account", "list")

    key = invoke(cli, "key", "create", "--account", name, "--name", "ci")
    assert re.fullmatch(r"sk-ht-[A-Za-z0-9_-]{43}", key)
    listing = invoke(cli, "key", "list", "--account", name)
    assert key not in listing
    assert f"{key[:10]}…{key[-4:]}" in listing and "active" in listing
    key_id = listing.split("\t")[0]

    assert invoke(cli, "key", "revoke", key_id) == key_id
    assert "revoked" in invoke(cli, "key", "list", "--account", name)


def test_channel_lifecycle(cli: CliRunner) -> None:
    name = f"openai-{uuid.uuid4().hex[:6]}"
    channel_id = invoke(
        cli,
        "channel",
        "add",
        "--name",
        name,
        "--provider",
        "openai",
        "--base-url",
        "https://api.example.com/v1",
        "--api-key",
        "sk-secret-upstream",
        "--model",
        "gpt-4o",
        "--model",
        "fast=gpt-4o-mini",
    )
    assert re.fullmatch(r"ch_[0-9A-Z]{26}", channel_id)
    listing = invoke(cli, "channel", "list")
    assert "ch_local" in listing and "local-chat" in listing
    line = next(line for line in listing.splitlines() if name in line)
    assert "gpt-4o, fast=gpt-4o-mini" in line
    assert "sk-secret-upstream" not in listing
    assert invoke(cli, "channel", "remove", name) == channel_id
    assert name not in invoke(cli, "channel", "list")


def test_channel_add_says_the_next_step_for_models_without_a_price(cli: CliRunner) -> None:
    name, model = f"priced-{uuid.uuid4().hex[:6]}", f"m-{uuid.uuid4().hex[:6]}"
    invoke(cli, "price", "set", f"{model}-priced", "--input", "1", "--output", "2")
    get_settings.cache_clear()
    args = ["channel", "add", "--name", name, "--provider", "openai", "--base-url", "https://api.example.com/v1"]
    result = cli.invoke(main, [*args, "--model", model, "--model", f"{model}-priced"])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"ch_[0-9A-Z]{26}", result.stdout.strip())  # stdout stays scriptable
    assert f"Next: price {model};" in result.stderr and "403 model_not_priced" in result.stderr
    assert f"heytoken price set {model} --input" in result.stderr and f"{model}-priced " not in result.stderr


def test_account_list_shows_balances(cli: CliRunner) -> None:
    name = f"team-{uuid.uuid4().hex[:6]}"
    invoke(cli, "account", "create", name)
    invoke(cli, "topup", name, "12.5")
    line = next(line for line in invoke(cli, "account", "list").splitlines() if f"\t{name}\t" in line)
    assert "\t$12.500000\t" in line


@pytest.mark.parametrize(
    "args",
    [
        ["key", "create", "--account", "no-such-account"],
        ["account", "create", "bad name with spaces"],
        ["channel", "add", "--name", "x", "--provider", "nope", "--base-url", "https://a", "--model", "m"],
        ["channel", "add", "--name", "x", "--provider", "openai", "--base-url", "ftp://a", "--model", "m"],
        ["key", "revoke", "key_missing"],
    ],
)
def test_errors_exit_nonzero_with_a_message(cli: CliRunner, args: list[str]) -> None:
    get_settings.cache_clear()
    result = cli.invoke(main, args)
    assert result.exit_code != 0
    assert result.stdout == ""
    assert "Error:" in result.stderr and "Traceback" not in result.stderr


def test_duplicate_account_is_refused(cli: CliRunner) -> None:
    name = f"dup-{uuid.uuid4().hex[:6]}"
    invoke(cli, "account", "create", name)
    get_settings.cache_clear()
    result = cli.invoke(main, ["account", "create", name])
    assert result.exit_code != 0 and "already exists" in result.stderr


def test_money_commands(cli: CliRunner) -> None:
    name = f"payer-{uuid.uuid4().hex[:6]}"
    invoke(cli, "account", "create", name)
    assert invoke(cli, "topup", name, "10.50", "--reason", "invoice 42") == "$10.500000"
    assert invoke(cli, "adjust", name, "-0.50", "--reason", "refund of a double charge") == "$10.000000"
    ledger = invoke(cli, "ledger", "show", name)
    assert ledger.splitlines()[0] == "balance $10.000000"
    assert "adjustment\t-$0.500000" in ledger and "topup\t$10.500000" in ledger
    assert "ok" in invoke(cli, "ledger", "verify")

    model = f"gpt-{uuid.uuid4().hex[:6]}"
    assert (
        invoke(
            cli,
            "price",
            "set",
            model,
            "--input",
            "2.50",
            "--output",
            "10",
            "--image",
            "1024x1024/hd=0.08",
            "--video-second",
            "0.1",
        )
        == model
    )
    line = next(line for line in invoke(cli, "price", "list").splitlines() if line.startswith(model))
    assert "input=$2.500000/M" in line and "image[1024x1024/hd]=$0.080000" in line and "video=$0.100000/s" in line
    assert invoke(cli, "price", "remove", model) == model

    codes = invoke(cli, "code", "create", "--amount", "5", "--count", "3").splitlines()
    assert len(set(codes)) == 3 and all(re.fullmatch(r"HT(-[A-Z0-9]{4}){4}", c) for c in codes)

    account_id = invoke(cli, "limits", "--account", name, "--rpm", "5", "--tpm", "0", "--streams", "inherit")
    assert account_id.startswith("acct_")
    assert invoke(cli, "tier", "set", "silver", "--multiplier", "0.9") == "silver"
    assert "silver\tmultiplier=0.9" in invoke(cli, "tier", "list")
    assert invoke(cli, "account", "suspend", name) == account_id
    assert invoke(cli, "account", "resume", name) == account_id


@pytest.mark.parametrize(
    "args",
    [
        ["topup", "nobody", "5"],
        ["topup", "x", "five"],
        ["adjust", "x", "1", "--reason", ""],
        ["limits", "--rpm", "5"],
        ["limits", "--key", "key_x", "--rpm", "lots"],
    ],
)
def test_money_errors_exit_nonzero(cli: CliRunner, args: list[str]) -> None:
    get_settings.cache_clear()
    result = cli.invoke(main, args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output


def test_channel_update_enable_disable_models_and_cooldowns(cli: CliRunner, settings: Settings) -> None:
    name = f"upd-{uuid.uuid4().hex[:6]}"
    channel_id = invoke(
        cli,
        "channel",
        "add",
        "--name",
        name,
        "--provider",
        "anthropic",
        "--base-url",
        "https://api.example.com/v1",
        "--model",
        "claude",
        "--option",
        "first_byte_timeout=12.5",
    )
    assert invoke(cli, "channel", "update", name, "--priority", "7", "--weight", "3", "--option", "idle_timeout=4") == (
        channel_id
    )
    line = next(line for line in invoke(cli, "channel", "list").splitlines() if name in line)
    assert "priority=7" in line and "weight=3" in line and "anthropic" in line
    invoke(cli, "channel", "disable", name)
    assert "(disabled)" in next(line for line in invoke(cli, "channel", "list").splitlines() if name in line)
    invoke(cli, "channel", "enable", name)
    invoke(cli, "channel", "models", name, "--add", "haiku=claude-3-5-haiku", "--remove", "claude")
    line = next(line for line in invoke(cli, "channel", "list").splitlines() if name in line)
    assert "haiku=claude-3-5-haiku" in line and "claude," not in line

    # A cooldown written by any process is listed with its reason, and can be ended.
    import asyncio

    from redis.asyncio import Redis

    from app.channels.cooldowns import Keys

    async def open_cooldown() -> None:
        redis = Redis.from_url(settings.redis_url)
        state = '{"until_ms": 99999999999999, "level": 0, "reason": "Upstream answered 500: boom", "status": 500}'
        await redis.hset(Keys(settings.redis_prefix).board, channel_id, state)
        await redis.aclose()

    asyncio.run(open_cooldown())
    listing = invoke(cli, "channel", "cooldowns")
    assert f"{channel_id}\t{name}\tcooling_down" in listing and "Upstream answered 500: boom" in listing
    assert invoke(cli, "channel", "reset-cooldown", name) == channel_id
    assert channel_id not in invoke(cli, "channel", "cooldowns")

    get_settings.cache_clear()
    result = cli.invoke(main, ["channel", "update", name, "--option", "idle_timeout=-3"])
    assert result.exit_code != 0 and "idle_timeout" in result.stderr
    assert invoke(cli, "channel", "remove", name) == channel_id
