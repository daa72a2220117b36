"""Tables of the broadcasts area: alerts from coordinators, their texts per language and their recipients.

Texts are stored encrypted (`text_enc`, bound to `column_aad(table, column)` like the relay's columns).
The copies themselves live in the relay's outbox (`deliveries`, kind "broadcast", ref_id = broadcast id).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.crypto import encrypted
from bot.models.base import Base


class BroadcastStatus(enum.StrEnum):
    """Life of a broadcast: a draft is previewed, then confirmed exactly once (or cancelled)."""

    DRAFT = "draft"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


class Broadcast(Base):
    """One alert: its scope, priority, original text (encrypted) and where its progress is shown."""

    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_status_next_resend_at", "status", "next_resend_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: None = sent from the server's CLI
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"), index=True)
    #: the scope as typed (normalized), e.g. "country:LA,VN+case:CN-VN-2026-0042"
    scope: Mapped[str] = mapped_column(Text)
    #: "normal" or "urgent"
    priority: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12), default=BroadcastStatus.DRAFT)
    source_lang: Mapped[str] = mapped_column(String(8))
    text_enc: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted())
    body_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    #: the coordinator's chat that shows progress and the final report (None from the CLI)
    status_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    #: the outbox delivery of the progress message (edited as the fan-out goes)
    status_delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"))
    #: urgent only: re-sends to non-acknowledgers done so far (at most MAX_RESENDS) and when the next is due
    resends: Mapped[int] = mapped_column(SmallInteger, default=0)
    next_resend_at: Mapped[datetime | None]


class BroadcastText(Base):
    """The alert in one recipient language, translated once and shared by every copy in that language."""

    __tablename__ = "broadcast_texts"

    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"), primary_key=True)
    lang: Mapped[str] = mapped_column(String(8), primary_key=True)
    text_enc: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted())
    engine: Mapped[str] = mapped_column(String(32))
    translated: Mapped[bool] = mapped_column(Boolean)
    failure: Mapped[str | None] = mapped_column(String(32))


class BroadcastRecipient(Base):
    """An officer a broadcast is for (resolved at preview time) and when they acknowledged it."""

    __tablename__ = "broadcast_recipients"

    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"), primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id"), primary_key=True, index=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    lang: Mapped[str] = mapped_column(String(8))
    country: Mapped[str | None] = mapped_column(String(2))
    acked_at: Mapped[datetime | None]
    #: re-sends this officer received
    resent: Mapped[int] = mapped_column(SmallInteger, default=0)


#: every encrypted column of this area: (table, column)
ENCRYPTED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("broadcasts", "text_enc"),
    ("broadcast_texts", "text_enc"),
)
