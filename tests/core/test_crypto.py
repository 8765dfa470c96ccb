"""Stored secrets: sealed with secretbox, opened only with the same instance secret, and a Fernet token
sealed before migration 0017 still opens (issue #23: a web process no longer loads cryptography)."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from cryptography.fernet import Fernet

from app.core import crypto

KEY = b"instance-secret-one"


def fernet_token(secret_key: bytes, plaintext: str) -> str:
    """A token as the gateway sealed secrets before migration 0017 (its documented key derivation)."""
    key = base64.urlsafe_b64encode(hashlib.sha256(b"heytoken.secrets|" + secret_key).digest())
    return Fernet(key).encrypt(plaintext.encode()).decode()


def test_a_secret_opens_with_its_instance_secret_only() -> None:
    token = crypto.encrypt(KEY, "sk-upstream-ünïcode")
    assert crypto.decrypt(KEY, token) == "sk-upstream-ünïcode"
    assert "sk-upstream" not in token
    assert crypto.encrypt(KEY, "same") != crypto.encrypt(KEY, "same")  # a fresh nonce each time
    with pytest.raises(ValueError, match="HEYTOKEN_SECRET_KEY"):
        crypto.decrypt(b"another-instance", token)


def test_an_altered_token_does_not_open() -> None:
    token = crypto.encrypt(KEY, "sk-upstream")
    body = token[len(crypto.SEALED) :]
    flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    for bad in (crypto.SEALED + flipped, token[:-4], crypto.SEALED + "!!!", crypto.SEALED):
        with pytest.raises(ValueError, match="HEYTOKEN_SECRET_KEY"):
            crypto.decrypt(KEY, bad)


def test_a_token_fits_a_websocket_subprotocol() -> None:
    """Realtime client secrets travel in `Sec-WebSocket-Protocol`: token characters only, no `=`."""
    for length in range(0, 40):
        assert re.fullmatch(r"[A-Za-z0-9._-]+", crypto.encrypt(KEY, "x" * length))


def test_a_fernet_token_from_before_still_opens() -> None:
    legacy = fernet_token(KEY, "sk-old")
    assert crypto.is_legacy(legacy) and not crypto.is_legacy(crypto.encrypt(KEY, "sk-new"))
    assert crypto.decrypt(KEY, legacy) == "sk-old"
    assert crypto.decrypt(KEY, legacy.rstrip("=")) == "sk-old"  # as a realtime client secret carries it
    assert crypto.decrypt(KEY, crypto.encrypt_legacy(KEY, "sk-back")) == "sk-back"
    with pytest.raises(ValueError, match="HEYTOKEN_SECRET_KEY"):
        crypto.decrypt(b"another-instance", legacy)
