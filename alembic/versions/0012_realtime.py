"""prices.audio_input_per_mtok, prices.audio_output_per_mtok: realtime audio token prices

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-06 18:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audio_input_per_mtok", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("audio_output_per_mtok", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.drop_column("audio_output_per_mtok")
        batch_op.drop_column("audio_input_per_mtok")
