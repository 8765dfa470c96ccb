"""Checking the signatures vendors put on their callbacks (the web process checks; the body is raw bytes).

- Replicate signs the Standard Webhooks way: headers `webhook-id`, `webhook-timestamp` (Unix seconds)
  and `webhook-signature` (space-separated `v1,<base64>`), HMAC-SHA256 over `id.timestamp.body` keyed
  with the base64 part of the channel's `whsec_…` secret (Replicate's `GET /v1/webhooks/default/secret`).
- fal signs with ED25519: headers `x-fal-webhook-request-id`, `-user-id`, `-timestamp` and `-signature`
  (hex); the message is those three values and the hex SHA-256 of the body, joined by newlines; the
  public keys are fal's JWKS (`keys[].x`, base64url), fetched and cached by `JwksKeys`.

Both refuse a timestamp further than `max_age` seconds from our clock (a replayed callback).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import time
from collections.abc import Mapping

import aiohttp
import msgspec

log = logging.getLogger("heytoken.providers.signatures")

Headers = Mapping[str, str]
"""The request's headers, names in lower case."""
JWKS_TTL = 86_400.0
JWKS_REFRESH_FLOOR = 60.0
"""After a failed check, the keys are fetched again (a rotation), at most this often."""


def _fresh(timestamp: str, now: float, max_age: float) -> bool:
    try:
        return abs(now - int(timestamp)) <= max_age
    except ValueError:
        return False


def verify_standard_webhook(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float, max_age: float
) -> bool:
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not msg_id or not signatures or not _fresh(timestamp, now, max_age):
        return False
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        log.error("callback.replicate_secret_unreadable (expected whsec_ followed by base64)")
        return False
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
    for entry in signatures.split():
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return True
    return False


def fal_message(headers: Headers, body: bytes) -> bytes | None:
    parts = [headers.get(f"x-fal-webhook-{name}", "") for name in ("request-id", "user-id", "timestamp")]
    if not all(parts):
        return None
    return "\n".join([*parts, hashlib.sha256(body).hexdigest()]).encode()


def verify_fal(keys: list[bytes], headers: Headers, body: bytes, *, now: float, max_age: float) -> bool:
    message = fal_message(headers, body)
    if message is None or not _fresh(headers.get("x-fal-webhook-timestamp", ""), now, max_age):
        return False
    try:
        signature = bytes.fromhex(headers.get("x-fal-webhook-signature", ""))
    except ValueError:
        return False
    # PyNaCl (libsodium) is imported by the first fal callback, not by every web process at start-up.
    from nacl.exceptions import CryptoError
    from nacl.signing import VerifyKey

    for raw in keys:
        try:
            VerifyKey(raw).verify(message, signature)
            return True
        except (CryptoError, ValueError, TypeError):  # a bad signature is a CryptoError
            continue
    return False


class JwksKeys:
    """A vendor's ED25519 public keys from its JWKS URL, cached for a day, fetched again (at most once
    a minute) when a signature did not verify with the cached ones."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url
        self._keys: list[bytes] = []
        self._fetched = 0.0

    async def keys(self, *, refresh: bool = False) -> list[bytes]:
        age = time.monotonic() - self._fetched
        if not self._keys or age > JWKS_TTL or (refresh and age > JWKS_REFRESH_FLOOR):
            await self._fetch()
        return self._keys

    async def _fetch(self) -> None:
        try:
            async with self._session.get(self._url, timeout=aiohttp.ClientTimeout(total=10)) as response:
                response.raise_for_status()
                jwks = msgspec.json.decode(await response.read())
        except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
            log.warning("callback.jwks_fetch_failed url=%s error=%s", self._url, exc)
            return
        keys = []
        for jwk in jwks.get("keys") or [] if isinstance(jwks, dict) else []:
            if isinstance(jwk, dict) and jwk.get("crv") == "Ed25519" and isinstance(jwk.get("x"), str):
                keys.append(base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4)))
        self._keys, self._fetched = keys, time.monotonic()
