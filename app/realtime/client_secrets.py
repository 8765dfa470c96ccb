"""Client secrets: short-lived credentials a browser may hold instead of an API key.

A secret is the minting key, the one model it may open and its expiry, encrypted and authenticated
with the instance secret (app/core/crypto.py): nothing is stored, a secret cannot be read or altered
by its holder, and the key is checked again when the secret is used (a revoked key's secrets stop working).
Its prefix `ek_` is not an API key's `sk-ht-`, so every route but /v1/realtime refuses it (401).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgspec

from app.core.crypto import decrypt, encrypt
from app.core.errors import AuthenticationFailed, InvalidRequest, PermissionDenied

PREFIX = "ek_"
DEFAULT_SECONDS = 60


class _Claims(msgspec.Struct, frozen=True):
    k: str
    m: str
    e: int


@dataclass(frozen=True, slots=True)
class ClientSecret:
    value: str
    expires_at: int
    model: str


def mint(secret_key: bytes, api_key: str, model: str, seconds: int, max_seconds: int) -> ClientSecret:
    if not 10 <= seconds <= max_seconds:
        raise InvalidRequest(
            f"expires_after.seconds must be between 10 and {max_seconds}.", param="expires_after.seconds"
        )
    expires_at = int(time.time()) + seconds
    token = encrypt(secret_key, msgspec.json.encode(_Claims(api_key, model, expires_at)).decode())
    # Without base64's padding: the value travels in a WebSocket subprotocol, where "=" may not appear.
    return ClientSecret(PREFIX + token.rstrip("="), expires_at, model)


def is_client_secret(token: str) -> bool:
    return token.startswith(PREFIX)


def open_secret(secret_key: bytes, token: str, model: str | None) -> str:
    """The API key behind a client secret for a session of `model`, or 401/403."""
    try:
        claims = msgspec.json.decode(decrypt(secret_key, token[len(PREFIX) :]), type=_Claims)
    except (ValueError, msgspec.DecodeError):
        raise AuthenticationFailed("Incorrect client secret provided.", code="invalid_client_secret") from None
    if claims.e < time.time():
        raise AuthenticationFailed("The client secret has expired.", code="client_secret_expired")
    if model is not None and model != claims.m:
        raise PermissionDenied(
            f"This client secret is for the model '{claims.m}' only.",
            param="model",
            code="client_secret_model_mismatch",
        )
    return claims.k


class ExpiresAfter(msgspec.Struct, kw_only=True):
    anchor: str = "created_at"
    seconds: int = DEFAULT_SECONDS


class SecretSession(msgspec.Struct, kw_only=True):
    type: str = "realtime"
    model: str


class ClientSecretRequest(msgspec.Struct, kw_only=True):
    """POST /v1/realtime/client_secrets (OpenAI's shape; other session fields are the client's to send
    in `session.update` once connected)."""

    session: SecretSession
    expires_after: ExpiresAfter | None = None


class ClientSecretObject(msgspec.Struct, kw_only=True):
    value: str
    expires_at: int
    session: dict[str, str]
