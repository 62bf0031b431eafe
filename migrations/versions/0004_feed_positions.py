"""Feed positions: each node numbers the alerts it stores, in the order it stored them.

The feed's cursor was the JetStream sequence, which is the order alerts reached the stream, not
the order a node stored them: an alert redelivered after a crash was stored behind cursors that
had already moved past its sequence, and no follower ever saw it. ``feed_seq`` is the node's own
order. ``node_feed_heads`` holds each node's last position; the inserting transaction takes the
next one with a row lock held until it commits, so positions become visible in order and without
gaps (see ``db.node_store``). Existing rows are numbered in stream order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_feed_heads",
        sa.Column("node_id", sa.Text(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", name="pk_node_feed_heads"),
    )
    op.add_column("node_inbox", sa.Column("feed_seq", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE node_inbox AS i SET feed_seq = n.position FROM ("
        " SELECT node_id, alert_id,"
        " row_number() OVER (PARTITION BY node_id ORDER BY stream_seq, alert_id) AS position"
        " FROM node_inbox) AS n"
        " WHERE i.node_id = n.node_id AND i.alert_id = n.alert_id"
    )
    op.execute(
        "INSERT INTO node_feed_heads (node_id, last_seq)"
        " SELECT node_id, max(feed_seq) FROM node_inbox GROUP BY node_id"
    )
    op.alter_column("node_inbox", "feed_seq", nullable=False)
    op.create_index(
        "ix_node_inbox_node_feed_seq", "node_inbox", ["node_id", "feed_seq"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_node_inbox_node_feed_seq", table_name="node_inbox")
    op.drop_column("node_inbox", "feed_seq")
    op.drop_table("node_feed_heads")
