"""The relay: an officer's message is stored, translated once per language, and queued for each member.

Flow of `post`: check the sender may post → pick the room (the one a reply belongs to, else the
current room) → store the message, its first version and the mapping of the sender's own Telegram
message (one transaction, audited "message.sent") → `fan_out`: translate once per target language
(`core.translator`, blocking — services run in worker threads), render each language's copy, and
queue one delivery per recipient (second transaction, audited "message.translated"). A crash between
the two is repaired by `resume`. Edits add a version and queue edits of every copy; retractions queue
deletions. Message texts, translations and media details are stored encrypted.

Handling codes: a room has one (H0–H3, set by a coordinator); a sender raises it for one message by
starting the message with `H2:` or `#H2` (any of H0–H3, case-insensitive, full-width colon too). The
marker is removed from the relayed text. A code lower than the room's is ignored (the sender is told).
From H2 up, copies are sent with Telegram's protect_content.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, select

from bot import audit, delivery
from bot.audit import body_hash
from bot.core import Core
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.i18n import N_, Texts
from bot.models import Officer, OfficerStatus, Role
from bot.models.relay import (
    ChatMessage,
    CurrentRoom,
    Delivery,
    Message,
    MessageTranslation,
    MessageVersion,
    Room,
    RoomMember,
    column_aad,
)
from bot.officers import OfficerInfo, officer_info
from bot.render import HANDLING_CODES, CopyText, SenderView, escape, language_name, relayed_html
from bot.rooms import NO_ROOM, require_poster, room_conditions
from bot.translation.base import Translation
from bot.translation.detect import detect, script_counts

logger = logging.getLogger(__name__)

KIND = "relay"
#: relayed messages go before broadcasts and notices queued at the same time
PRIORITY = 10
FILE_KINDS = ("photo", "document", "voice", "video", "audio")
SUPPORTED_KINDS = ("text", *FILE_KINDS, "location", "contact")
PROTECT_FROM = "H2"
_BODY_AAD = column_aad("messages", "body_enc")
_MEDIA_AAD = column_aad("messages", "media_enc")
_VERSION_AAD = column_aad("message_versions", "body_enc")
_TRANSLATION_AAD = column_aad("message_translations", "text_enc")

_HANDLING_PREFIX = re.compile(r"^\s*(?:#(H[0-3])(?![\w-])\s*[:：]?|(H[0-3])\s*[:：])\s*", re.IGNORECASE)
_HASHTAG = re.compile(r"(?<![\w#&])#([^\s#.,;:!?()\[\]{}<>'\"“”‘’。，、！？；：]+)")

EMPTY = N_("Your message is empty, so nothing was sent.")
UNSUPPORTED = N_("I cannot relay this kind of message. Send text, photos, documents, voice, video, locations or contacts.")
NO_AUDITOR_POSTS = N_("Auditors cannot post into rooms.")
HANDLING_KEPT = N_("{case} is handled as {room_code}; a message can only raise the code, so {room_code} applies.")
MIXED_SCRIPTS = N_("Your message mixes languages; it was translated as {language}. One language per message translates best.")
NOBODY_ELSE = N_("Nobody else is in {case} yet, so your message is kept but not delivered. A coordinator can add members with /add.")
LEFT_ROOM = N_("You are no longer a member of {case}, so your reply was not sent.")
RETRACT_HOW = N_("To retract a message, reply to it with /retract.")
RETRACT_OWN = N_("You can only retract your own messages.")
RETRACTED_ALREADY = N_("That message was already retracted.")
RETRACTED = N_("Your message was retracted: {count} copies are being deleted where Telegram still allows it.")
RETRACTED_NOTICE = N_("This message was retracted by its sender.")
NOT_DELIVERED = N_("Your message in {case} could not be delivered to {name}.")
BLOCKED = N_("{name} has blocked the bot, so your message in {case} did not reach them.")


@dataclass(frozen=True, slots=True)
class Incoming:
    """An officer's message as the relay needs it (parsed from Telegram by the handler)."""

    chat_id: int
    message_id: int
    kind: str
    text: str | None = None
    reply_to_message_id: int | None = None
    file_id: str | None = None
    file_unique_id: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    phone_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """Something the sender should be told after posting (rendered with `render_note`)."""

    msgid: str
    params: dict[str, Any] = field(default_factory=dict)
    #: params holding language codes, shown as language names
    languages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PostResult:
    """What `post` stored."""

    message_id: int
    case_tag: str
    handling: str
    source_lang: str
    recipients: int
    notes: tuple[Note, ...] = ()
    duplicate: bool = False
    #: the file to hash (download through getFile), when the message carries one
    file_id: str | None = None


