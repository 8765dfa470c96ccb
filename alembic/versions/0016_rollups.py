"""usage_rollups (the job log summed by account, day, model, latency bucket); jobs: media indexes partial,
an index by age for the job log's retention

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 18:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOG_ROW = sa.text("stage IS NULL")
MEDIA_ROW = sa.text("stage IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "usage_rollups",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "day", "model", "bucket"),
    )
    # The rows already written, rolled up once (their latencies unknown: bucket -1), so that
    # /v1/usage answers the same across the upgrade.
    if op.get_bind().dialect.name == "postgresql":
        day = "to_char(timezone('UTC', created_at), 'YYYY-MM-DD')"
    else:
        day = "substr(created_at, 1, 10)"
    op.execute(
        "INSERT INTO usage_rollups (account_id, day, model, bucket, requests, prompt_tokens, completion_tokens, cost)"
        f" SELECT account_id, {day}, model, -1, count(*), coalesce(sum(prompt_tokens), 0),"
        " coalesce(sum(completion_tokens), 0), coalesce(sum(cost), 0)"
        f" FROM jobs WHERE stage IS NULL GROUP BY account_id, {day}, model"
    )
    op.drop_index("ix_jobs_account_created", table_name="jobs")
    op.drop_index("ix_jobs_kind_account_id", table_name="jobs")
    op.drop_index("ix_jobs_next_poll_at", table_name="jobs")
    where = {"sqlite_where": MEDIA_ROW, "postgresql_where": MEDIA_ROW}
    op.create_index("ix_jobs_media_account_created", "jobs", ["account_id", "created_at"], **where)
    op.create_index("ix_jobs_media_kind_account_id", "jobs", ["kind", "account_id", "id"], **where)
    op.create_index("ix_jobs_media_stage_poll", "jobs", ["stage", "next_poll_at"], **where)
    op.create_index("ix_jobs_log_created", "jobs", ["created_at"], sqlite_where=LOG_ROW, postgresql_where=LOG_ROW)


def downgrade() -> None:
    op.drop_index("ix_jobs_log_created", table_name="jobs")
    op.drop_index("ix_jobs_media_stage_poll", table_name="jobs")
    op.drop_index("ix_jobs_media_kind_account_id", table_name="jobs")
    op.drop_index("ix_jobs_media_account_created", table_name="jobs")
    op.create_index("ix_jobs_next_poll_at", "jobs", ["next_poll_at"])
    op.create_index("ix_jobs_kind_account_id", "jobs", ["kind", "account_id", "id"])
    op.create_index("ix_jobs_account_created", "jobs", ["account_id", "created_at"])
    op.drop_table("usage_rollups")
