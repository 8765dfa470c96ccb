"""ULIDs: Crockford base32 of 48 time bits and 80 random bits, time-ordered."""

from __future__ import annotations

import re
import time

from app.core import ids

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _reference(value: int) -> str:
    """The plain 5-bits-at-a-time encoding the table-driven one must match."""
    out = []
    for _ in range(26):
        out.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


def test_ulid_matches_the_digit_by_digit_encoding(monkeypatch) -> None:
    for ms, rand in [(0, bytes(10)), (2**48 - 1, b"\xff" * 10), (1_764_000_000_000, bytes(range(10)))]:
        monkeypatch.setattr(ids.time, "time", lambda ms=ms: ms / 1000)
        monkeypatch.setattr(ids.os, "urandom", lambda n, rand=rand: rand)
        expected = _reference((ms << 80) | int.from_bytes(rand, "big"))
        assert ids.ulid() == expected


def _decode_ms(value: str) -> int:
    ms = 0
    for char in value[:10]:
        ms = ms * 32 + _CROCKFORD.index(char)
    return ms


def test_ulid_format_and_time_order() -> None:
    before = int(time.time() * 1000)
    first = ids.ulid()
    second = ids.ulid()
    after = int(time.time() * 1000)
    assert re.fullmatch(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", first)
    assert before <= _decode_ms(first) <= _decode_ms(second) <= after
    assert first[:10] <= second[:10]
    assert ids.new_id("job_").startswith("job_") and len(ids.new_id("job_")) == 30
