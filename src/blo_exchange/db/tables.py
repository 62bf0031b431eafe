"""SQLAlchemy table mappings of everything blo-exchange keeps in Postgres.

Three groups: the *directory* (agencies, nodes, keys, agreements, principals), which nodes read;
*node state* (idempotency records, each node's inbox of sealed envelopes, rejections); and the
*ledger* (entries, Merkle tree nodes, checkpoints), to which only the ledger writer appends and on
which triggers refuse UPDATE, DELETE and TRUNCATE. Inboxes keep envelopes sealed: the database
never holds a decrypted alert, so its operator can't read one.

The schema itself is created by the static Alembic migrations in ``migrations/``; these mappings
must match them (a test compares the two).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AgencyRow",
    "AgreementRow",
    "AttachmentRow",
    "Base",
    "FeedHeadRow",
    "IdempotencyRow",
    "InboxRow",
    "LedgerCheckpointRow",
    "LedgerCosignatureRow",
    "LedgerEntryRow",
    "LedgerForkEvidenceRow",
    "LedgerNodeRow",
    "NodeRow",
    "NominalRetentionRow",
    "PrincipalRow",
    "PublicKeyRow",
    "RejectionRow",
    "UploadRow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TZ = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# --- directory ---------------------------------------------------------------------------------


class AgencyRow(Base):
    __tablename__ = "agencies"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    country: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class NodeRow(Base):
    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"))
    border_pairs: Mapped[list[str]] = mapped_column(ARRAY(Text))
    crossing_points: Mapped[list[str]] = mapped_column(ARRAY(Text))
    url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class PublicKeyRow(Base):
    """A public key: a node's Ed25519 signing key, an agency's HPKE key, or the ledger's key."""

    __tablename__ = "public_keys"

    key_id: Mapped[str] = mapped_column(Text, primary_key=True)
    owner_kind: Mapped[str] = mapped_column(Text)  # node | agency | ledger
    owner_id: Mapped[str] = mapped_column(Text)
    alg: Mapped[str] = mapped_column(Text)  # "Ed25519" or an HPKE suite name
    public: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)

    __table_args__ = (Index("ix_public_keys_owner", "owner_kind", "owner_id"),)


class AgreementRow(Base):
    __tablename__ = "agreements"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    parties: Mapped[list[str]] = mapped_column(ARRAY(Text))
    border_pairs: Mapped[list[str]] = mapped_column(ARRAY(Text))
    kinds: Mapped[list[str]] = mapped_column(ARRAY(Text))
    max_tlp: Mapped[str] = mapped_column(Text)
    nominal: Mapped[bool] = mapped_column(Boolean)
    valid_from: Mapped[datetime] = mapped_column(TZ)
    valid_until: Mapped[datetime | None] = mapped_column(TZ)
    memorandum_ref: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    nominal_retention_days: Mapped[int | None] = mapped_column(Integer)
    nominal_retention_max_days: Mapped[int | None] = mapped_column(Integer)


class PrincipalRow(Base):
    """A credential. Only the SHA-256 of its token is kept."""

    __tablename__ = "principals"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    role: Mapped[str] = mapped_column(Text)
    node_id: Mapped[str | None] = mapped_column(ForeignKey("nodes.id"))
    agency_id: Mapped[str | None] = mapped_column(ForeignKey("agencies.id"))
    label: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(TZ)
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)
    device_certificate: Mapped[str | None] = mapped_column(Text, unique=True)
    """SHA-256 (hex) of the device certificate this principal must present with its token."""


# --- node state --------------------------------------------------------------------------------


class IdempotencyRow(Base):
    """One per (principal, Idempotency-Key): the request's hash and, once done, the response."""

    __tablename__ = "idempotency_keys"

    principal_id: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    request_sha256: Mapped[str] = mapped_column(Text)
    alert_id: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text)  # pending | done
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class InboxRow(Base):
    """A sealed envelope a node sent or received, addressed to its agency. Never plaintext."""

    __tablename__ = "node_inbox"

    node_id: Mapped[str] = mapped_column(Text, primary_key=True)
    alert_id: Mapped[str] = mapped_column(Text, primary_key=True)
    agency_id: Mapped[str] = mapped_column(Text)
    origin_agency: Mapped[str] = mapped_column(Text)
    origin_node: Mapped[str] = mapped_column(Text)
    border_pair: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    tlp: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ)
    stream_seq: Mapped[int] = mapped_column(BigInteger)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    envelope_sha256: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    feed_seq: Mapped[int] = mapped_column(BigInteger)
    """The node's own order of storing: 1, 2, 3, … per node, visible in that order (the feed)."""

    __table_args__ = (
        Index("ix_node_inbox_node_seq", "node_id", "stream_seq"),
        Index("ix_node_inbox_node_feed_seq", "node_id", "feed_seq", unique=True),
    )


class FeedHeadRow(Base):
    """A node's last feed position. Its row lock orders the transactions that store alerts."""

    __tablename__ = "node_feed_heads"

    node_id: Mapped[str] = mapped_column(Text, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)


class RejectionRow(Base):
    """A message a node's consumer refused, kept for the operator (the ledger records it too)."""

    __tablename__ = "node_rejections"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    node_id: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    stream_seq: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    alert_id: Mapped[str | None] = mapped_column(Text)
    envelope_sha256: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())

    __table_args__ = (Index("ix_node_rejections_node_seq", "node_id", "stream_seq", unique=True),)


