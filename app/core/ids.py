"""Public ids: a prefix and a ULID (time-ordered, so ids sort by creation and serve as list cursors)."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
"""Every 10-bit value as its two Crockford base32 characters: 13 lookups encode the 130 bits of a ULID
(the top two always zero), about three times faster than a 26-step loop over 5-bit digits."""


def ulid() -> str:
    v = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    p = _PAIRS
    return (
        p[v >> 120]
        + p[(v >> 110) & 1023]
        + p[(v >> 100) & 1023]
        + p[(v >> 90) & 1023]
        + p[(v >> 80) & 1023]
        + p[(v >> 70) & 1023]
        + p[(v >> 60) & 1023]
        + p[(v >> 50) & 1023]
        + p[(v >> 40) & 1023]
        + p[(v >> 30) & 1023]
        + p[(v >> 20) & 1023]
        + p[(v >> 10) & 1023]
        + p[v & 1023]
    )


def new_id(prefix: str) -> str:
    return f"{prefix}{ulid()}"
