"""The admission and settlement scripts' arguments and answers, named once for both sides.

Each NamedTuple's fields are, in order, the script's KEYS, ARGV or returned table; the Lua files name
the same fields in the same order in their `-- KEYS:`, `-- ARGV:` and `-- RETURNS:` lines, and
tests/billing/limits/test_protocol.py fails if the two drift apart. Building a NamedTuple costs about as much
as the list it replaces, and the Lua side is unchanged at run time.
"""

from __future__ import annotations

from typing import NamedTuple


class AdmitKeys(NamedTuple):
    deny_key: str
    deny_account: str
    rpm: str
    rph: str
    tpm: str
    streams: str
    balance: str
    hold: str
    holds: str
    inflight: str
    reads: str


class AdmitArgs(NamedTuple):
    job: str
    mode: str
    """"work" | "read"."""
    rpm: int
    rph: int
    tpm: int
    tokens: int
    """Tokens to reserve against the TPM window."""
    lease: int
    """1: take a stream slot."""
    max_streams: int
    hold: int
    hold_ttl: int
    lease_ttl: int
    account: str
    reads: int
    """Reads per minute."""


class AdmitResult(NamedTuple):
    status: int
    """ADMITTED, KEY_DENIED, ACCOUNT_DENIED, LIMITED, NO_MIRROR or INSUFFICIENT."""
    detail: bytes | str
    retry_after_ms: int
    rpm_limit: int
    rpm_remaining: int
    rpm_reset_ms: int
    tpm_limit: int
    tpm_remaining: int
    tpm_reset_ms: int
    tpm_bucket: int
    balance: int


ADMITTED, KEY_DENIED, ACCOUNT_DENIED, LIMITED, NO_MIRROR, INSUFFICIENT = range(6)


class SettleKeys(NamedTuple):
    tpm: str
    streams: str
    hold: str
    holds: str
    balance: str
    inflight: str
    seq: str


class SettleArgs(NamedTuple):
    job: str
    bucket: int
    """The TPM bucket the reservation went into."""
    reserved: int
    used: int
    cost: int
    mode: str
    """"apply" (give back hold − cost) | "durable" (the database now carries the hold)."""
