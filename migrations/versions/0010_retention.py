"""The personal-data lifecycle: agreements state a nominal retention; nodes keep the nominal
parts under retention (docs/retention.md).

``agreements`` gains ``nominal_retention_days`` and ``nominal_retention_max_days`` (NULL: an
agreement made before they existed; a nominal one then keeps for the documented default).
``nominal_retention`` holds, per node, each alert's nominal block under retention: at the
origin node, what its analysts review; at a recipient node, the nominal part sealed under the
node's epoch key of its expiry day (the key is a file in the node's key directory, never here).

Alerts stored before this migration keep their nominal part inside their envelope: they are not
under retention (docs/retention.md, "Before this contract").

Revision ID: 0010_retention
Revises: 0009_search_lookout
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010_retention"
down_revision = "0009_search_lookout"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("agreements", sa.Column("nominal_retention_days", sa.Integer(), nullable=True))
    op.add_column(
        "agreements", sa.Column("nominal_retention_max_days", sa.Integer(), nullable=True)
    )
    op.create_table(
        "nominal_retention",
        sa.Column("node_id", sa.Text(), nullable=False),
        sa.Column("alert_id", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("agency_id", sa.Text(), nullable=False),
        sa.Column("origin_agency", sa.Text(), nullable=False),
        sa.Column("border_pair", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("agreement_id", sa.Text(), nullable=False),
        sa.Column("agreement_ids", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("envelope_sha256", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("max_until", TZ, nullable=False),
        sa.Column("epoch_day", sa.Date(), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("sealed_part", sa.LargeBinary(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("erased_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("node_id", "alert_id", name="pk_nominal_retention"),
    )
    op.create_index(
        "ix_nominal_retention_node_expires", "nominal_retention", ["node_id", "expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_nominal_retention_node_expires", table_name="nominal_retention")
    op.drop_table("nominal_retention")
    op.drop_column("agreements", "nominal_retention_max_days")
    op.drop_column("agreements", "nominal_retention_days")
