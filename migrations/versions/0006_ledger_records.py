"""Only the ledger writer's database role may insert into the ledger tables; witnesses'
cosignatures and fork evidence.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

The role ``blo_ledger_writer`` (NOLOGIN) gets SELECT and INSERT on the ledger tables, and a
statement trigger refuses any INSERT made under another role. The writer takes the role with
``SET LOCAL ROLE`` in each of its transactions. Where this migration creates the role, the role
running it is made a member (one database for everything: tests, a single-host trial); where
the role exists already — created with the per-agency databases (``db.provision``), granted to
the ledger's login role only — membership is left as provisioned, so an agency's role migrating
its own database does not become a member. A superuser can still take the role or bypass the
triggers, which the writer's own state file and the witnesses catch.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

LEDGER_TABLES = ("ledger_entries", "ledger_tree_nodes", "ledger_checkpoints")
ROLE = "blo_ledger_writer"


TZ = sa.DateTime(timezone=True)


def _created_at() -> sa.Column[object]:
    return sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "ledger_cosignatures",
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("witness", sa.Text(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("tree_size", "witness", name="pk_ledger_cosignatures"),
    )
    op.create_table(
        "ledger_fork_evidence",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("witness", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("cosigned_note", sa.Text(), nullable=False),
        sa.Column("conflicting_note", sa.Text(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_fork_evidence"),
    )
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
                CREATE ROLE {ROLE} NOLOGIN;
                GRANT {ROLE} TO CURRENT_USER;
            END IF;
        END;
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION ledger_writer_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF current_user <> '{ROLE}' THEN
                RAISE EXCEPTION 'only the ledger writer (role {ROLE}) may insert into %',
                    TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NULL;
        END;
        $$
        """
    )
    for table in LEDGER_TABLES:
        op.execute(f"GRANT SELECT, INSERT ON {table} TO {ROLE}")
        op.execute(
            f"CREATE TRIGGER {table}_writer_only BEFORE INSERT ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_writer_only()"
        )


def downgrade() -> None:
    for table in LEDGER_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_writer_only ON {table}")
        op.execute(f"REVOKE SELECT, INSERT ON {table} FROM {ROLE}")
    op.execute("DROP FUNCTION IF EXISTS ledger_writer_only()")
    op.drop_table("ledger_fork_evidence")
    op.drop_table("ledger_cosignatures")
