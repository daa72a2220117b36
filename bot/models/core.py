"""Officers, agencies, invites, the audit chain and the small tables the vetting gate needs."""

from __future__ import annotations

import enum
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
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.crypto import encrypted
from bot.models.base import Base


class Role(enum.StrEnum):
    """What an officer may do."""

    OFFICER = "officer"
    COORDINATOR = "coordinator"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Country(enum.StrEnum):
    """The three countries of the liaison network."""

    CN = "CN"
    LA = "LA"
    VN = "VN"


#: each country's default interface/translation language and time zone
COUNTRY_LANGUAGE = {"CN": "zh", "LA": "lo", "VN": "vi"}
COUNTRY_TIMEZONE = {"CN": "Asia/Shanghai", "LA": "Asia/Vientiane", "VN": "Asia/Ho_Chi_Minh"}
COUNTRY_FLAG = {"CN": "\U0001f1e8\U0001f1f3", "LA": "\U0001f1f1\U0001f1e6", "VN": "\U0001f1fb\U0001f1f3"}


class OfficerStatus(enum.StrEnum):
    """Whether an officer can use the bot."""

    ACTIVE = "active"
    REVOKED = "revoked"


class Agency(Base):
    """A police, customs, border, forest-inspection or CITES authority of one country."""

    __tablename__ = "agencies"
    __table_args__ = (UniqueConstraint("country", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    country: Mapped[str] = mapped_column(String(2))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class Officer(Base):
    """A vetted person registered through an invite; any role."""

    __tablename__ = "officers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    username: Mapped[str | None] = mapped_column(String(64), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(2))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    language: Mapped[str] = mapped_column(String(8))
    #: IANA time zone; None = the country's
    timezone: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=OfficerStatus.ACTIVE)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))

    agency: Mapped[Agency | None] = relationship(lazy="joined")


class Invite(Base):
    """A one-time registration code, stored only as its hash."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(2))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    language: Mapped[str] = mapped_column(String(8))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    cancelled_at: Mapped[datetime | None]


class AccessAttempt(Base):
    """A registration attempt or a stranger's contact, for throttling brute force."""

    __tablename__ = "access_attempts"
    __table_args__ = (Index("ix_access_attempts_telegram_id_at", "telegram_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime]
    #: "bad-code", "stranger", "registered"
    kind: Mapped[str] = mapped_column(String(16))
    success: Mapped[bool] = mapped_column(Boolean, default=False)


class ProcessedUpdate(Base):
    """A Telegram update already handled, so a redelivered one is ignored."""

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]


class InboxUpdate(Base):
    """A Telegram update as fetched, kept until it is handled: a crash before that replays it at start.

    python-telegram-bot confirms fetched updates to Telegram at its next poll, before they are handled;
    this table is what makes an update fetched just before a crash still arrive.
    """

    __tablename__ = "inbox_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    received_at: Mapped[datetime]
    #: encrypted JSON of the update, as the Bot API sent it
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted(purge_after="received_at"))
    #: how often it was replayed after a restart (given up after `bot.inbox.MAX_REPLAYS`)
    replays: Mapped[int] = mapped_column(SmallInteger, default=0)


class KeyValue(Base):
    """Small installation facts (e.g. the bot's username, learned at start)."""

    __tablename__ = "kv"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AuditEvent(Base):
    """One link of the append-only, hash-chained audit trail."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(48), index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    case_tag: Mapped[str | None] = mapped_column(String(64), index=True)
    #: canonical JSON of the event's data (message bodies appear only as their SHA-256)
    data: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The single row every append locks, so the chain never forks (also across processes)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
