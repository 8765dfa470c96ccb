"""Each account's signing secret, and the Standard Webhooks signature every delivery carries.

A secret is `whsec_` + base64(32 random bytes): both the `standardwebhooks` library and the OpenAI
SDK's `webhooks.unwrap` derive the same key from that form (the SDK uses a secret without the prefix
as raw bytes, so the prefix matters). It is created on demand (the first time the account asks for it
or a delivery needs it), shown once, and stored encrypted with the instance secret. A rotation keeps
the previous secret signing for an overlap: both signatures go in the one `webhook-signature` header.

Functions take a session and never commit; the caller's unit of work does.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from sqlalchemy import update
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession
from standardwebhooks import Webhook

from app.core import crypto
from app.core.db import dialect_insert, utcnow
from app.core.errors import Conflict
from app.webhooks.models import WebhookSecret

SECRET_PREFIX = "whsec_"
SECRETS = SQLModel.metadata.tables[WebhookSecret.__tablename__]


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` for each secret,
    space-separated (Standard Webhooks' form for rotations)."""
    at = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return " ".join(Webhook(secret).sign(msg_id, at, body.decode()) for secret in secrets_)


async def _current(session: AsyncSession, account_id: str) -> WebhookSecret | None:
    return await session.get(WebhookSecret, account_id, populate_existing=True)


async def ensure_secret(session: AsyncSession, account_id: str, key: bytes) -> WebhookSecret:
    """The account's secret, created (unrevealed) if it has none. Safe under concurrency: of two
    creators, the insert of the second does nothing and both read the first's secret."""
    existing = await _current(session, account_id)
    if existing is not None:
        return existing
    conn = await session.connection()
    insert = dialect_insert(conn)
    values = {"account_id": account_id, "secret": crypto.encrypt(key, new_secret()), "created_at": utcnow()}
    await conn.execute(insert(SECRETS).on_conflict_do_nothing(index_elements=["account_id"]), values)
    row = await _current(session, account_id)
    assert row is not None
    return row


async def signing_secrets(session: AsyncSession, account_id: str, key: bytes) -> list[str]:
    """Every secret that signs now: the current one, and the previous one during its overlap."""
    row = await ensure_secret(session, account_id, key)
    found = [crypto.decrypt(key, row.secret)]
    if row.previous_secret and row.previous_expires_at and row.previous_expires_at > utcnow():
        found.append(crypto.decrypt(key, row.previous_secret))
    return found


async def reveal(session: AsyncSession, account_id: str, key: bytes) -> tuple[WebhookSecret, str]:
    """Show the current secret, once (creating it if needed). 409 once it has been shown: the
    account rotates to get a new one."""
    await ensure_secret(session, account_id, key)
    result = await session.exec(
        update(WebhookSecret)
        .where(col(WebhookSecret.account_id) == account_id, col(WebhookSecret.revealed_at).is_(None))
        .values(revealed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise Conflict(
            "The webhook signing secret was already shown once. Rotate it (POST /v1/webhooks/secret/rotate) "
            "to get a new one.",
            code="webhook_secret_already_shown",
        )
    revealed = await _current(session, account_id)
    assert revealed is not None
    return revealed, crypto.decrypt(key, revealed.secret)


async def rotate(session: AsyncSession, account_id: str, key: bytes, overlap_seconds: int) -> tuple[WebhookSecret, str]:
    """Replace the secret with a new one (returned, shown this once); the old one keeps signing for
    `overlap_seconds`. A rotation during an overlap ends the older secret's overlap at once."""
    row = await ensure_secret(session, account_id, key)
    plaintext = new_secret()
    now = utcnow()
    result = await session.exec(
        update(WebhookSecret)
        .where(col(WebhookSecret.account_id) == account_id, col(WebhookSecret.secret) == row.secret)
        .values(
            secret=crypto.encrypt(key, plaintext),
            created_at=now,
            revealed_at=now,
            previous_secret=row.secret if overlap_seconds > 0 else None,
            previous_expires_at=now + dt.timedelta(seconds=overlap_seconds) if overlap_seconds > 0 else None,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise Conflict("The secret is being rotated by another request; try again.", code="webhook_secret_busy")
    updated = await _current(session, account_id)
    assert updated is not None
    return updated, plaintext


async def describe(session: AsyncSession, account_id: str) -> WebhookSecret | None:
    return await _current(session, account_id)
