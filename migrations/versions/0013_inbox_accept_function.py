"""Accepts stored together (issue 14): ``blo_inbox_accept``.

An accept stores its own copy and the request's answer in one call of ``blo_inbox_store``
(migration 0012), which takes the feed head's lock and holds it until its commit is flushed.
Accepts arriving while one store is in flight therefore waited for each other's WAL flush, one
at a time: when a flush was slow, a queue of 202s waited for as many slow flushes. The node
now gathers the accepts that arrive while a store is in flight and stores them in one call of
this function: their answers in one update, their rows through ``blo_inbox_store``'s batch
path (one lock, consecutive positions in the order given, one flush). One accept alone takes
0012's single-item path, as before.

Revision ID: 0013_inbox_accept_function
Revises: 0012_inbox_store_function
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0013_inbox_accept_function"
down_revision = "0012_inbox_store_function"
branch_labels = None
depends_on = None

_CREATE = """
CREATE OR REPLACE FUNCTION blo_inbox_accept(
    p_node_id text,
    p_alert_id text[], p_agency_id text[], p_origin_agency text[], p_origin_node text[],
    p_border_pair text[], p_kind text[], p_tlp text[], p_created_at timestamptz[],
    p_stream_seq bigint[], p_envelope bytea[], p_envelope_sha256 text[],
    p_principal_id text[], p_key text[], p_response jsonb[]
) RETURNS bigint[]
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    IF cardinality(p_alert_id) = 1 THEN
        RETURN blo_inbox_store(p_node_id, p_alert_id, p_agency_id, p_origin_agency,
            p_origin_node, p_border_pair, p_kind, p_tlp, p_created_at, p_stream_seq,
            p_envelope, p_envelope_sha256, p_principal_id[1], p_key[1], p_response[1]);
    END IF;
    -- Each request's answer, kept whether or not this call stores its envelope (its own
    -- consumer may have stored it), as 0012 does for one.
    UPDATE idempotency_keys AS k
       SET state = 'done', response = done.response, updated_at = now()
      FROM unnest(p_principal_id, p_key, p_response) AS done(principal_id, key, response)
     WHERE k.principal_id = done.principal_id AND k.key = done.key;
    RETURN blo_inbox_store(p_node_id, p_alert_id, p_agency_id, p_origin_agency,
        p_origin_node, p_border_pair, p_kind, p_tlp, p_created_at, p_stream_seq,
        p_envelope, p_envelope_sha256, NULL, NULL, NULL);
END
$fn$
"""


def upgrade() -> None:
    op.execute(_CREATE)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION blo_inbox_accept(text, text[], text[], text[], text[], text[], text[],"
        " text[], timestamptz[], bigint[], bytea[], text[], text[], text[], jsonb[])"
    )
