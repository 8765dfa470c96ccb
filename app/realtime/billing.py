"""A realtime session's money: a rolling hold that covers the next response, and a capture at each
`response.done`, at once.

The hold is sized for the next response's worst case: the whole conversation so far read again as
input (an upstream re-reads its context), the input added since, and `max_output_tokens` of output
(which the gateway sends upstream). A capture never exceeds the hold it consumes; what an upstream's
usage costs beyond it is booked to the house (as for chat). So a balance never goes below zero.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.accounts.auth import Principal
from app.accounts.limits import Limits
from app.billing import ledger
from app.billing.limits.service import Admission, Gate
from app.billing.models import HOUSE_ACCOUNT_ID, EntryKind
from app.core.money import BP, UNITS_PER_USD, ModelPrice, ceil_div
from app.core.settings import Settings
from app.jobs.models import JOBS
from app.realtime.schemas import RealtimeUsage

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

_UNLIMITED = Limits(0, 0, 0, 0)


def realtime_cost(price: ModelPrice, usage: RealtimeUsage, multiplier_bp: int = BP) -> int:
    """Micro-dollars for one response: cached input at the cached price (taken from text tokens
    first), audio at the audio prices (falling back to the text prices), rounded up once."""
    text_in, audio_in = usage.text_in, usage.audio_in
    cached = min(usage.cached_in, text_in + audio_in)
    cached_text = min(cached, text_in)
    cached_audio = cached - cached_text
    cached_rate = price.input_per_mtok if price.cached_input_per_mtok is None else price.cached_input_per_mtok
    audio_in_rate = price.input_per_mtok if price.audio_input_per_mtok is None else price.audio_input_per_mtok
    audio_out_rate = price.output_per_mtok if price.audio_output_per_mtok is None else price.audio_output_per_mtok
    raw = (
        (text_in - cached_text) * price.input_per_mtok
        + (audio_in - cached_audio) * audio_in_rate
        + cached * cached_rate
        + usage.text_out * price.output_per_mtok
        + usage.audio_out * audio_out_rate
    )
    return ceil_div(raw * multiplier_bp, UNITS_PER_USD * BP)


def worst_case(price: ModelPrice, input_tokens: int, output_tokens: int, multiplier_bp: int = BP) -> int:
    in_rate = max(price.input_per_mtok, price.audio_input_per_mtok or 0, price.cached_input_per_mtok or 0)
    out_rate = max(price.output_per_mtok, price.audio_output_per_mtok or 0)
    return ceil_div((input_tokens * in_rate + output_tokens * out_rate) * multiplier_bp, UNITS_PER_USD * BP)


@dataclass(slots=True)
class Meter:
    """The session's holds and captures. Every method is awaited by one task at a time (the session's
    relay serialises them)."""

    gate: Gate
    engine: AsyncEngine
    settings: Settings
    principal: Principal
    job_id: str
    model: str
    price: ModelPrice
    load_balance: Callable[[str], Awaitable[int]]
    holds: list[Admission] = field(default_factory=list)
    """The live holds (a response's hold grows in steps as input arrives); their sum is `held`."""
    held: int = 0
    cap: int = 0
    """The output cap the next response is held for (and the upstream told): the instance's, or the
    client's own if lower (`session.update`)."""
    responses: int = 0
    holds_taken: int = 0
    context_tokens: int = 0
    new_input_tokens: int = 0
    usage: RealtimeUsage = field(default_factory=RealtimeUsage)
    cost: int = 0
    overrun: int = 0

    def __post_init__(self) -> None:
        self.cap = self.cap or self.settings.realtime_max_output_tokens

    @property
    def priced(self) -> bool:
        return not self.price.is_free

    def needed(self) -> int:
        if not self.priced:
            return 0
        bound = self.context_tokens + self.new_input_tokens
        return worst_case(self.price, bound, self.cap, self.principal.multiplier_bp)

    def add_input(self, tokens: int) -> None:
        self.new_input_tokens += tokens

    async def ensure_hold(self) -> None:
        """Hold enough for the next response, or raise InsufficientQuota (a 402 before the session
        opens; an `error` event and a close once it is open). Only the shortfall is held anew."""
        shortfall = self.needed() - self.held
        if shortfall <= 0:
            return
        self.holds_taken += 1
        # Only the hold: the session's one request and its stream slot were counted when it opened.
        holder = dataclasses.replace(self.principal, limits=_UNLIMITED)
        ttl_ms = int((self.settings.realtime_max_session_seconds + 600) * 1000)
        hold_id = f"{self.job_id}.h{self.holds_taken}"
        load = self.load_balance
        hold = await self.gate.admit(holder, hold_id, hold=shortfall, hold_ttl_ms=ttl_ms, load_balance=load)
        self.holds.append(hold)
        self.held += shortfall

    async def capture(self, usage: RealtimeUsage) -> int:
        """Book one response: the ledger entry and the job row in one transaction, then the Redis hold
        is settled (TPM counts the response's tokens). Returns the charge."""
        self.responses += 1
        self.usage.add(usage)
        full = realtime_cost(self.price, usage, self.principal.multiplier_bp) if self.priced else 0
        charge = min(full, self.held)
        self.cost += charge
        self.overrun += full - charge
        entries = []
        n = self.responses
        if charge:
            key = f"{self.job_id}:r{n}:capture"
            account = self.principal.account_id
            entries.append(ledger.entry(account, EntryKind.CAPTURE, -charge, key, job_id=self.job_id, model=self.model))
        if full > charge:
            why = f"usage beyond the hold of {self.held} (account {self.principal.account_id})"
            key = f"{self.job_id}:r{n}:loss"
            loss = ledger.entry(HOUSE_ACCOUNT_ID, EntryKind.LOSS, charge - full, key, job_id=self.job_id, reason=why)
            entries.append(loss)
        async with self.engine.begin() as conn:
            await ledger.post_entries(conn, entries)
            await conn.execute(update(JOBS).where(JOBS.c.id == self.job_id).values(**self.job_values()))
        self.context_tokens = usage.total
        self.new_input_tokens = 0
        await self._settle(charge, usage.total)
        return charge

    async def _settle(self, charge: int, tokens: int) -> None:
        """End every live hold: the charge is taken from them in order, the rest given back; the
        response's tokens count against TPM once."""
        items, left = [], charge
        for i, hold in enumerate(self.holds):
            share = min(left, hold.hold)
            left -= share
            items.append((hold, tokens if i == 0 else 0, share, "apply"))
        self.holds, self.held = [], 0
        if items:
            await self.gate.settle_many(items)

    def job_values(self) -> dict[str, object]:
        return {
            "prompt_tokens": self.usage.input_tokens,
            "completion_tokens": self.usage.output_tokens,
            "cost": self.cost,
            "billing_state": "captured" if self.cost else None,
        }

    async def release(self) -> None:
        await self._settle(0, 0)
