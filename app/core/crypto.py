"""Symmetric encryption of stored secrets (channel API keys, webhook signing secrets) and of realtime
client secrets, with the instance secret.

A secret is sealed with libsodium's secretbox (XSalsa20-Poly1305 through PyNaCl: a random 24-byte
nonce each time, authenticated, its key derived from the instance secret), written `n1.` + unpadded
base64url. PyNaCl adds 1.4 MB to a process; cryptography's Fernet, used before, added 10 MB to every
web process, which decrypts each channel's key when it loads its catalog (issue #23, bench/RESULTS.md).

A Fernet token (`gAAAA…`) sealed before still opens, through cryptography imported by the first such
token; migration 0017 re-seals the stored ones, so a migrated instance never loads it. Both are
imported by their first use, not by every process that imports this module.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet
    from nacl.secret import SecretBox

SEALED = "n1."
"""Marks a secretbox token. Fernet tokens start with `gAAAA` (their version byte), so the two never mix."""

UNREADABLE = "a stored secret cannot be decrypted: was HEYTOKEN_SECRET_KEY changed?"


@functools.lru_cache(maxsize=8)
def _box(secret_key: bytes) -> SecretBox:
    from nacl.secret import SecretBox

    return SecretBox(hashlib.sha256(b"heytoken.secretbox|" + secret_key).digest())


@functools.lru_cache(maxsize=8)
def _fernet(secret_key: bytes) -> Fernet:
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"heytoken.secrets|" + secret_key).digest()))


def encrypt(secret_key: bytes, plaintext: str) -> str:
    """A token with no `=` (it may travel in a WebSocket subprotocol) and only URL-safe characters."""
    sealed = bytes(_box(secret_key).encrypt(plaintext.encode()))
    return SEALED + base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def decrypt(secret_key: bytes, token: str) -> str:
    """The plaintext of a token from `encrypt` (or a Fernet token from before), with or without its
    base64 padding; ValueError if it was altered or sealed with another instance secret."""
    if not token.startswith(SEALED):
        return _decrypt_fernet(secret_key, token)
    from nacl.exceptions import CryptoError

    body = token[len(SEALED) :].rstrip("=")
    try:
        sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return _box(secret_key).decrypt(sealed).decode()
    except (binascii.Error, CryptoError, UnicodeDecodeError) as exc:
        raise ValueError(UNREADABLE) from exc


def is_legacy(token: str) -> bool:
    """Whether `token` was sealed with Fernet, before secretbox (migration 0017 re-seals those)."""
    return not token.startswith(SEALED)


def _decrypt_fernet(secret_key: bytes, token: str) -> str:
    fernet = _fernet(secret_key)
    from cryptography.fernet import InvalidToken  # imported by _fernet() already

    body = token.rstrip("=")  # given without its padding too (a realtime client secret drops it)
    try:
        return fernet.decrypt((body + "=" * (-len(body) % 4)).encode()).decode()
    except (InvalidToken, UnicodeDecodeError) as exc:
        raise ValueError(UNREADABLE) from exc


def encrypt_legacy(secret_key: bytes, plaintext: str) -> str:
    """A Fernet token, as this module made before secretbox: for migration 0017's downgrade only."""
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()
