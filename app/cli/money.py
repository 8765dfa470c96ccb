"""`heytoken` commands for money and limits: top-ups, adjustments, prices, tiers, codes, limits, ledger.

Amounts are dollars ("10.50", at most six decimals); they are stored as integer micro-dollars.
"""

from __future__ import annotations

from typing import Any

import click

from app.cli.base import _async, main, operations
from app.core.money import format_usd, parse_usd


def _usd(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_usd(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from exc


def _limit(value: str | None) -> int | str | None:
    """'' or None: unchanged; 'inherit': back to the default; a number (0 = off)."""
    if value is None:
        return "keep"
    if value == "inherit":
        return None
    if not value.isdigit():
        raise click.BadParameter("a limit is a whole number (0 = off) or 'inherit'")
    return int(value)


@main.command("topup")
@click.argument("account")
@click.argument("amount_usd")
@click.option("--reason", default=None)
@_async
async def topup(account: str, amount_usd: str, reason: str | None) -> None:
    """Credit ACCOUNT with AMOUNT_USD; prints the new balance."""
    async with operations() as ops:
        balance = await ops.topup(account, _usd(amount_usd, "AMOUNT_USD") or 0, reason)
    click.echo(format_usd(balance))


@main.command("adjust", context_settings={"ignore_unknown_options": True})
@click.argument("account")
@click.argument("amount_usd")
@click.option("--reason", required=True)
@_async
async def adjust(account: str, amount_usd: str, reason: str) -> None:
    """Correct ACCOUNT's balance by AMOUNT_USD (negative to debit); prints the new balance."""
    async with operations() as ops:
        balance = await ops.adjust(account, _usd(amount_usd, "AMOUNT_USD") or 0, reason)
    click.echo(format_usd(balance))


@main.group()
def price() -> None:
    """Model prices (a model without one cannot be called; local models are free by default)."""


@price.command("set")
@click.argument("model")
@click.option("--input", "input_usd", default=None, help="USD per 1M input tokens.")
@click.option("--output", "output_usd", default=None, help="USD per 1M output tokens.")
@click.option("--cached-input", "cached_usd", default=None, help="USD per 1M cached input tokens.")
@click.option("--audio-input", "audio_in_usd", default=None, help="USD per 1M realtime audio input tokens.")
@click.option("--audio-output", "audio_out_usd", default=None, help="USD per 1M realtime audio output tokens.")
@click.option("--image", "images", multiple=True, help="[SIZE/QUALITY=]USD per image; repeat.")
@click.option("--video-second", "video_usd", default=None, help="USD per second of video.")
@click.option("--max-output-tokens", type=int, default=None, help="Cap used to size holds.")
@click.option("--request", "request_usd", default=None, help="USD per image or video request (flat, added).")
@_async
async def price_set(
    model: str,
    input_usd: str | None,
    output_usd: str | None,
    cached_usd: str | None,
    audio_in_usd: str | None,
    audio_out_usd: str | None,
    images: tuple[str, ...],
    video_usd: str | None,
    max_output_tokens: int | None,
    request_usd: str | None,
) -> None:
    per_image: dict[str, int] | None = None
    if images:
        per_image = {}
        for spec in images:
            key, _, value = spec.rpartition("=")
            per_image[key or "default"] = _usd(value, "--image") or 0
    async with operations() as ops:
        await ops.set_price(
            model,
            input_per_mtok=_usd(input_usd, "--input"),
            output_per_mtok=_usd(output_usd, "--output"),
            cached_input_per_mtok=_usd(cached_usd, "--cached-input"),
            audio_input_per_mtok=_usd(audio_in_usd, "--audio-input"),
            audio_output_per_mtok=_usd(audio_out_usd, "--audio-output"),
            per_image=per_image,
            per_video_second=_usd(video_usd, "--video-second"),
            max_output_tokens=max_output_tokens,
            per_request=_usd(request_usd, "--request"),
        )
    click.echo(model)


@price.command("list")
@_async
async def price_list() -> None:
    async with operations() as ops:
        for p in await ops.list_prices():
            parts = [f"input={format_usd(p.input_per_mtok)}/M", f"output={format_usd(p.output_per_mtok)}/M"]
            if p.cached_input_per_mtok is not None:
                parts.append(f"cached={format_usd(p.cached_input_per_mtok)}/M")
            if p.audio_input_per_mtok is not None:
                parts.append(f"audio_input={format_usd(p.audio_input_per_mtok)}/M")
            if p.audio_output_per_mtok is not None:
                parts.append(f"audio_output={format_usd(p.audio_output_per_mtok)}/M")
            parts += [f"image[{k}]={format_usd(int(v))}" for k, v in (p.per_image or {}).items()]
            if p.per_video_second:
                parts.append(f"video={format_usd(p.per_video_second)}/s")
            if p.per_request:
                parts.append(f"request={format_usd(p.per_request)}")
            click.echo(f"{p.model}\t" + "\t".join(parts))


@price.command("remove")
@click.argument("model")
@_async
async def price_remove(model: str) -> None:
    async with operations() as ops:
        click.echo((await ops.delete_price(model)).model)


@main.group()
def tier() -> None:
    """Tiers: a price multiplier and default limits for a class of accounts."""


@tier.command("set")
@click.argument("name")
@click.option("--multiplier", default=None, help="Price multiplier, e.g. 0.8 for 20 % off.")
@click.option("--rpm", type=int, default=None)
@click.option("--rph", type=int, default=None)
@click.option("--tpm", type=int, default=None)
@click.option("--streams", "max_streams", type=int, default=None)
@_async
async def tier_set(name: str, multiplier: str | None, **limits: Any) -> None:
    bp = None
    if multiplier is not None:
        try:
            bp = round(float(multiplier) * 10_000)
        except ValueError as exc:
            raise click.BadParameter("a number such as 0.8", param_hint="--multiplier") from exc
    async with operations() as ops:
        await ops.set_tier(name, price_multiplier_bp=bp, **limits)
    click.echo(name)


@tier.command("list")
@_async
async def tier_list() -> None:
    async with operations() as ops:
        for t in await ops.list_tiers():
            click.echo(
                f"{t.name}\tmultiplier={t.price_multiplier_bp / 10_000:g}\trpm={t.rpm}\trph={t.rph}"
                f"\ttpm={t.tpm}\tstreams={t.max_streams}"
            )


@main.command("limits")
@click.option("--key", "key_id", default=None, help="A key id (key_…).")
@click.option("--account", "account", default=None, help="An account name or id (all its keys).")
@click.option("--rpm", default=None, help="Requests per minute (0 = off, 'inherit').")
@click.option("--rph", default=None)
@click.option("--tpm", default=None)
@click.option("--streams", "max_streams", default=None)
@_async
async def limits(key_id: str | None, account: str | None, **values: str | None) -> None:
    """Override the rate limits of one key or of an account."""
    if (key_id is None) == (account is None):
        raise click.UsageError("give exactly one of --key or --account")
    changes = {k: v for k, v in ((name, _limit(raw)) for name, raw in values.items()) if v != "keep"}
    async with operations() as ops:
        target = await ops.set_limits("key" if key_id else "account", key_id or account or "", changes)  # type: ignore[arg-type]
    click.echo(target.id)


@main.group()
def code() -> None:
    """Redemption codes."""


@code.command("create")
@click.option("--amount", "amount_usd", required=True, help="Dollars each code is worth.")
@click.option("--count", default=1, show_default=True, type=int)
@click.option("--note", default=None)
@_async
async def code_create(amount_usd: str, count: int, note: str | None) -> None:
    """Print the new codes, one per line (shown once: only their hash is stored)."""
    async with operations() as ops:
        codes = await ops.create_codes(_usd(amount_usd, "--amount") or 0, count, note=note)
    for _, plaintext in codes:
        click.echo(plaintext)


@main.group()
def ledger() -> None:
    """The ledger."""


@ledger.command("show")
@click.argument("account")
@click.option("--limit", default=20, show_default=True, type=int)
@_async
async def ledger_show(account: str, limit: int) -> None:
    async with operations() as ops:
        found = await ops.get_account(account)
        click.echo(f"balance {format_usd(found.balance)}")
        for e in await ops.ledger_page(found.id, limit=limit):
            click.echo(
                f"{e.id}\t{e.created_at:%Y-%m-%d %H:%M:%S}\t{e.kind}\t{format_usd(e.amount)}\t"
                f"{e.job_id or ''}\t{e.reason or ''}"
            )


@ledger.command("verify")
@_async
async def ledger_verify() -> None:
    """Check that every account's cached balance equals the sum of its ledger entries."""
    async with operations() as ops:
        mismatches = await ops.verify_ledger()
    for account, balance, total in mismatches:
        click.echo(f"MISMATCH {account}: balance {balance} != ledger sum {total}", err=True)
    if mismatches:
        raise SystemExit(1)
    click.echo("ok: every balance equals the sum of its ledger")
