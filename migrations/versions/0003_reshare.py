"""Re-share requests: each node's view of requests to share an alert beyond its recipients.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-01

Chained to 0001, the latest revision when it was written; the id leaves 0002 to the migration
being written beside it. Whichever lands second must revise the other, so there is one head.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
STATUSES = ("pending", "approved", "denied", "executed")


def upgrade() -> None:
    op.create_table(
        "reshare_requests",
        sa.Column("node_id", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("alert_id", sa.Text(), nullable=False),
        sa.Column("border_pair", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("tlp", sa.Text(), nullable=False),
        sa.Column("origin_agency", sa.Text(), nullable=False),
        sa.Column("origin_node", sa.Text(), nullable=False),
        sa.Column("requesting_agency", sa.Text(), nullable=False),
        sa.Column("requesting_node", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("target_agency", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("restricted", sa.Boolean(), nullable=False),
        sa.Column("agreement_ids", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("requested_at", TZ, nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", TZ, nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("new_alert_id", sa.Text(), nullable=True),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "request_id", name="pk_reshare_requests"),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")",
            name="ck_reshare_requests_status",
        ),
        sa.CheckConstraint("char_length(reason) <= 500", name="ck_reshare_requests_reason_length"),
    )
    op.create_index(
        "ix_reshare_requests_node_alert", "reshare_requests", ["node_id", "alert_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_reshare_requests_node_alert", table_name="reshare_requests")
    op.drop_table("reshare_requests")
