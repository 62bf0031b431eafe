"""Attachments (issue 17): officers' upload sessions, and each node's sealed attachments.

``upload_sessions`` holds an upload's bookkeeping (the bytes and the file name wait on the
node's disk, never here); ``node_attachments`` holds, per node and alert, each file part's *ciphertext* as the
signed envelope names it (SHA-256 and size): the database never holds an attachment in clear.

Revision ID: 0011_attachments
Revises: 0010_retention
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_attachments"
down_revision = "0010_retention"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "upload_sessions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("node_id", sa.Text(), nullable=False),
        sa.Column("principal_id", sa.Text(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("declared_type", sa.Text(), nullable=False),
        sa.Column("nominal", sa.Boolean(), nullable=False),
        sa.Column("keep_location", sa.Boolean(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("media_type", sa.Text(), nullable=True),
        sa.Column("sha256", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_upload_sessions"),
    )
    op.create_table(
        "node_attachments",
        sa.Column("node_id", sa.Text(), nullable=False),
        sa.Column("alert_id", sa.Text(), nullable=False),
        sa.Column("part", sa.Text(), nullable=False),
        sa.Column("origin_node", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("nominal", sa.Boolean(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("pushed", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("stored_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint(
            "node_id", "alert_id", "part", "sha256", name="pk_node_attachments"
        ),
    )
    op.create_index(
        "ix_node_attachments_node_state", "node_attachments", ["node_id", "state", "pushed"]
    )


def downgrade() -> None:
    op.drop_index("ix_node_attachments_node_state", table_name="node_attachments")
    op.drop_table("node_attachments")
    op.drop_table("upload_sessions")
