"""What can go wrong talking to an upstream, in one small tree (status → class in one function).

ProviderError
├── UpstreamUnavailable     5xx, 408/409, a stream cut short, a garbled answer  (transient: fail over)
│   ├── UpstreamConnectError the connection failed or was refused              (transient: fail over)
│   ├── UpstreamRateLimited 429 (carries retry_after)                         (transient: fail over)
│   └── UpstreamTimeout     connect, first byte, idle or total limit passed     (transient: fail over)
└── UpstreamRejected        any other 4xx: the request itself is wrong          (permanent: pass through,
                            except 401/403, the channel's own credentials, which app.channels.routing fails over)
"""

from __future__ import annotations

from typing import Any

import msgspec


class ProviderError(Exception):
    outcome = "upstream_error"
    """How the attempt reads in a job's attempts log."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.error = error
        """The upstream's own OpenAI-shaped error object, when it sent one."""


class UpstreamUnavailable(ProviderError):
    pass


class UpstreamConnectError(UpstreamUnavailable):
    outcome = "connect_error"


class UpstreamRateLimited(UpstreamUnavailable):
    outcome = "rate_limited"


class UpstreamTimeout(UpstreamUnavailable):
    outcome = "timeout"

    def __init__(self, message: str, *, reason: str = "timeout") -> None:
        super().__init__(message)
        self.reason = reason
        """connect, first_byte, idle or total."""


class UpstreamRejected(ProviderError):
    outcome = "rejected"


def parse_retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    return None


def _error_object(body: bytes) -> dict[str, Any] | None:
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if isinstance(decoded, dict):
        err = decoded.get("error")
        if isinstance(err, dict):
            return err
        if isinstance(err, str):
            return {"message": err}
        if isinstance(decoded.get("message"), str):
            return {"message": decoded["message"]}
    return None


def from_status(status: int, body: bytes, headers: Any) -> ProviderError:
    err = _error_object(body[:65536])
    detail = (err or {}).get("message") or body[:200].decode("utf-8", "replace").strip() or f"HTTP {status}"
    message = f"Upstream answered {status}: {detail}"
    if status == 429:
        return UpstreamRateLimited(message, status=status, retry_after=parse_retry_after(headers), error=err)
    if status >= 500 or status in (408, 409):
        return UpstreamUnavailable(message, status=status, retry_after=parse_retry_after(headers), error=err)
    return UpstreamRejected(message, status=status, error=err)
