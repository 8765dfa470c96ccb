"""the house account: where usage beyond a request's hold is booked (never to the customer)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 15:30:00.000000
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOUSE_ID = "acct_house"  # app.billing.models.HOUSE_ACCOUNT_ID (migrations do not import the app's constants)


def upgrade() -> None:
    accounts = sa.table(
        "accounts",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("status", sa.String),
        sa.column("tier", sa.String),
        sa.column("balance", sa.BigInteger),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        accounts,
        [
            {
                "id": HOUSE_ID,
                "name": "__house__",
                # Suspended: no key of it may ever spend; its balance is minus what overruns cost.
                "status": "suspended",
                "tier": "default",
                "balance": 0,
                "created_at": dt.datetime.now(dt.UTC),
            }
        ],
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM ledger_entries WHERE account_id = :id").bindparams(id=HOUSE_ID))
    op.execute(sa.text("DELETE FROM accounts WHERE id = :id").bindparams(id=HOUSE_ID))
