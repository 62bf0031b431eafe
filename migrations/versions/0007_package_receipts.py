"""The node's outbox of signed receipts kept until JetStream acknowledges them: those of alerts
imported from an offline package, and lookout ``hit`` receipts (docs/contracts/receipts.md).

Revision ID: 0007_package_receipts
Revises: 0006
Create Date: 2026-12-05

Each row is a signed receipt as it will be published (its subject, bytes and ``Nats-Msg-Id``);
``sent_at`` is set once JetStream acknowledged it. A row is queued once per message id, so
importing the same package again, or retrying the same lookout check, queues nothing new
(docs/contracts/packages.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_package_receipts"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pending_receipts",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("node_id", sa.Text(), nullable=False),
        sa.Column("msg_id", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("queued_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("sent_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_pending_receipts"),
        sa.UniqueConstraint("node_id", "msg_id", name="uq_pending_receipts_node_id"),
    )
    op.create_index(
        "ix_pending_receipts_unsent",
        "pending_receipts",
        ["node_id", "seq"],
        postgresql_where=sa.text("sent_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_pending_receipts_unsent", table_name="pending_receipts")
    op.drop_table("pending_receipts")
