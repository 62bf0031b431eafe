"""Directory, node state and the append-only ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
TEXT_ARRAY = postgresql.ARRAY(sa.Text())
LEDGER_TABLES = ("ledger_entries", "ledger_tree_nodes", "ledger_checkpoints")


def _created_at() -> sa.Column[object]:
    return sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "agencies",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="pk_agencies"),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("agency_id", sa.Text(), nullable=False),
        sa.Column("border_pairs", TEXT_ARRAY, nullable=False),
        sa.Column("crossing_points", TEXT_ARRAY, nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="pk_nodes"),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name="fk_nodes_agency_id_agencies"
        ),
    )
    op.create_table(
        "public_keys",
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("owner_kind", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("alg", sa.Text(), nullable=False),
        sa.Column("public", sa.LargeBinary(), nullable=False),
        _created_at(),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_public_keys"),
    )
    op.create_index("ix_public_keys_owner", "public_keys", ["owner_kind", "owner_id"])
    op.create_table(
        "agreements",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("parties", TEXT_ARRAY, nullable=False),
        sa.Column("border_pairs", TEXT_ARRAY, nullable=False),
        sa.Column("kinds", TEXT_ARRAY, nullable=False),
        sa.Column("max_tlp", sa.Text(), nullable=False),
        sa.Column("nominal", sa.Boolean(), nullable=False),
        sa.Column("valid_from", TZ, nullable=False),
        sa.Column("valid_until", TZ, nullable=True),
        sa.Column("memorandum_ref", sa.Text(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="pk_agreements"),
    )
    op.create_table(
        "principals",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("node_id", sa.Text(), nullable=True),
        sa.Column("agency_id", sa.Text(), nullable=True),
        sa.Column("label", sa.Text(), nullable=False),
        _created_at(),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_principals"),
        sa.UniqueConstraint("token_hash", name="uq_principals_token_hash"),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name="fk_principals_node_id_nodes"),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name="fk_principals_agency_id_agencies"
        ),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("principal_id", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_sha256", sa.Text(), nullable=False),
        sa.Column("alert_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("response", postgresql.JSONB(), nullable=True),
        _created_at(),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("principal_id", "key", name="pk_idempotency_keys"),
    )
    op.create_table(
        "node_inbox",
        sa.Column("node_id", sa.Text(), nullable=False),
        sa.Column("alert_id", sa.Text(), nullable=False),
        sa.Column("agency_id", sa.Text(), nullable=False),
        sa.Column("origin_agency", sa.Text(), nullable=False),
        sa.Column("origin_node", sa.Text(), nullable=False),
        sa.Column("border_pair", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("tlp", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("stream_seq", sa.BigInteger(), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("envelope_sha256", sa.Text(), nullable=False),
        sa.Column("received_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "alert_id", name="pk_node_inbox"),
    )
    op.create_index("ix_node_inbox_node_seq", "node_inbox", ["node_id", "stream_seq"])
    op.create_table(
        "node_rejections",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("node_id", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("stream_seq", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("alert_id", sa.Text(), nullable=True),
        sa.Column("envelope_sha256", sa.Text(), nullable=False),
        sa.Column("received_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_node_rejections"),
    )
    op.create_index(
        "ix_node_rejections_node_seq", "node_rejections", ["node_id", "stream_seq"], unique=True
    )

    op.create_table(
        "ledger_entries",
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("alert_id", sa.Text(), nullable=True),
        sa.Column("actor_node", sa.Text(), nullable=True),
        sa.Column("actor_agency", sa.Text(), nullable=True),
        sa.Column("recipients", TEXT_ARRAY, nullable=False),
        sa.Column("border_pair", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=True),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("recorded_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("leaf_input", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("idx", name="pk_ledger_entries"),
        sa.UniqueConstraint("event_id", name="uq_ledger_entries_event_id"),
        sa.CheckConstraint("idx >= 0", name="ck_ledger_entries_idx_nonnegative"),
    )
    op.create_index("ix_ledger_entries_alert_id", "ledger_entries", ["alert_id"])
    op.create_index("ix_ledger_entries_type_idx", "ledger_entries", ["type", "idx"])
    op.create_index("ix_ledger_entries_occurred_at", "ledger_entries", ["occurred_at"])
    op.create_index(
        "ix_ledger_entries_recipients", "ledger_entries", ["recipients"], postgresql_using="gin"
    )
    op.create_table(
        "ledger_tree_nodes",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name="pk_ledger_tree_nodes"),
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("tree_size", name="pk_ledger_checkpoints"),
    )

    # The ledger is append-only: any UPDATE, DELETE or TRUNCATE raises. A superuser can still
    # bypass triggers (session_replication_role = replica); only Merkle proofs catch that.
    op.execute(
        """
        CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'blo-exchange ledger table % is append-only (% refused)',
                TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
        END;
        $$
        """
    )
    for table in LEDGER_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()"
        )


def downgrade() -> None:
    for table in LEDGER_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table}")
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS ledger_append_only()")
    for table in (
        "node_rejections",
        "node_inbox",
        "idempotency_keys",
        "principals",
        "agreements",
        "public_keys",
        "nodes",
        "agencies",
    ):
        op.drop_table(table)
