"""Money as integers: 1 unit = 1 micro-dollar (0.000001 USD). No floats anywhere on the money path.

Prices are per 1M tokens, per image or per video second, in the same unit. A request's cost is the sum
of its parts times the tier multiplier (basis points), rounded up once, at the end, to a whole unit:

    cost = ceil((prompt × in + cached × cached_in + completion × out) × multiplier_bp / (10⁶ × 10⁴))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

UNITS_PER_USD = 1_000_000
BP = 10_000
_USD = re.compile(r"^(-?)\$?(\d+(?:\.\d{1,6})?)$")


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def parse_usd(text: str) -> int:
    """'10', '10.5', '$0.000001' → micro-dollars, exactly (at most six decimals)."""
    match = _USD.match(text.strip())
    if not match:
        raise ValueError(f"not a dollar amount with at most 6 decimals: {text!r}")
    try:
        return int(Decimal(match.group(1) + match.group(2)) * UNITS_PER_USD)
    except InvalidOperation as exc:
        raise ValueError(f"not a dollar amount: {text!r}") from exc


def format_usd(units: int) -> str:
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), UNITS_PER_USD)
    return f"{sign}${whole}.{frac:06d}"


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """The in-process copy of a `prices` row (the catalog carries it; no database on the hot path)."""

    input_per_mtok: int = 0
    output_per_mtok: int = 0
    cached_input_per_mtok: int | None = None
    per_image: dict[str, Any] | None = None
    per_video_second: int | None = None
    per_video_second_by_size: dict[str, int] | None = None
    max_output_tokens: int | None = None
    audio_input_per_mtok: int | None = None
    """Realtime audio input tokens (None: the text input price)."""
    audio_output_per_mtok: int | None = None
    """Realtime audio output tokens (None: the text output price)."""
    per_request: int | None = None
    """A flat price per media request (added once to the per-image or per-second cost)."""
    is_free: bool = field(init=False, default=False)
    """Decided once, when the catalog builds the price: every request asks, several times."""

    def __post_init__(self) -> None:
        free = not (
            self.input_per_mtok
            or self.output_per_mtok
            or self.cached_input_per_mtok
            or self.audio_input_per_mtok
            or self.audio_output_per_mtok
            or any((self.per_image or {}).values())
            or self.per_video_second
            or any((self.per_video_second_by_size or {}).values())
            or self.per_request
        )
        object.__setattr__(self, "is_free", free)


FREE = ModelPrice()


def token_cost(price: ModelPrice, prompt: int, completion: int, cached: int = 0, multiplier_bp: int = BP) -> int:
    cached = min(cached, prompt)
    cached_rate = price.input_per_mtok if price.cached_input_per_mtok is None else price.cached_input_per_mtok
    raw = (prompt - cached) * price.input_per_mtok + cached * cached_rate + completion * price.output_per_mtok
    return ceil_div(raw * multiplier_bp, UNITS_PER_USD * BP)


def affordable_output(price: ModelPrice, prompt: int, available: int, multiplier_bp: int = BP) -> int | None:
    """The most completion tokens whose cost, with `prompt` tokens, stays within `available`
    (None: output is free). Exact: cost ≤ A ⟺ raw × m ≤ A × 10¹⁰ ⟺ raw ≤ ⌊A × 10¹⁰ / m⌋."""
    if not price.output_per_mtok:
        return None
    budget = available * UNITS_PER_USD * BP // max(multiplier_bp, 1) - prompt * price.input_per_mtok
    return max(budget // price.output_per_mtok, 0)


def image_unit_price(price: ModelPrice, size: str | None, quality: str | None) -> int | None:
    table = price.per_image or {}
    for key in (f"{size}/{quality}", size, quality, "default"):
        if key and key in table:
            return int(table[key])
    return None


def image_cost(price: ModelPrice, n: int, size: str | None, quality: str | None, multiplier_bp: int = BP) -> int:
    unit = image_unit_price(price, size, quality) or 0
    return ceil_div((unit * n + (price.per_request or 0)) * multiplier_bp, BP)


RESOLUTIONS = {"1280x720": "720p", "720x1280": "720p", "1792x1024": "1080p", "1024x1792": "1080p"}
"""The OpenAI video sizes → the resolution vendors name and price them by (Veo: 720p, 1080p)."""


def resolution(size: str | None) -> str | None:
    """'1280x720' → '720p'; other sizes by their shorter side."""
    if size in RESOLUTIONS:
        return RESOLUTIONS[size]
    width, _, height = (size or "").partition("x")
    return f"{min(int(width), int(height))}p" if width.isdigit() and height.isdigit() else None


def video_cost(price: ModelPrice, seconds: int, size: str | None = None, multiplier_bp: int = BP) -> int:
    """seconds × the price per second at that size or its resolution (`per_video_second_by_size`, keyed
    `1792x1024` or `1080p`; else `per_video_second`), plus `per_request`."""
    by_size = price.per_video_second_by_size or {}
    unit = price.per_video_second
    for key in (size, resolution(size)):
        if key is not None and key in by_size:
            unit = by_size[key]
            break
    return ceil_div(((unit or 0) * seconds + (price.per_request or 0)) * multiplier_bp, BP)
