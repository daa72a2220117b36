"""Inbox of fetched Telegram updates, kept until handled (replayed after a crash).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.models.base

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('inbox_updates',
    sa.Column('update_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('received_at', bot.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('payload_enc', sa.LargeBinary(), nullable=False),
    sa.Column('replays', sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint('update_id', name=op.f('pk_inbox_updates'))
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table('inbox_updates')
