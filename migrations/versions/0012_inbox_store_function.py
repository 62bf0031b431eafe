"""A node's inbox stores in one round trip (issue 14): ``blo_inbox_store``.

Storing a batch of alerts in a node's inbox is five statements in one transaction (which are
stored already, the feed head's lock, which are stored now that every earlier storer has
committed, the rows at the next positions, the head moved past them); one alert is fewer (its
position taken and its row stored in one statement, the position given back if it was stored
meanwhile), plus the request's answer on the accept path. Sent one by one they were seven round trips a delivered batch (BEGIN and COMMIT
included) and three an accept; each one a write and a wake-up on both sides of the socket, and a
trip through the driver. This function runs the same statements inside Postgres: one call in
autocommit, one round trip, one transaction. Each statement of a PL/pgSQL function takes a new
snapshot under READ COMMITTED, so the check after the lock sees what the lock's previous holder
committed, as the statements sent one by one did.

Revision ID: 0012_inbox_store_function
Revises: 0011_attachments
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0012_inbox_store_function"
down_revision = "0011_attachments"
branch_labels = None
depends_on = None

_CREATE = """
CREATE OR REPLACE FUNCTION blo_inbox_store(
    p_node_id text,
    p_alert_id text[], p_agency_id text[], p_origin_agency text[], p_origin_node text[],
    p_border_pair text[], p_kind text[], p_tlp text[], p_created_at timestamptz[],
    p_stream_seq bigint[], p_envelope bytea[], p_envelope_sha256 text[],
    p_principal_id text, p_key text, p_response jsonb
) RETURNS bigint[]
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    head bigint;
    positions bigint[];
    moved_to bigint;
BEGIN
    -- The request's answer, with the envelope it answers for (the accept path); it is kept
    -- whether or not this call stores the envelope (its own consumer may have stored it).
    IF p_principal_id IS NOT NULL THEN
        UPDATE idempotency_keys SET state = 'done', response = p_response, updated_at = now()
         WHERE principal_id = p_principal_id AND key = p_key;
    END IF;
    -- An accept's own copy, sealed a moment ago: nobody but the node's own consumer can have
    -- stored it, so no look first. One item: (S) its position taken and the row stored in one
    -- statement; (U) if it was stored meanwhile (by a storer we waited for on the head's lock,
    -- which is still ours, so nobody took a later position), the position given back.
    IF p_principal_id IS NULL OR cardinality(p_alert_id) <> 1 THEN
        -- (1) A batch of redeliveries (common) only looks, and takes no lock.
        IF NOT EXISTS (
            SELECT 1 FROM unnest(p_alert_id) AS given(alert_id)
             WHERE NOT EXISTS (
                 SELECT 1 FROM node_inbox i
                  WHERE i.node_id = p_node_id AND i.alert_id = given.alert_id)
        ) THEN
            RETURN array_fill(NULL::bigint, ARRAY[cardinality(p_alert_id)]);
        END IF;
    END IF;
    IF cardinality(p_alert_id) = 1 THEN
        WITH taken AS (  -- (S)
            INSERT INTO node_feed_heads AS h (node_id, last_seq) VALUES (p_node_id, 1)
                ON CONFLICT (node_id) DO UPDATE SET last_seq = h.last_seq + 1
                RETURNING last_seq)
        INSERT INTO node_inbox (node_id, alert_id, agency_id, origin_agency, origin_node,
            border_pair, kind, tlp, created_at, stream_seq, envelope, envelope_sha256, feed_seq)
        SELECT p_node_id, p_alert_id[1], p_agency_id[1], p_origin_agency[1], p_origin_node[1],
               p_border_pair[1], p_kind[1], p_tlp[1], p_created_at[1], p_stream_seq[1],
               p_envelope[1], p_envelope_sha256[1], taken.last_seq
          FROM taken
        ON CONFLICT (node_id, alert_id) DO NOTHING
        RETURNING feed_seq INTO moved_to;
        IF moved_to IS NULL THEN  -- (U)
            UPDATE node_feed_heads SET last_seq = last_seq - 1 WHERE node_id = p_node_id;
        END IF;
        RETURN ARRAY[moved_to];
    END IF;
    -- A batch. (2) The head's lock, held until this transaction ends: a second storer waits here until
    -- the first has committed, so positions become visible in the order they are taken, with
    -- no gaps (a reader's cursor never moves past a position committed later).
    INSERT INTO node_feed_heads AS h (node_id, last_seq) VALUES (p_node_id, 0)
        ON CONFLICT (node_id) DO UPDATE SET last_seq = h.last_seq
        RETURNING last_seq INTO head;
    -- (3) Which are stored, in a new snapshot: now that every earlier storer has committed.
    -- (4) The others at consecutive positions after the head, in the order given; an alert
    -- twice in one call is stored once, at its first place.
    WITH given AS (
        SELECT * FROM unnest(
            p_alert_id, p_agency_id, p_origin_agency, p_origin_node, p_border_pair, p_kind,
            p_tlp, p_created_at, p_stream_seq, p_envelope, p_envelope_sha256
        ) WITH ORDINALITY AS g(
            alert_id, agency_id, origin_agency, origin_node, border_pair, kind, tlp,
            created_at, stream_seq, envelope, envelope_sha256, ord)
    ), firsts AS (
        SELECT DISTINCT ON (alert_id) * FROM given ORDER BY alert_id, ord
    ), fresh AS (
        SELECT f.*, head + row_number() OVER (ORDER BY f.ord) AS feed_seq
          FROM firsts f
         WHERE NOT EXISTS (
             SELECT 1 FROM node_inbox i WHERE i.node_id = p_node_id AND i.alert_id = f.alert_id)
    ), stored AS (
        INSERT INTO node_inbox (node_id, alert_id, agency_id, origin_agency, origin_node,
            border_pair, kind, tlp, created_at, stream_seq, envelope, envelope_sha256, feed_seq)
        SELECT p_node_id, alert_id, agency_id, origin_agency, origin_node, border_pair, kind,
               tlp, created_at, stream_seq, envelope, envelope_sha256, feed_seq
          FROM fresh
        RETURNING feed_seq
    )
    SELECT array_agg(fresh.feed_seq ORDER BY given.ord), max(fresh.feed_seq)
      INTO positions, moved_to
      FROM given LEFT JOIN fresh ON fresh.ord = given.ord;
    -- (5) The head moved past them.
    IF moved_to IS NOT NULL THEN
        UPDATE node_feed_heads SET last_seq = moved_to WHERE node_id = p_node_id;
    END IF;
    RETURN positions;
END
$fn$
"""


def upgrade() -> None:
    op.execute(_CREATE)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION blo_inbox_store(text, text[], text[], text[], text[], text[], text[],"
        " text[], timestamptz[], bigint[], bytea[], text[], text, text, jsonb)"
    )
