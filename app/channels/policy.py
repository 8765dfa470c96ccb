"""Per-channel timeouts and cooldown rules: the settings' defaults, overridden by channel options.

Built once per route when the catalog loads, so a request reads plain attributes and never parses
options on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp

from app.core.errors import InvalidRequest
from app.core.settings import Settings

# Channel option → (Settings field, must be an integer). All values are positive numbers (seconds, counts).
OPTION_DEFAULTS: dict[str, tuple[str, bool]] = {
    "connect_timeout": ("upstream_connect_timeout", False),
    "first_byte_timeout": ("upstream_first_byte_timeout", False),
    "idle_timeout": ("upstream_idle_timeout", False),
    "total_timeout": ("upstream_total_timeout", False),
    "stream_total_timeout": ("upstream_stream_total_timeout", False),
    "cooldown_failures": ("cooldown_failures", True),
    "cooldown_window_seconds": ("cooldown_window_seconds", False),
    "cooldown_seconds": ("cooldown_seconds", False),
    "cooldown_max_seconds": ("cooldown_max_seconds", False),
}


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    connect_timeout: float = 5.0
    first_byte_timeout: float = 60.0
    idle_timeout: float = 60.0
    total_timeout: float = 60.0
    stream_total_timeout: float = 600.0
    cooldown_failures: int = 3
    cooldown_window_seconds: float = 60.0
    cooldown_seconds: float = 5.0
    cooldown_max_seconds: float = 60.0
    http_timeout: aiohttp.ClientTimeout = field(default_factory=lambda: _http_timeout(5.0, 60.0))
    """What the client enforces itself: connect (waiting for a pooled connection included), and a read
    backstop. The exact first-byte, idle and total limits are enforced by app.core.deadlines, which aiohttp's
    sock_read cannot do: it has one read timeout for the response headers and every later chunk alike."""

    @classmethod
    def build(cls, settings: Settings, options: dict[str, Any]) -> ChannelPolicy:
        values: dict[str, Any] = {}
        for option, (setting, integer) in OPTION_DEFAULTS.items():
            value = options.get(option, getattr(settings, setting))
            values[option] = int(value) if integer else float(value)
        longest_silence = max(values["first_byte_timeout"], values["idle_timeout"], values["total_timeout"])
        # One second over our own limits, so the deadline (with its precise message) normally fires first.
        values["http_timeout"] = _http_timeout(values["connect_timeout"], longest_silence + 1)
        return cls(**values)


def _http_timeout(connect: float, read: float) -> aiohttp.ClientTimeout:
    # No write timeout in aiohttp: sending the request body is bounded by the deadlines (app.core.deadlines)
    # like the rest of the attempt.
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect, sock_read=read)


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """Refuse policy options that are not positive numbers (before they reach the database)."""
    for option, (_, integer) in OPTION_DEFAULTS.items():
        if option not in options:
            continue
        value = options[option]
        kind = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
            what = "a positive integer" if integer else "a positive number of seconds"
            raise InvalidRequest(f"Channel option {option!r} must be {what}.", param=f"options.{option}")
    return options


DEFAULT_POLICY = ChannelPolicy()
