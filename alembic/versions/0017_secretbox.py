"""Re-seal the stored secrets (channel API keys, webhook signing secrets) from Fernet to secretbox

A web process then never loads cryptography (10 MB resident) to read its channels' keys (issue #23,
app/core/crypto.py). Data only; no schema change. The instance secret comes from the settings the
migration runs with (`alembic_config`), so it must be the one the secrets were sealed with: a token
that does not open is left as it was, and the process that reads it says why.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 06:10:00.000000
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa

from alembic import context, op
from app.core import crypto

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SECRETS = {"channels": ("id", ["secret_encrypted"]), "webhook_secrets": ("account_id", ["secret", "previous_secret"])}


def _secret_key() -> bytes:
    given = context.config.attributes.get("secret_key")
    if given is not None:
        return given() if callable(given) else given
    from app.core.settings import get_settings

    return get_settings().resolved_secret_key()


def _reseal(wanted: Callable[[str], bool], seal: Callable[[bytes, str], str]) -> None:
    bind = op.get_bind()
    key: bytes | None = None
    for table, (primary, columns) in SECRETS.items():
        for column in columns:
            rows = bind.execute(sa.text(f"SELECT {primary}, {column} FROM {table} WHERE {column} IS NOT NULL"))
            for row_id, token in rows.all():
                if not wanted(token):
                    continue
                key = key if key is not None else _secret_key()
                try:
                    plaintext = crypto.decrypt(key, token)
                except ValueError:
                    continue
                bind.execute(
                    sa.text(f"UPDATE {table} SET {column} = :token WHERE {primary} = :id"),
                    {"token": seal(key, plaintext), "id": row_id},
                )


def upgrade() -> None:
    _reseal(crypto.is_legacy, crypto.encrypt)


def downgrade() -> None:
    _reseal(lambda token: not crypto.is_legacy(token), crypto.encrypt_legacy)