def render_note(texts: Texts, note: Note) -> str:
    """Return a note in the reader's language."""
    params = {k: language_name(texts, v) if k in note.languages else v for k, v in note.params.items()}
    return texts(note.msgid, **params)


def split_handling(text: str) -> tuple[str | None, str]:
    """Return the handling code a message starts with (H2: or #H2), and the text without it."""
    match = _HANDLING_PREFIX.match(text)
    if not match:
        return None, text
    return (match.group(1) or match.group(2)).upper(), text[match.end():]


def hashtags(text: str) -> list[str]:
    """Return the message's #hashtags, each once (first spelling kept), in order."""
    seen: dict[str, str] = {}
    for match in _HASHTAG.finditer(text or ""):
        tag = "#" + match.group(1).rstrip("-_")
        if len(tag) > 1:
            seen.setdefault(tag.casefold(), tag)
    return list(seen.values())


def needs_translation(text: str) -> bool:
    """Tell whether a text has words to translate (emoji, numbers and links alone have none)."""
    return any(v > 0 for v in script_counts(text).values())


def _mixed(text: str) -> bool:
    """Tell whether a text mixes scripts substantially (each of two at least a quarter of it)."""
    counts = script_counts(text)
    total = sum(counts.values())
    return total >= 8 and sum(1 for v in counts.values() if v >= 0.25 * total) >= 2


def _max_code(a: str, b: str | None) -> str:
    """Return the stricter of two handling codes."""
    if b is None:
        return a
    return max(a, b, key=HANDLING_CODES.index)


def _media_doc(incoming: Incoming) -> dict[str, Any] | None:
    """Return the media details stored (encrypted) with a message."""
    doc = {k: getattr(incoming, k) for k in ("file_id", "file_unique_id", "file_name", "mime_type", "file_size",
                                             "latitude", "longitude", "phone_number", "first_name", "last_name")}
    doc = {k: v for k, v in doc.items() if v is not None}
    return doc or None


def wait_for_mapping(core: Core, chat_id: int, message_id: int, timeout: float = 5.0) -> bool:
    """Wait until a Telegram message in a chat is known, while a delivery to that chat is still in flight.

    Telegram shows a copy before the worker has recorded which stored message it is; a reply that
    quick must not be mistaken for a new message. Returns whether the message is known. Blocking:
    services run in worker threads.
    """
    deadline = time.monotonic() + timeout
    while True:
        with core.db.session() as s:
            if s.get(ChatMessage, (chat_id, message_id)) is not None:
                return True
            in_flight = s.execute(select(Delivery.id).where(Delivery.chat_id == chat_id,
                                                            Delivery.status == delivery.SENDING).limit(1)).first()
        if in_flight is None or time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


# The relay's hot statements, built once (with bind parameters) on the tables themselves: executed on
# the session's connection they skip the ORM's unit of work and statement caching work per message.
_ROOMS = Room.__table__
_MESSAGES = Message.__table__
_VERSIONS = MessageVersion.__table__
_TRANSLATIONS = MessageTranslation.__table__
_MEMBERS = RoomMember.__table__
_CURRENT = CurrentRoom.__table__
_OFFICERS = Officer.__table__
_ROOM_COLUMNS = (_ROOMS.c.id, _ROOMS.c.case_tag, _ROOMS.c.kind, _ROOMS.c.handling, _ROOMS.c.conditions_enc)
_MESSAGE_COLUMNS = (_MESSAGES.c.id, _MESSAGES.c.room_id, _MESSAGES.c.case_tag, _MESSAGES.c.sender_id, _MESSAGES.c.kind,
                    _MESSAGES.c.handling, _MESSAGES.c.media_enc, _MESSAGES.c.reply_to_id, _MESSAGES.c.retracted_at)
