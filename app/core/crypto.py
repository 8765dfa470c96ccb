"""Symmetric encryption of stored secrets (channel API keys, webhook signing secrets) with the instance secret.

cryptography is imported by the first secret encrypted or decrypted, not by every process that imports
this module (issue #23: ~7 MB of resident memory, docs/architecture.md "Memory"); a web process whose
channels hold no key never loads it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet


@functools.lru_cache(maxsize=8)
def _fernet(secret_key: bytes) -> Fernet:
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"heytoken.secrets|" + secret_key).digest()))


def encrypt(secret_key: bytes, plaintext: str) -> str:
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


def decrypt(secret_key: bytes, token: str) -> str:
    fernet = _fernet(secret_key)
    from cryptography.fernet import InvalidToken  # imported by _fernet() already

    try:
        return fernet.decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("a stored secret cannot be decrypted: was HEYTOKEN_SECRET_KEY changed?") from exc
