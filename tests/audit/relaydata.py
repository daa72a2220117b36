"""Relay records stored as the relay area stores them (encrypted with its associated data), for export tests
and the benchmark: a room, messages with their first version, a translation per recipient language, one
delivery per recipient, and the audit events that refer to the texts by their hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from bot import audit
from bot.core import Core
from bot.models.relay import (
    Delivery,
    Message,
    MessageTranslation,
    MessageVersion,
    Room,
    RoomMember,
    column_aad,
)
from bot.officers import OfficerInfo

T0 = datetime(2026, 8, 3, 1, 30, tzinfo=UTC)


@dataclass
class Sent:
    """What `send` stored."""

    message_id: int
    delivery_ids: list[int]


def room(core: Core, tag: str, members: list[OfficerInfo], at: datetime) -> int:
    """Create a case room with members."""
    with core.db.transaction() as s:
        r = Room(
            case_tag=tag,
            kind="case",
            handling="H0",
            created_at=at,
            title_enc=core.cipher.encrypt(f"Case {tag}", column_aad("rooms", "title_enc")),
        )
        s.add(r)
        s.flush()
        for m in members:
            s.add(RoomMember(room_id=r.id, officer_id=m.id, joined_at=at))
        audit.record(s, "room.created", case_tag=tag, at=at, data={"room": r.id})
        return r.id


def store_message(
    s: Session,
    core: Core,
    room_id: int,
    tag: str,
    sender: OfficerInfo,
    text: str,
    recipients: list[OfficerInfo],
    at: datetime,
    n: int,
    *,
    status: str = "sent",
    record: bool = True,
) -> Sent:
    """Store one message with its translations and deliveries in the session (as the relay does)."""
    h = audit.body_hash(text)
    msg = Message(
        room_id=room_id,
        case_tag=tag,
        sender_id=sender.id,
        kind="text",
        source_lang=sender.language,
        body_enc=core.cipher.encrypt(text, column_aad("messages", "body_enc")),
        body_hash=h,
        tags=tag,
        handling="H0",
        sender_chat_id=sender.telegram_id,
        sender_message_id=n,
        version=1,
        created_at=at,
    )
    s.add(msg)
    s.flush()
    s.add(
        MessageVersion(
            message_id=msg.id,
            version=1,
            source_lang=sender.language,
            created_at=at,
            relayed=True,
            body_enc=core.cipher.encrypt(text, column_aad("message_versions", "body_enc")),
            body_hash=h,
        )
    )
    langs = {r.language for r in recipients if r.language != sender.language}
    translated = {}
    for lang in sorted(langs):
        t = f"[{lang}] {text}"
        translated[lang] = t
        s.add(
            MessageTranslation(
                message_id=msg.id,
                version=1,
                lang=lang,
                text_hash=audit.body_hash(t),
                text_enc=core.cipher.encrypt(t, column_aad("message_translations", "text_enc")),
                engine="tag",
                model="tag-1",
                translated=True,
                created_at=at,
            )
        )
    rows: list[dict[str, Any]] = []
    for r in recipients:
        t = translated.get(r.language, text)
        rows.append(
            dict(
                kind="relay",
                ref_id=msg.id,
                op="send",
                recipient_id=r.id,
                chat_id=r.telegram_id,
                lang=r.language,
                body_hash=audit.body_hash(t),
                priority=0,
                status=status,
                attempts=1,
                created_at=at,
                next_attempt_at=at,
                finished_at=at + timedelta(seconds=1),
                telegram_message_id=5000 + n,
                payload_enc=core.cipher.encrypt(t, column_aad("deliveries", "payload_enc")),
            )
        )
    ids = [int(x) for x in s.execute(insert(Delivery).returning(Delivery.id), rows).scalars()] if rows else []
    if record:
        audit.record(
            s,
            "message.sent",
            actor_id=sender.id,
            case_tag=tag,
            at=at,
            data={"message": msg.id, "body": h, "lang": sender.language},
        )
    return Sent(msg.id, ids)


def send(
    core: Core,
    room_id: int,
    tag: str,
    sender: OfficerInfo,
    text: str,
    recipients: list[OfficerInfo],
    at: datetime,
    n: int = 1,
) -> Sent:
    """Store one message in its own transaction."""
    with core.db.transaction() as s:
        return store_message(s, core, room_id, tag, sender, text, recipients, at, n)
