"""A principal may be bound to a device certificate (its SHA-256): a second factor with its token.

Revision ID: 0008_device_certificates
Revises: 0007_package_receipts
Create Date: 2026-12-05

A bound principal's token alone is refused; it must come with that certificate, verified by the
node's own TLS against the pinned device CA or forwarded by the trusted proxy (see
docs/threat-model.md). One certificate is bound to at most one principal.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_device_certificates"
down_revision = "0007_package_receipts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("principals", sa.Column("device_certificate", sa.Text(), nullable=True))
    op.create_unique_constraint(
        "uq_principals_device_certificate", "principals", ["device_certificate"]
    )


def downgrade() -> None:
    op.drop_constraint("uq_principals_device_certificate", "principals", type_="unique")
    op.drop_column("principals", "device_certificate")
