"""Integer money: exact parsing, one rounding at the end, tier multipliers."""

from __future__ import annotations

import pytest

from app.core.money import (
    ModelPrice,
    format_usd,
    image_cost,
    parse_usd,
    token_cost,
    video_cost,
)


@pytest.mark.parametrize(
    ("text", "units"),
    [("10", 10_000_000), ("10.5", 10_500_000), ("$0.000001", 1), ("-0.50", -500_000), ("0.15", 150_000)],
)
def test_parse_usd_is_exact(text: str, units: int) -> None:
    assert parse_usd(text) == units
    assert parse_usd(format_usd(units)) == units


@pytest.mark.parametrize("text", ["1.0000001", "abc", "1e3", "", "1,5"])
def test_parse_usd_refuses_what_is_not_a_dollar_amount(text: str) -> None:
    with pytest.raises(ValueError, match="dollar"):
        parse_usd(text)


def test_token_cost_rounds_up_once_at_the_end() -> None:
    # $0.15 / 1M input, $0.60 / 1M output: 1,000 in + 500 out = 150 + 300 = 450 micro-dollars exactly
    price = ModelPrice(input_per_mtok=150_000, output_per_mtok=600_000)
    assert token_cost(price, 1000, 500) == 450
    # 1 token costs 0.15 micro-dollars: rounded up to 1, never 0
    assert token_cost(price, 1, 0) == 1
    # summing before rounding: 3 × 0.15 = 0.45 → 1, not 3
    assert token_cost(price, 3, 0) == 1


def test_cached_input_and_multiplier() -> None:
    price = ModelPrice(input_per_mtok=2_000_000, output_per_mtok=8_000_000, cached_input_per_mtok=500_000)
    full = token_cost(price, 1_000_000, 0)
    cached = token_cost(price, 1_000_000, 0, cached=1_000_000)
    assert (full, cached) == (2_000_000, 500_000)
    assert token_cost(price, 1_000_000, 0, multiplier_bp=8000) == 1_600_000


def test_image_and_video_prices() -> None:
    price = ModelPrice(per_image={"default": 40_000, "1024x1024/hd": 80_000, "hd": 70_000}, per_video_second=100_000)
    assert image_cost(price, 2, "1024x1024", "hd") == 160_000
    assert image_cost(price, 1, "1792x1024", "hd") == 70_000
    assert image_cost(price, 3, "512x512", "standard") == 120_000
    assert video_cost(price, 8) == 800_000
    assert video_cost(price, 8, multiplier_bp=5000) == 400_000
    sized = ModelPrice(per_video_second=100_000, per_video_second_by_size={"1792x1024": 500_000})
    assert video_cost(sized, 4, "1792x1024") == 2_000_000  # the size's own price
    assert video_cost(sized, 4, "1280x720") == 400_000  # any other size: per_video_second
    assert not ModelPrice(per_video_second_by_size={"1792x1024": 1}).is_free
    assert ModelPrice().is_free and not price.is_free
