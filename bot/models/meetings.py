"""Tables of the meetings area: joint meetings, action items, owners' schedules and the area's outbox."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.crypto import encrypted
from bot.models.base import Base


class ItemStatus(enum.StrEnum):
    """Where an action item stands."""

    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class OwnerState(enum.StrEnum):
    """Whether an owner still receives reminders for an item."""

    ACTIVE = "active"
    #: the officer was revoked after the assignment
    INACTIVE = "inactive"
    #: the officer blocked the bot (Telegram answered 403)
    BLOCKED = "blocked"
    #: a coordinator took the item away from this officer
    REMOVED = "removed"


class MessageStatus(enum.StrEnum):
    """Life of one outgoing message of the area."""

    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"
    #: nothing to send (recipient gone, empty digest)
    SKIPPED = "skipped"
    #: the process died between claiming and recording the send: never resent (at most once)
    UNKNOWN = "unknown"


class Meeting(Base):
    """A joint meeting of the agencies; its texts are encrypted at rest."""

    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted("liaison:meeting-title"))
    held_on: Mapped[date] = mapped_column(Date)
    place: Mapped[bytes | None] = mapped_column(LargeBinary, info=encrypted("liaison:meeting-place"))
    participants: Mapped[bytes | None] = mapped_column(
        LargeBinary, info=encrypted("liaison:meeting-participants")
    )
    #: language the title and item texts were written in
    language: Mapped[str] = mapped_column(String(8))
    #: who receives escalations, help requests and the weekly digest
    coordinator_id: Mapped[int] = mapped_column(ForeignKey("officers.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    created_at: Mapped[datetime]
    #: "telegram" or "import"
    source: Mapped[str] = mapped_column(String(16))
    #: SHA-256 of title, date and coordinator: finds a meeting imported twice without decrypting
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)


class ActionItem(Base):
    """One action agreed at a meeting: text, due date, optional case tag."""

    __tablename__ = "action_items"
    __table_args__ = (Index("ix_action_items_status_escalate_at", "status", "escalate_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    #: 1, 2, 3 ... within the meeting
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted("liaison:action-item"))
    due_on: Mapped[date] = mapped_column(Date)
    case_tag: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default=ItemStatus.OPEN)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    #: next time the coordinator is told the item is overdue (None: not open or not due yet planned)
    escalate_at: Mapped[datetime | None]
    escalations: Mapped[int] = mapped_column(Integer, default=0)


def meeting_text_aad(row: Mapping[str, Any]) -> bytes:
    """Return the associated data binding an encrypted text to its meeting, item and language."""
    return f"liaison:meeting-text:{row['meeting_id']}:{row['item_id'] or 0}:{row['lang']}".encode()


class MeetingText(Base):
    """A meeting title (item_id None) or an item text in one language, encrypted."""

    __tablename__ = "meeting_texts"
    __table_args__ = (UniqueConstraint("meeting_id", "item_id", "lang"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("action_items.id"), index=True)
    lang: Mapped[str] = mapped_column(String(8))
    text: Mapped[bytes] = mapped_column(
        LargeBinary, info=encrypted(meeting_text_aad, aad_columns=("meeting_id", "item_id", "lang"))
    )
    engine: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(96), default="")
    translated: Mapped[bool] = mapped_column(Boolean, default=True)


class ActionOwner(Base):
    """An officer responsible for an item, with the next time the database says to remind them."""

    __tablename__ = "action_owners"
    __table_args__ = (
        UniqueConstraint("item_id", "officer_id"),
        # The tick's claim query: due rows of active owners, oldest first.
        Index("ix_action_owners_state_next_remind_at", "state", "next_remind_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("action_items.id"), index=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=OwnerState.ACTIVE)
    next_remind_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    last_reminded_at: Mapped[datetime | None]
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]


class MeetingMessage(Base):
    """One message of the area to one officer (reminder, escalation, digest, notice): the outbox."""

    __tablename__ = "meeting_messages"
    __table_args__ = (Index("ix_meeting_messages_status_due_at", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: assigned, reminder, escalation, help, completed, no_owner, owner_lost, blocked, digest
    kind: Mapped[str] = mapped_column(String(16))
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("action_items.id"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("action_owners.id"))
    #: the officer a notice is about (who asked for help, who was revoked ...)
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    #: what makes this message unique (e.g. one reminder per owner and schedule slot)
    dedupe: Mapped[str] = mapped_column(String(96), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.PENDING)
    #: the earliest time it may be sent (later after a 429)
    due_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