class NominalRetentionRow(Base):
    """An alert's nominal block under retention at one node (docs/retention.md).

    ``role`` ``origin``: the originating node's own alert, for its analysts' review (nothing is
    sealed here). ``recipient``: the nominal part this node received, sealed under its epoch key
    of ``epoch_day`` (a key file, never in the database); ``sealed_part`` and ``wrapped_key``
    are cleared when it is erased.
    """

    __tablename__ = "nominal_retention"

    node_id: Mapped[str] = mapped_column(Text, primary_key=True)
    alert_id: Mapped[str] = mapped_column(Text, primary_key=True)
    role: Mapped[str] = mapped_column(Text)
    agency_id: Mapped[str] = mapped_column(Text)
    origin_agency: Mapped[str] = mapped_column(Text)
    border_pair: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    agreement_id: Mapped[str] = mapped_column(Text)
    agreement_ids: Mapped[list[str]] = mapped_column(ARRAY(Text))
    envelope_sha256: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ)
    expires_at: Mapped[datetime] = mapped_column(TZ)
    max_until: Mapped[datetime] = mapped_column(TZ)
    epoch_day: Mapped[date | None] = mapped_column(Date)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    sealed_part: Mapped[bytes | None] = mapped_column(LargeBinary)
    decision: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    erased_at: Mapped[datetime | None] = mapped_column(TZ)

    __table_args__ = (Index("ix_nominal_retention_node_expires", "node_id", "expires_at"),)


class UploadRow(Base):
    """An officer's upload in progress or ready to be sealed: its bookkeeping only. The bytes
    and the file name wait in the node's upload directory (``db.spool``), never in the
    database."""

    __tablename__ = "upload_sessions"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    node_id: Mapped[str] = mapped_column(Text)
    principal_id: Mapped[str] = mapped_column(Text)
    length: Mapped[int] = mapped_column(BigInteger)
    received: Mapped[int] = mapped_column(BigInteger)
    declared_type: Mapped[str] = mapped_column(Text)
    nominal: Mapped[bool] = mapped_column(Boolean)
    keep_location: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(Text)  # open | ready | used | expired
    media_type: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(TZ)


class AttachmentRow(Base):
    """A sealed attachment of an alert in a node's inbox: the ciphertext the envelope names by
    hash, never the file. At the origin it waits to be pushed to the bucket (``pushed``); at a
    recipient it is ``pending`` until fetched and checked, then ``stored`` (or ``refused``)."""

    __tablename__ = "node_attachments"

    node_id: Mapped[str] = mapped_column(Text, primary_key=True)
    alert_id: Mapped[str] = mapped_column(Text, primary_key=True)
    part: Mapped[str] = mapped_column(Text, primary_key=True)
    # In the key: a retried accept reseals (new keys, new ciphertexts) under the same alert id,
    # and whichever envelope the stream kept names its own.
    sha256: Mapped[str] = mapped_column(Text, primary_key=True)
    origin_node: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    nominal: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(Text)  # pending | stored | refused
    reason: Mapped[str | None] = mapped_column(Text)
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    pushed: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(TZ)
    stored_at: Mapped[datetime | None] = mapped_column(TZ)

    __table_args__ = (Index("ix_node_attachments_node_state", "node_id", "state", "pushed"),)


# --- ledger (append-only) ----------------------------------------------------------------------


class LedgerEntryRow(Base):
    """One event. ``leaf_input`` is the exact signed-over byte form; the other columns index it."""

    __tablename__ = "ledger_entries"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(Text, unique=True)
    type: Mapped[str] = mapped_column(Text)
    alert_id: Mapped[str | None] = mapped_column(Text)
    actor_node: Mapped[str | None] = mapped_column(Text)
    actor_agency: Mapped[str | None] = mapped_column(Text)
    recipients: Mapped[list[str]] = mapped_column(ARRAY(Text))
    border_pair: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(TZ)
    recorded_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    leaf_input: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_ledger_entries_alert_id", "alert_id"),
        Index("ix_ledger_entries_type_idx", "type", "idx"),
        Index("ix_ledger_entries_occurred_at", "occurred_at"),
        Index("ix_ledger_entries_recipients", "recipients", postgresql_using="gin"),
    )


class LedgerNodeRow(Base):
    """Hash of a perfect Merkle subtree: level 0 are leaves; level L, index i covers 2^L leaves."""

    __tablename__ = "ledger_tree_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerCheckpointRow(Base):
    __tablename__ = "ledger_checkpoints"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class LedgerCosignatureRow(Base):
    """A witness's C2SP cosignature line on the checkpoint of ``tree_size`` (verified on read)."""

    __tablename__ = "ledger_cosignatures"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    witness: Mapped[str] = mapped_column(Text, primary_key=True)
    line: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class LedgerForkEvidenceRow(Base):
    """Two checkpoints signed by the log that no append-only log could both have: a witness's
    evidence of a fork (it refused to cosign the second)."""

    __tablename__ = "ledger_fork_evidence"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    witness: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    cosigned_note: Mapped[str] = mapped_column(Text)
    conflicting_note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