_INSERT_MESSAGE = _MESSAGES.insert().returning(_MESSAGES.c.id)
_INSERT_VERSION = _VERSIONS.insert()
_INSERT_TRANSLATIONS = _TRANSLATIONS.insert()
_ALREADY_STORED = select(_MESSAGES.c.id, _MESSAGES.c.case_tag, _MESSAGES.c.handling, _MESSAGES.c.source_lang).where(
    _MESSAGES.c.sender_chat_id == bindparam("chat_id"), _MESSAGES.c.sender_message_id == bindparam("message_id"))
_CURRENT_ROOM = (select(*_ROOM_COLUMNS).join(_CURRENT, _CURRENT.c.room_id == _ROOMS.c.id)
                 .join(_MEMBERS, (_MEMBERS.c.room_id == _ROOMS.c.id) & (_MEMBERS.c.officer_id == _CURRENT.c.officer_id))
                 .where(_CURRENT.c.officer_id == bindparam("officer_id"), _MEMBERS.c.left_at.is_(None)))
_ROOM_OF_MESSAGE = (select(*_ROOM_COLUMNS).join(_MESSAGES, _MESSAGES.c.room_id == _ROOMS.c.id)
                    .where(_MESSAGES.c.id == bindparam("message_id")))
_RECIPIENTS = (select(_OFFICERS.c.id, _OFFICERS.c.telegram_id, _OFFICERS.c.language)
               .join(_MEMBERS, _MEMBERS.c.officer_id == _OFFICERS.c.id)
               .where(_MEMBERS.c.room_id == bindparam("room_id"), _MEMBERS.c.left_at.is_(None),
                      _OFFICERS.c.status == OfficerStatus.ACTIVE, _OFFICERS.c.role != Role.AUDITOR,
                      _OFFICERS.c.id != bindparam("sender_id"))
               .order_by(_OFFICERS.c.id))
_THIS_VERSION = (_VERSIONS.c.message_id == bindparam("v_message")) & (_VERSIONS.c.version == bindparam("v_version"))
#: a version (locked: one fan-out per version) with its message's columns, in one statement
_VERSION_FOR_UPDATE = (select(_VERSIONS.c.relayed, _VERSIONS.c.source_lang, *_MESSAGE_COLUMNS)
                       .join(_MESSAGES, _MESSAGES.c.id == _VERSIONS.c.message_id)
                       .where(_THIS_VERSION).with_for_update(of=_VERSIONS))
_MARK_RELAYED = _VERSIONS.update().where(_THIS_VERSION).values(relayed=True)


def _target_room(s: Any, officer: OfficerInfo, incoming: Incoming) -> tuple[Any, int | None]:
    """Return the room a message goes to (id, case tag, kind, handling, conditions) and the id of the
    relayed message it replies to, if it replies to one."""
    conn = s.connection()
    if incoming.reply_to_message_id is not None:
        ref = delivery.lookup(s, incoming.chat_id, incoming.reply_to_message_id)
        if ref is not None and ref.kind == KIND and ref.ref_id is not None:
            room = conn.execute(_ROOM_OF_MESSAGE, {"message_id": ref.ref_id}).one()
            member = s.get(RoomMember, (room.id, officer.id))
            if member is None or member.left_at is not None:
                raise NotAllowed(LEFT_ROOM, case=room.case_tag)
            return room, ref.ref_id
    room = conn.execute(_CURRENT_ROOM, {"officer_id": officer.id}).one_or_none()
    if room is None:
        raise NotFound(NO_ROOM)
    return room, None


