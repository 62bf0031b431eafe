"""A node's search index of the alerts its agency may read.

Revision ID: 0009_search_lookout
Revises: 0008_device_certificates
Create Date: 2026-12-05

``search_alerts``: one row per indexed inbox item (the facts a lookout filters on: kind, expiry,
what it supersedes); ``search_keys``: the match keys (``domain.transliteration``) of its names,
plates, documents, phones and companies, marked by the part they came from (``case`` or
``nominal``), so the nominal ones can be erased with the nominal part. Keys are derived from
decrypted alerts, so they are personal data: they stay in this node's database and are never
published. Hit receipts waiting for JetStream are kept in ``pending_receipts`` (0007).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_search_lookout"
down_revision = "0008_device_certificates"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "search_alerts",
        sa.Column("node_id", sa.Text(), nullable=False),
        sa.Column("alert_id", sa.Text(), nullable=False),
        sa.Column("agency_id", sa.Text(), nullable=False),
        sa.Column("feed_seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("origin_agency", sa.Text(), nullable=False),
        sa.Column("valid_until", TZ, nullable=True),
        sa.Column("supersedes", sa.Text(), nullable=True),
        sa.Column("indexed_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "alert_id", name="pk_search_alerts"),
    )
    op.create_index(
        "ix_search_alerts_node_feed_seq",
        "search_alerts",
        ["node_id", "agency_id", "feed_seq"],
        unique=True,
    )
    op.create_index("ix_search_alerts_supersedes", "search_alerts", ["node_id", "supersedes"])
    op.create_table(
        "search_keys",
        sa.Column("node_id", sa.Text(), nullable=False),
        sa.Column("alert_id", sa.Text(), nullable=False),
        sa.Column("field", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "node_id", "alert_id", "field", "source", "key", name="pk_search_keys"
        ),
        sa.ForeignKeyConstraint(
            ["node_id", "alert_id"],
            ["search_alerts.node_id", "search_alerts.alert_id"],
            name="fk_search_keys_node_id_search_alerts",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_search_keys_lookup", "search_keys", ["node_id", "field", "key"])


def downgrade() -> None:
    op.drop_index("ix_search_keys_lookup", table_name="search_keys")
    op.drop_table("search_keys")
    op.drop_index("ix_search_alerts_supersedes", table_name="search_alerts")
    op.drop_index("ix_search_alerts_node_feed_seq", table_name="search_alerts")
    op.drop_table("search_alerts")
