"""jobs.cache_status, jobs.cache_saved: the response cache's outcome and what it saved;
accounts.cache_ttl_seconds, api_keys.cache_ttl_seconds: the cache's default per account and key (issue #22)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 18:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cache_status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
        batch_op.add_column(sa.Column("cache_saved", sa.BigInteger(), nullable=True))
    for table in ("accounts", "api_keys"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("cache_ttl_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    for table in ("api_keys", "accounts"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("cache_ttl_seconds")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("cache_saved")
        batch_op.drop_column("cache_status")