def post(core: Core, officer: OfficerInfo, incoming: Incoming) -> PostResult:
    """Store an officer's message and queue its translated copies; a redelivered update is stored once."""
    if officer.role == Role.AUDITOR:
        raise NotAllowed(NO_AUDITOR_POSTS)
    require_poster(officer)
    if incoming.kind not in SUPPORTED_KINDS:
        raise InvalidInput(UNSUPPORTED)
    code, text = split_handling(unicodedata.normalize("NFC", incoming.text or ""))
    text = text.strip()
    if incoming.kind == "text" and not text:
        raise InvalidInput(EMPTY)
    notes: list[Note] = []
    source = detect(text, officer.language) if text and needs_translation(text) else officer.language
    if text and _mixed(text):
        notes.append(Note(MIXED_SCRIPTS, {"language": source}, ("language",)))
    if incoming.reply_to_message_id is not None:
        wait_for_mapping(core, incoming.chat_id, incoming.reply_to_message_id)
    now = core.clock.now()
    # The relay's hottest transaction: plain statements on the session's connection (no unit of work).
    with core.db.transaction() as s:
        conn = s.connection()
        existing = conn.execute(_ALREADY_STORED, {"chat_id": incoming.chat_id,
                                                  "message_id": incoming.message_id}).first()
        if existing is not None:
            return PostResult(existing.id, existing.case_tag, existing.handling, existing.source_lang, 0,
                              duplicate=True)
        room, reply_to_id = _target_room(s, officer, incoming)
        handling = _max_code(room.handling, code)
        if code is not None and code != handling:
            notes.append(Note(HANDLING_KEPT, {"case": room.case_tag, "room_code": room.handling}))
        tags = " ".join([room.case_tag, *hashtags(text)])
        media = _media_doc(incoming)
        digest = body_hash(text) if text else None
        message_id = conn.execute(_INSERT_MESSAGE, dict(
            room_id=room.id, case_tag=room.case_tag, sender_id=officer.id, kind=incoming.kind, source_lang=source,
            body_enc=core.cipher.encrypt(text, _BODY_AAD) if text else None, body_hash=digest,
            media_enc=core.cipher.encrypt(json.dumps(media, ensure_ascii=False), _MEDIA_AAD) if media else None,
            file_sha256=None, file_size=incoming.file_size, tags=tags, handling=handling, reply_to_id=reply_to_id,
            sender_chat_id=incoming.chat_id, sender_message_id=incoming.message_id, version=1, created_at=now,
            edited_at=None, retracted_at=None)).scalar_one()
        conn.execute(_INSERT_VERSION, dict(
            message_id=message_id, version=1, body_enc=core.cipher.encrypt(text, _VERSION_AAD) if text else None,
            body_hash=digest, source_lang=source, created_at=now, relayed=False))
        delivery.record_origin(s, core, chat_id=incoming.chat_id, message_id=incoming.message_id, kind=KIND,
                               ref_id=message_id)
        audit.record(s, "message.sent", actor_id=officer.id, case_tag=room.case_tag, at=now, data={
            "message": message_id, "room": room.id, "kind": incoming.kind, "lang": source, "hash": digest,
            "handling": handling, "tags": tags, "reply_to": reply_to_id,
            "file_unique_id": incoming.file_unique_id})
        case_tag = room.case_tag
        langs = {o.language for o in _recipients(s, room.id, officer.id)}
        where = _Where(SenderView(officer.display_name, officer.agency_name, officer.flag), room.case_tag,
                       room.kind == "dm", room.conditions_enc)
    recipients = fan_out(core, message_id, 1, known=(text, source, langs), where=where)
    if recipients == 0:
        notes.append(Note(NOBODY_ELSE, {"case": case_tag}))
    return PostResult(message_id, case_tag, handling, source, recipients, tuple(notes),
                      file_id=incoming.file_id if incoming.kind in FILE_KINDS else None)


def translate(core: Core, text: str, source: str, targets: Sequence[str]) -> dict[str, Translation]:
    """Translate a text once into each target language (identity for the source and for wordless texts)."""
    wanted = sorted(set(targets))
    out: dict[str, Translation] = {}
    if not needs_translation(text):
        return {lang: Translation(text, source, lang, engine="identity") for lang in wanted}
    foreign = [lang for lang in wanted if lang != source]
    if foreign:
        out.update(core.translator.translate(text, source, foreign))
    for lang in wanted:
        if lang == source:
            out[lang] = Translation(text, source, lang, engine="identity")
    return out


