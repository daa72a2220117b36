"""Audit area: the record of signed exports.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.models.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "audit_exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", bot.models.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("filter", sa.Text(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=True),
        sa.Column("head_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("signing_key", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["officers.id"], name=op.f("fk_audit_exports_actor_id_officers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_exports")),
        sa.UniqueConstraint("manifest_sha256", name=op.f("uq_audit_exports_manifest_sha256")),
    )
    with op.batch_alter_table("audit_exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_exports_actor_id"), ["actor_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("audit_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_exports_actor_id"))
    op.drop_table("audit_exports")
