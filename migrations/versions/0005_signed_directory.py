"""Signed directory statements: each node's own copy of what agency roots signed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

Chained after 0004 (feed positions). The table is append-only
for the application, like the ledger (the same trigger function refuses UPDATE, DELETE and
TRUNCATE); a superuser can still bypass that, which is why nothing in it is believed without a
valid signature by a root pinned on the node's own disk.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "directory_statements",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("raw_sha256", sa.Text(), nullable=False),
        sa.Column("statement_id", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_directory_statements"),
        sa.UniqueConstraint("raw_sha256", name="uq_directory_statements_raw_sha256"),
    )
    op.execute(
        "CREATE TRIGGER directory_statements_no_update_delete BEFORE UPDATE OR DELETE "
        "ON directory_statements FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
    )
    op.execute(
        "CREATE TRIGGER directory_statements_no_truncate BEFORE TRUNCATE "
        "ON directory_statements FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS directory_statements_no_truncate ON directory_statements")
    op.execute(
        "DROP TRIGGER IF EXISTS directory_statements_no_update_delete ON directory_statements"
    )
    op.drop_table("directory_statements")