@dataclass(frozen=True, slots=True)
class _Recipient:
    """A member who gets a copy."""

    id: int
    telegram_id: int
    language: str


def _recipients(s: Any, room_id: int, sender_id: int) -> list[_Recipient]:
    """Return the room's active members other than the sender (auditors never receive copies)."""
    return [_Recipient(*row) for row in s.connection().execute(_RECIPIENTS, {"room_id": room_id,
                                                                            "sender_id": sender_id})]


def _copies(s: Any, message_id: int) -> list[Delivery]:
    """Return the copies of a message that were not cancelled, oldest first."""
    return list(s.execute(select(Delivery).where(Delivery.kind == KIND, Delivery.ref_id == message_id,
                                                Delivery.op == "send", Delivery.status != delivery.CANCELLED)
                          .order_by(Delivery.id)).scalars())


def fan_out(core: Core, message_id: int, version: int,
            known: tuple[str, str, set[str]] | None = None, where: _Where | None = None) -> int:
    """Translate a message version once per language and queue its copies (or edits); return how many.

    `known` = (text, source language, target languages) when the caller has just read them.
    """
    translations: dict[str, Translation] = {}
    for _attempt in range(3):
        if known is not None:
            text, source, langs = known
            known = None
        else:
            text, source, langs = _version_to_relay(core, message_id, version)
            if langs is None:
                return 0
        missing = langs - set(translations)
        if text and missing:
            translations.update(translate(core, text, source, sorted(missing)))
        done = _queue_copies(core, message_id, version, text, translations, where)
        if done is not None:
            return done
    raise RuntimeError(f"members of the room of message {message_id} kept changing during the relay")


def _version_to_relay(core: Core, message_id: int, version: int) -> tuple[str, str, set[str] | None]:
    """Return a version's text, source language and target languages (None when already relayed)."""
    with core.db.session() as s:
        msg = s.get(Message, message_id)
        ver = s.get(MessageVersion, (message_id, version))
        if msg is None or ver is None or ver.relayed:
            return "", "", None
        text = core.cipher.decrypt_opt(ver.body_enc, _VERSION_AAD) or ""
        if version == 1:
            return text, ver.source_lang, {o.language for o in _recipients(s, msg.room_id, msg.sender_id)}
        return text, ver.source_lang, {d.lang or "en" for d in _copies(s, message_id)}


@dataclass(frozen=True, slots=True)
class _Where:
    """Where a message was posted and by whom, as every copy's header shows it."""

    sender: SenderView
    case_tag: str
    is_dm: bool
    conditions_enc: bytes | None

    def conditions(self, core: Core, lang: str) -> str | None:
        """Return the room's H3 conditions in a language."""
        if self.conditions_enc is None:
            return None
        return room_conditions(core, Room(conditions_enc=self.conditions_enc), lang)


def _where(core: Core, s: Any, msg: Any) -> _Where:
    """Read a message's room and sender (when fan-out runs apart from posting: edits, recovery)."""
    room = s.get(Room, msg.room_id)
    sender = officer_info(s.get(Officer, msg.sender_id))
    return _Where(SenderView(sender.display_name, sender.agency_name, sender.flag), room.case_tag,
                  room.kind == "dm", room.conditions_enc)


