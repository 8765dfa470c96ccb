"""`x-ratelimit-*` response headers, formatted as OpenAI sends them (durations like `6m0s`, `20ms`)."""

from __future__ import annotations


def go_duration(ms: int) -> str:
    """Milliseconds as a Go duration string, OpenAI's format: 20ms, 1s, 1.5s, 6m0s, 1h2m3s."""
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = rest / 1000
    sec = f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{sec}"
    if minutes:
        return f"{minutes}m{sec}"
    return sec


def rate_headers(
    rpm: int, rpm_remaining: int, rpm_reset_ms: int, tpm: int, tpm_remaining: int, tpm_reset_ms: int
) -> list[tuple[bytes, bytes]]:
    """The request and token trios; a limit that is switched off (0) has no headers."""
    out: list[tuple[bytes, bytes]] = []
    if rpm:
        out += [
            (b"x-ratelimit-limit-requests", str(rpm).encode()),
            (b"x-ratelimit-remaining-requests", str(rpm_remaining).encode()),
            (b"x-ratelimit-reset-requests", go_duration(rpm_reset_ms).encode()),
        ]
    if tpm:
        out += [
            (b"x-ratelimit-limit-tokens", str(tpm).encode()),
            (b"x-ratelimit-remaining-tokens", str(tpm_remaining).encode()),
            (b"x-ratelimit-reset-tokens", go_duration(tpm_reset_ms).encode()),
        ]
    return out
