"""Relay area: case rooms, members, messages with versions and translations, the delivery outbox.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.models.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('rooms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_tag', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('title_enc', sa.LargeBinary(), nullable=True),
    sa.Column('handling', sa.String(length=2), nullable=False),
    sa.Column('conditions_enc', sa.LargeBinary(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', bot.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['officers.id'], name=op.f('fk_rooms_created_by_id_officers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rooms')),
    sa.UniqueConstraint('case_tag', name=op.f('uq_rooms_case_tag'))
    )
    op.create_table('introductions',
    sa.Column('officer_a_id', sa.Integer(), nullable=False),
    sa.Column('officer_b_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', bot.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['officers.id'], name=op.f('fk_introductions_created_by_id_officers')),
    sa.ForeignKeyConstraint(['officer_a_id'], ['officers.id'], name=op.f('fk_introductions_officer_a_id_officers')),
    sa.ForeignKeyConstraint(['officer_b_id'], ['officers.id'], name=op.f('fk_introductions_officer_b_id_officers')),
    sa.PrimaryKeyConstraint('officer_a_id', 'officer_b_id', name=op.f('pk_introductions'))
    )
    op.create_table('current_rooms',
    sa.Column('officer_id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('chosen_at', bot.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['officer_id'], ['officers.id'], name=op.f('fk_current_rooms_officer_id_officers')),
    sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], name=op.f('fk_current_rooms_room_id_rooms')),
    sa.PrimaryKeyConstraint('officer_id', name=op.f('pk_current_rooms'))
    )
    op.create_table('room_members',
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('officer_id', sa.Integer(), nullable=False),
    sa.Column('added_by_id', sa.Integer(), nullable=True),
    sa.Column('joined_at', bot.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('left_at', bot.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['added_by_id'], ['officers.id'], name=op.f('fk_room_members_added_by_id_officers')),
    sa.ForeignKeyConstraint(['officer_id'], ['officers.id'], name=op.f('fk_room_members_officer_id_officers')),
    sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], name=op.f('fk_room_members_room_id_rooms')),
    sa.PrimaryKeyConstraint('room_id', 'officer_id', name=op.f('pk_room_members'))
    )
    with op.batch_alter_table('room_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_room_members_officer_id'), ['officer_id'], unique=False)
    op.create_table('messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('case_tag', sa.String(length=64), nullable=False),
    sa.Column('sender_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('source_lang', sa.String(length=8), nullable=False),
    sa.Column('body_enc', sa.LargeBinary(), nullable=True),
    sa.Column('body_hash', sa.String(length=64), nullable=True),
    sa.Column('media_enc', sa.LargeBinary(), nullable=True),
    sa.Column('file_sha256', sa.String(length=64), nullable=True),
    sa.Column('file_size', sa.BigInteger(), nullable=True),
    sa.Column('tags', sa.Text(), nullable=False),
    sa.Column('handling', sa.String(length=2), nullable=False),
    sa.Column('reply_to_id', sa.Integer(), nullable=True),
    sa.Column('sender_chat_id', sa.BigInteger(), nullable=False),
    sa.Column('sender_message_id', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('edited_at', bot.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('retracted_at', bot.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['reply_to_id'], ['messages.id'], name=op.f('fk_messages_reply_to_id_messages')),
    sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], name=op.f('fk_messages_room_id_rooms')),
    sa.ForeignKeyConstraint(['sender_id'], ['officers.id'], name=op.f('fk_messages_sender_id_officers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('sender_chat_id', 'sender_message_id', name=op.f('uq_messages_sender_chat_id_sender_message_id'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_case_tag'), ['case_tag'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_room_id'), ['room_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_sender_id'), ['sender_id'], unique=False)
    op.create_table('message_versions',
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('body_enc', sa.LargeBinary(), nullable=True),
    sa.Column('body_hash', sa.String(length=64), nullable=True),
    sa.Column('source_lang', sa.String(length=8), nullable=False),
    sa.Column('created_at', bot.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('relayed', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_message_versions_message_id_messages')),
    sa.PrimaryKeyConstraint('message_id', 'version', name=op.f('pk_message_versions'))
    )
    with op.batch_alter_table('message_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_versions_relayed'), ['relayed'], unique=False)
    op.create_table('message_translations',
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('lang', sa.String(length=8), nullable=False),
    sa.Column('text_enc', sa.LargeBinary(), nullable=False),
    sa.Column('text_hash', sa.String(length=64), nullable=False),
    sa.Column('engine', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('translated', sa.Boolean(), nullable=False),
    sa.Column('failure', sa.String(length=32), nullable=True),
    sa.Column('created_at', bot.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_message_translations_message_id_messages')),
    sa.PrimaryKeyConstraint('message_id', 'version', 'lang', name=op.f('pk_message_translations'))
    )
    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('ref_id', sa.Integer(), nullable=True),
    sa.Column('op', sa.String(length=8), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=True),
    sa.Column('recipient_id', sa.Integer(), nullable=True),
    sa.Column('chat_id', sa.BigInteger(), nullable=False),
    sa.Column('lang', sa.String(length=8), nullable=True),
    sa.Column('case_tag', sa.String(length=64), nullable=True),
    sa.Column('payload_enc', sa.LargeBinary(), nullable=False),
    sa.Column('body_hash', sa.String(length=64), nullable=True),
    sa.Column('priority', sa.SmallInteger(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', bot.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', bot.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=96), nullable=True),
    sa.Column('lease_until', bot.models.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('telegram_message_id', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['recipient_id'], ['officers.id'], name=op.f('fk_deliveries_recipient_id_officers')),
    sa.ForeignKeyConstraint(['target_id'], ['deliveries.id'], name=op.f('fk_deliveries_target_id_deliveries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries'))
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_chat_id_status', ['chat_id', 'status'], unique=False)
        batch_op.create_index('ix_deliveries_kind_ref_id', ['kind', 'ref_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliveries_recipient_id'), ['recipient_id'], unique=False)
        batch_op.create_index('ix_deliveries_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)
    op.create_table('chat_messages',
    sa.Column('chat_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('message_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('ref_id', sa.Integer(), nullable=True),
    sa.Column('delivery_id', sa.Integer(), nullable=True),
    sa.Column('part', sa.SmallInteger(), nullable=False),
    sa.Column('part_kind', sa.String(length=8), nullable=False),
    sa.Column('origin', sa.Boolean(), nullable=False),
    sa.Column('at', bot.models.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], name=op.f('fk_chat_messages_delivery_id_deliveries')),
    sa.PrimaryKeyConstraint('chat_id', 'message_id', name=op.f('pk_chat_messages'))
    )
    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_messages_delivery_id'), ['delivery_id'], unique=False)
        batch_op.create_index('ix_chat_messages_kind_ref_id_chat_id', ['kind', 'ref_id', 'chat_id'], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_chat_messages_kind_ref_id_chat_id')
        batch_op.drop_index(batch_op.f('ix_chat_messages_delivery_id'))
    op.drop_table('chat_messages')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_status_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_deliveries_recipient_id'))
        batch_op.drop_index('ix_deliveries_kind_ref_id')
        batch_op.drop_index('ix_deliveries_chat_id_status')
    op.drop_table('deliveries')
    op.drop_table('message_translations')
    with op.batch_alter_table('message_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_versions_relayed'))
    op.drop_table('message_versions')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_sender_id'))
        batch_op.drop_index(batch_op.f('ix_messages_room_id'))
        batch_op.drop_index(batch_op.f('ix_messages_case_tag'))
    op.drop_table('messages')
    with op.batch_alter_table('room_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_room_members_officer_id'))
    op.drop_table('room_members')
    op.drop_table('current_rooms')
    op.drop_table('introductions')
    op.drop_table('rooms')