def _queue_copies(core: Core, message_id: int, version: int, text: str,
                  translations: dict[str, Translation], where: _Where | None = None) -> int | None:
    """Store translations and queue copies in one transaction; None when a language is missing."""
    now = core.clock.now()
    with core.db.transaction() as s:
        conn = s.connection()  # plain statements where the relay is hot (see `post`)
        this_version = {"v_message": message_id, "v_version": version}
        ver = msg = conn.execute(_VERSION_FOR_UPDATE, this_version).one()
        if ver.relayed:
            return 0
        if where is None:
            where = _where(core, s, msg)
        if msg.retracted_at is not None:
            conn.execute(_MARK_RELAYED, this_version)
            return 0
        recipients = _recipients(s, msg.room_id, msg.sender_id) if version == 1 else []
        copies = _copies(s, message_id) if version > 1 else []
        langs = {o.language for o in recipients} | {d.lang or "en" for d in copies}
        if text and langs - set(translations):
            return None
        html_by_lang: dict[str, str] = {}
        stored = [dict(message_id=message_id, version=version, lang=lang,
                       text_enc=core.cipher.encrypt(tr.text, _TRANSLATION_AAD), text_hash=body_hash(tr.text),
                       engine=tr.engine, model=tr.model, translated=tr.translated, failure=tr.failure, created_at=now)
                  for lang in sorted(langs) if (tr := translations.get(lang)) is not None]
        if stored:
            conn.execute(_INSERT_TRANSLATIONS, stored)
        for lang in sorted(langs):
            tr = translations.get(lang)
            body = CopyText(tr.text if tr else None, text or None, ver.source_lang, lang,
                            tr.translated if tr else True, tr.failure if tr else None)
            html_by_lang[lang] = relayed_html(
                core.catalogs.get(lang), sender=where.sender, case_tag=where.case_tag, is_dm=where.is_dm,
                handling=msg.handling, conditions=where.conditions(core, lang), body=body, kind=msg.kind,
                edited=version > 1)
        queued: list[list[Any]] = []
        if version == 1:
            media = json.loads(core.cipher.decrypt(msg.media_enc, _MEDIA_AAD)) if msg.media_enc else {}
            payloads = {lang: _payload(msg, media, html) for lang, html in html_by_lang.items()}
            rows = delivery.enqueue_many(s, core, [
                delivery.NewDelivery(KIND, o.telegram_id, payloads[o.language], ref_id=msg.id, recipient_id=o.id,
                                     lang=o.language, priority=PRIORITY, case_tag=where.case_tag,
                                     body_hash=_hash_of(translations.get(o.language)))
                for o in recipients], actor_id=msg.sender_id, case_tag=where.case_tag, audit_event=False)
            queued = delivery.queued_summary(rows)
            count = len(recipients)
        else:
            count = 0
            for copy in copies:
                lang = copy.lang or "en"
                if delivery.enqueue_edit(s, core, copy.id, delivery.Payload(text=html_by_lang[lang]),
                                         actor_id=msg.sender_id, body_hash=_hash_of(translations.get(lang))
                                         ) is not None:
                    count += 1
        conn.execute(_MARK_RELAYED, this_version)
        # One event: the translations made and, for a new message, the copies queued (as "delivery.queued" lists).
        audit.record(s, "message.translated", actor_id=msg.sender_id, case_tag=where.case_tag, at=now, data={
            "message": msg.id, "version": version, "source": ver.source_lang, "copies": count,
            "translations": {lang: {"engine": t.engine, "model": t.model, "translated": t.translated,
                                    "failure": t.failure, "hash": body_hash(t.text)}
                             for lang, t in sorted(translations.items()) if lang in langs},
            "deliveries": queued})
    delivery.wake(core)
    return count


def _hash_of(tr: Translation | None) -> str | None:
    """Return the hash of a translation's text."""
    return body_hash(tr.text) if tr is not None else None


def _payload(msg: Any, media: dict[str, Any], html_text: str) -> delivery.Payload:
    """Return what each recipient is sent: the rendered text with the message's media."""
    protect = HANDLING_CODES.index(msg.handling) >= HANDLING_CODES.index(PROTECT_FROM)
    reply_ref = (KIND, msg.reply_to_id) if msg.reply_to_id else None
    if msg.kind in FILE_KINDS:
        return delivery.Payload(text=html_text, protect=protect, reply_ref=reply_ref,
                                file=delivery.FileSpec(msg.kind, media["file_id"]))
    if msg.kind == "location":
        return delivery.Payload(text=html_text, protect=protect, reply_ref=reply_ref,
                                location=(float(media["latitude"]), float(media["longitude"])))
    if msg.kind == "contact":
        return delivery.Payload(text=html_text, protect=protect, reply_ref=reply_ref,
                                contact=(media["phone_number"], media.get("first_name") or "-",
                                         media.get("last_name")))
    return delivery.Payload(text=html_text, protect=protect, reply_ref=reply_ref)


