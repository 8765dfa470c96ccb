"""Which limits apply to a key: the key's own overrides, else the account's, else its tier's, else the
instance defaults. A limit of 0 is switched off."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LIMIT_NAMES = ("rpm", "rph", "tpm", "max_streams")


@dataclass(frozen=True, slots=True)
class Limits:
    rpm: int
    rph: int
    tpm: int
    max_streams: int

    def as_dict(self) -> dict[str, int]:
        return {"rpm": self.rpm, "rph": self.rph, "tpm": self.tpm, "max_streams": self.max_streams}


def resolve_limits(defaults: Limits, *sources: Any) -> Limits:
    """`sources` from the most specific (the key) to the least (the tier); None values inherit."""
    values = {}
    for name in LIMIT_NAMES:
        value = getattr(defaults, name)
        for source in sources:
            own = getattr(source, name, None) if source is not None else None
            if own is not None:
                value = own
                break
        values[name] = int(value)
    return Limits(**values)
