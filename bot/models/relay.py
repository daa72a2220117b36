"""Tables of the relay area: case rooms, messages with their versions and translations, and the outbox.

Encrypted columns (`*_enc`, LargeBinary, marked `info=encrypted(...)`) hold `core.cipher.encrypt(text,
aad)` with `aad = column_aad(table, column)`, i.e. b"<table>.<column>", so key rotation can re-encrypt
every value; message bodies, translations, media details and queued payloads are purged by retention
by their `created_at` (a purged NOT NULL value is an encrypted empty text).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.crypto import encrypted
from bot.models.base import Base


def column_aad(table: str, column: str) -> bytes:
    """Return the associated data an encrypted column's values are bound to (b"table.column")."""
    return f"{table}.{column}".encode("ascii")


class Room(Base):
    """A case room (kind "case", tagged e.g. CN-VN-2026-0042) or a one-to-one room (kind "dm")."""

    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_tag: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    #: the case title, encrypted (None for one-to-one rooms)
    title_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info=encrypted())
    #: handling code H0..H3 applied to every message of the room
    handling: Mapped[str] = mapped_column(String(2), default="H0")
    #: encrypted JSON {"source": lang, "text": ..., "<lang>": translation, ...} of the H3 conditions
    conditions_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info=encrypted())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    created_at: Mapped[datetime]


class RoomMember(Base):
    """An officer's membership of a room; `left_at` set when removed (the row stays for the record)."""

    __tablename__ = "room_members"

    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"), primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id"), primary_key=True, index=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    joined_at: Mapped[datetime]
    left_at: Mapped[datetime | None]


class CurrentRoom(Base):
    """The room an officer's plain messages go to."""

    __tablename__ = "current_rooms"

    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id"), primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"))
    chosen_at: Mapped[datetime]


class Introduction(Base):
    """Two officers a coordinator made visible to each other (lower officer id first)."""

    __tablename__ = "introductions"

    officer_a_id: Mapped[int] = mapped_column(ForeignKey("officers.id"), primary_key=True)
    officer_b_id: Mapped[int] = mapped_column(ForeignKey("officers.id"), primary_key=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    created_at: Mapped[datetime]


class Message(Base):
    """One message an officer sent into a room, as it is now (earlier versions in `message_versions`)."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("sender_chat_id", "sender_message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"), index=True)
    case_tag: Mapped[str] = mapped_column(String(64), index=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("officers.id"), index=True)
    #: text, photo, document, voice, video, audio, location or contact
    kind: Mapped[str] = mapped_column(String(16))
    source_lang: Mapped[str] = mapped_column(String(8))
    #: the current text or caption, encrypted; None for media without caption, locations, contacts
    body_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info=encrypted(purge_after="created_at"))
    body_hash: Mapped[str | None] = mapped_column(String(64))
    #: encrypted JSON describing the media (file id, name, type, coordinates, phone number ...)
    media_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info=encrypted(purge_after="created_at"))
    #: SHA-256 of the file as downloaded through getFile (evidence), once computed
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    #: the case tag, then the message's #hashtags, separated by spaces
    tags: Mapped[str] = mapped_column(Text)
    handling: Mapped[str] = mapped_column(String(2))
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    sender_chat_id: Mapped[int] = mapped_column(BigInteger)
    sender_message_id: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    edited_at: Mapped[datetime | None]
    retracted_at: Mapped[datetime | None]


class MessageVersion(Base):
    """Every version of a message's text (1 = as first sent); `relayed` once its copies are queued."""

    __tablename__ = "message_versions"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    body_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info=encrypted(purge_after="created_at"))
    body_hash: Mapped[str | None] = mapped_column(String(64))
    source_lang: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime]
    relayed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class MessageTranslation(Base):
    """A message version in one target language (made once per language, shared by its recipients)."""

    __tablename__ = "message_translations"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    lang: Mapped[str] = mapped_column(String(8), primary_key=True)
    text_enc: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted(purge_after="created_at"))
    text_hash: Mapped[str] = mapped_column(String(64))
    engine: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(128))
    translated: Mapped[bool] = mapped_column(Boolean)
    failure: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]


class Delivery(Base):
    """One operation in the outbox: send a copy to a chat, or edit/delete a copy sent before.

    `kind` says which area it belongs to ("relay", "broadcast", "reminder", "notice" ...) and
    `ref_id` which of its records (a message id, a broadcast id ...).
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_deliveries_chat_id_status", "chat_id", "status"),
        Index("ix_deliveries_kind_ref_id", "kind", "ref_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    ref_id: Mapped[int | None] = mapped_column(Integer)
    #: send, edit or delete
    op: Mapped[str] = mapped_column(String(8))
    #: for edit/delete: the send delivery whose Telegram messages are changed
    target_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"))
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"), index=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    lang: Mapped[str | None] = mapped_column(String(8))
    #: the case the copy belongs to (for the audit trail and exports), if any
    case_tag: Mapped[str | None] = mapped_column(String(64))
    #: encrypted JSON of what to send (texts already rendered and split)
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted(purge_after="created_at"))
    #: SHA-256 of the delivered text (how the audit trail refers to it)
    body_hash: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(SmallInteger, default=0)
    #: pending, sending, sent, failed, blocked, cancelled
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(96))
    lease_until: Mapped[datetime | None]
    #: the first Telegram message of the copy (the others are in chat_messages)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)


class ChatMessage(Base):
    """A Telegram message in an officer's chat with the bot and what it is a copy of (or the original).

    Replies, edits and retractions are mapped back to stored records through this table.
    """

    __tablename__ = "chat_messages"
    __table_args__ = (Index("ix_chat_messages_kind_ref_id_chat_id", "kind", "ref_id", "chat_id"),)

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    message_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(24))
    ref_id: Mapped[int | None] = mapped_column(Integer)
    #: the send delivery that produced it; None for an officer's own original message
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), index=True)
    part: Mapped[int] = mapped_column(SmallInteger, default=0)
    #: "text", "caption" (a file with its caption) or "pin" (location/contact, not editable)
    part_kind: Mapped[str] = mapped_column(String(8), default="text")
    origin: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime]


#: every encrypted column of this area: (table, column); values are bound to `column_aad(table, column)`
ENCRYPTED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("rooms", "title_enc"),
    ("rooms", "conditions_enc"),
    ("messages", "body_enc"),
    ("messages", "media_enc"),
    ("message_versions", "body_enc"),
    ("message_translations", "text_enc"),
    ("deliveries", "payload_enc"),
)