def edit(core: Core, officer: OfficerInfo, chat_id: int, message_id: int, new_text: str | None) -> int | None:
    """Record an edit of a relayed message as a new version and queue edits of its copies.

    Returns the new version number, or None when the edited message was not relayed (a command, an
    unchanged text) or was retracted.
    """
    code, text = split_handling(unicodedata.normalize("NFC", new_text or ""))
    text = text.strip()
    now = core.clock.now()
    with core.db.transaction() as s:
        msg = s.execute(select(Message).where(Message.sender_chat_id == chat_id,
                                              Message.sender_message_id == message_id)).scalar_one_or_none()
        if msg is None or msg.sender_id != officer.id or msg.retracted_at is not None:
            return None
        if msg.kind == "text" and not text:
            raise InvalidInput(EMPTY)
        old = core.cipher.decrypt_opt(msg.body_enc, _BODY_AAD) or ""
        if old == text:
            return None
        source = detect(text, officer.language) if text and needs_translation(text) else officer.language
        msg.version += 1
        msg.handling = _max_code(msg.handling, code)
        msg.body_enc = core.cipher.encrypt(text, _BODY_AAD) if text else None
        previous_hash, msg.body_hash = msg.body_hash, body_hash(text) if text else None
        msg.source_lang, msg.edited_at = source, now
        msg.tags = " ".join([msg.case_tag, *hashtags(text)])
        s.add(MessageVersion(message_id=msg.id, version=msg.version,
                             body_enc=core.cipher.encrypt(text, _VERSION_AAD) if text else None,
                             body_hash=msg.body_hash, source_lang=source, created_at=now, relayed=False))
        audit.record(s, "message.edited", actor_id=officer.id, case_tag=msg.case_tag, at=now, data={
            "message": msg.id, "version": msg.version, "hash": msg.body_hash, "previous_hash": previous_hash,
            "lang": source, "tags": msg.tags})
        version, msg_id = msg.version, msg.id
    fan_out(core, msg_id, version)
    return version


def retract(core: Core, officer: OfficerInfo, chat_id: int, reply_to_message_id: int | None) -> int:
    """Retract the officer's message a /retract replies to: delete its copies; return how many."""
    if reply_to_message_id is None:
        raise InvalidInput(RETRACT_HOW)
    wait_for_mapping(core, chat_id, reply_to_message_id)
    now = core.clock.now()
    with core.db.transaction() as s:
        ref = delivery.lookup(s, chat_id, reply_to_message_id)
        if ref is None or ref.kind != KIND or ref.ref_id is None:
            raise InvalidInput(RETRACT_HOW)
        msg = s.get(Message, ref.ref_id)
        assert msg is not None
        if msg.sender_id != officer.id:
            raise NotAllowed(RETRACT_OWN)
        if msg.retracted_at is not None:
            raise Conflict(RETRACTED_ALREADY)
        msg.retracted_at = now
        count = 0
        for copy in _copies(s, msg.id):
            fallback = escape(core.catalogs.get(copy.lang).plain(RETRACTED_NOTICE))
            delivery.enqueue_delete(s, core, copy.id, fallback_text=f"<i>{fallback}</i>", actor_id=officer.id)
            count += 1
        audit.record(s, "message.retracted", actor_id=officer.id, case_tag=msg.case_tag, at=now,
                     data={"message": msg.id, "hash": msg.body_hash, "copies": count})
    delivery.wake(core)
    return count


def sha256_hex(data: bytes) -> str:
    """Return the SHA-256 of a file's bytes as hex (blocking for big files: run it in a worker thread)."""
    return hashlib.sha256(data).hexdigest()


def record_file_hash(core: Core, message_id: int, sha256: str, size: int) -> None:
    """Record the SHA-256 of a message's file as downloaded through getFile (evidence)."""
    now = core.clock.now()
    with core.db.transaction() as s:
        msg = s.get(Message, message_id)
        if msg is None or msg.file_sha256 == sha256:
            return
        msg.file_sha256, msg.file_size = sha256, size
        audit.record(s, "message.file_hashed", actor_id=msg.sender_id, case_tag=msg.case_tag, at=now,
                     data={"message": message_id, "sha256": sha256, "size": size})


def record_file_hash_failure(core: Core, message_id: int, reason: str) -> None:
    """Audit that a message's file could not be downloaded for hashing (e.g. over Telegram's 20 MB)."""
    with core.db.transaction() as s:
        msg = s.get(Message, message_id)
        if msg is None:
            return
        audit.record(s, "message.file_hash_failed", actor_id=msg.sender_id, case_tag=msg.case_tag,
                     at=core.clock.now(), data={"message": message_id, "reason": reason[:300]})


def unhashed_files(core: Core, within: timedelta = timedelta(days=1), limit: int = 50) -> list[tuple[int, str]]:
    """Return recent messages whose file has no hash yet (e.g. the bot stopped before hashing)."""
    with core.db.session() as s:
        rows = s.execute(select(Message).where(Message.kind.in_(FILE_KINDS), Message.file_sha256.is_(None),
                                               Message.created_at >= core.clock.now() - within)
                         .order_by(Message.id).limit(limit)).scalars()
        out = []
        for msg in rows:
            media = json.loads(core.cipher.decrypt(msg.media_enc, _MEDIA_AAD)) if msg.media_enc else {}
            if media.get("file_id"):
                out.append((msg.id, str(media["file_id"])))
        return out


def resume(core: Core, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Relay message versions stored but never fanned out (the bot stopped in between); return how many."""
    cutoff = core.clock.now() - older_than
    with core.db.session() as s:
        pending = list(s.execute(select(MessageVersion.message_id, MessageVersion.version).where(
            MessageVersion.relayed.is_(False), MessageVersion.created_at <= cutoff)
            .order_by(MessageVersion.message_id, MessageVersion.version)))
    for message_id, version in pending:
        try:
            fan_out(core, message_id, version)
        except Exception:
            logger.exception("could not relay message %s version %s; will try again", message_id, version)
    if pending:
        logger.info("relayed %d message versions left over from before a restart", len(pending))
    return len(pending)


def notify_sender(core: Core, event: delivery.DeliveryEvent) -> bool:
    """Tell the sender when a copy of their message could not be delivered (failed or blocked)."""
    if event.kind != KIND or event.op != "send" or event.status not in (delivery.FAILED, delivery.BLOCKED):
        return False
    with core.db.transaction() as s:
        msg = s.get(Message, event.ref_id)
        sender = s.get(Officer, msg.sender_id) if msg else None
        recipient = s.get(Officer, event.recipient_id) if event.recipient_id else None
        if msg is None or sender is None or recipient is None or sender.status != OfficerStatus.ACTIVE:
            return False
        t = core.catalogs.get(sender.language)
        msgid = BLOCKED if event.status == delivery.BLOCKED else NOT_DELIVERED
        delivery.enqueue(s, core, kind="notice", chat_id=sender.telegram_id, recipient_id=sender.id,
                         lang=sender.language, case_tag=msg.case_tag, ref_id=msg.id, priority=5,
                         payload=delivery.Payload(text=t(msgid, name=recipient.display_name, case=msg.case_tag),
                                                  reply_ref=(KIND, msg.id)))
    delivery.wake(core)
    return True


def message_text(core: Core, message_id: int, lang: str | None = None, version: int | None = None) -> str | None:
    """Return a stored message's text (original, or its translation into `lang`), decrypted."""
    with core.db.session() as s:
        msg = s.get(Message, message_id)
        if msg is None:
            return None
        version = version or msg.version
        if lang is None or lang == msg.source_lang:
            ver = s.get(MessageVersion, (message_id, version))
            return core.cipher.decrypt_opt(ver.body_enc, _VERSION_AAD) if ver else None
        tr = s.get(MessageTranslation, (message_id, version, lang))
        return core.cipher.decrypt(tr.text_enc, _TRANSLATION_AAD) if tr else None

