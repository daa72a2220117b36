"""Coordinator broadcasts: scope, preview, confirm-once fan-out through the outbox, progress, acks, re-sends.

Scope grammar (what `/broadcast` and `liaison broadcast --scope` accept; case-insensitive keywords):

    scope   := part ( "+" part )*        officers matching ANY part (union)
    part    := filter ( "&" filter )*    officers matching EVERY filter of the part (intersection)
    filter  := "all" | "everyone"
             | "country:" CODE ("," CODE)*      CN, LA, VN
             | "agency:" NAME ("," NAME)*       NAME is a word or "a quoted name" (“smart quotes” too)
             | "case:" TAG ("," TAG)*           the current members of the case room(s)

Examples: `all`, `country:VN`, `country:LA,VN`, `agency:"Customs"`, `case:CN-VN-2026-0042`,
`country:VN+case:CN-VN-2026-0042` (every Vietnamese officer AND the case's members), and
`country:VN&agency:Customs` (Customs officers of Viet Nam only). Spaces around `+`, `&` and `,` are
allowed. Only active officers are recipients, never the author; an unknown country, agency or case
is an error rather than a silent empty scope.

Life of a broadcast (every step a database state, so two processes or two presses never send twice):
`draft` (recipients resolved, text translated ONCE per recipient language, off the event loop since
services run in worker threads) → `sending` (confirmed: one outbox copy per recipient with an
"Acknowledge" button, plus the coordinator's progress message) → `done` (no copy pending: the progress
message becomes the final report). Urgent broadcasts are re-sent to the active non-acknowledgers
every `settings.broadcast_resend_minutes`, at most `MAX_RESENDS` times, by `tick` (claimed with
`FOR UPDATE SKIP LOCKED` on PostgreSQL). Every step is an audit event.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import audit, delivery
from bot.audit import body_hash
from bot.core import Core
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_, Texts
from bot.models import COUNTRY_FLAG, Agency, Officer, OfficerStatus
from bot.models.broadcasts import Broadcast, BroadcastRecipient, BroadcastStatus, BroadcastText
from bot.models.relay import Delivery, Room, RoomMember, column_aad
from bot.officers import STAFF_ROLES, OfficerInfo, officer_info
from bot.outbound import Button
from bot.render import escape, split_html

logger = logging.getLogger(__name__)

KIND = "broadcast"
#: re-sends to non-acknowledgers of an urgent broadcast (the copies' outbox kind)
RESEND_KIND = "broadcast_resend"
#: the coordinator's progress message / final report
STATUS_KIND = "broadcast_status"
PRIORITIES = ("normal", "urgent")
#: outbox priorities: urgent alerts go before room chatter (10), normal ones after it
COPY_PRIORITY = {"normal": 8, "urgent": 12}
STATUS_PRIORITY = 14
MAX_RESENDS = 2
#: longest original text accepted (copies longer than one Telegram message are split by the outbox)
MAX_TEXT = 16000
#: a preview not confirmed within this time must be made again (the situation may have changed)
DRAFT_LIFETIME = timedelta(hours=2)
#: seconds between two edits of a progress message (edits count against Telegram's limits)
PROGRESS_EVERY = 3.0
EXTRAS_KEY = "broadcasts"

_TEXT_AAD = column_aad("broadcasts", "text_enc")
_LANG_AAD = column_aad("broadcast_texts", "text_enc")

# --- texts -------------------------------------------------------------------------------------------
HEADER_URGENT = N_("🚨 <b>URGENT ALERT</b> from {sender}")
HEADER_NORMAL = N_("📢 <b>Alert</b> from {sender}")
FROM_CENTRE = N_("the liaison coordination centre")
ACK_PROMPT = N_("Please press “Acknowledge” to confirm that you have read this alert.")
RESEND_HEADER = N_("🔁 <b>Reminder {n} of {total}:</b> you have not yet acknowledged this urgent alert.")
NOT_TRANSLATED = N_("(Not translated: no translation into your language was available; this is the original.)")
ACK_BUTTON = N_("✅ Acknowledge")
PROGRESS = N_("📢 Broadcast #{id}: sending… {done} of {total} handled ({sent} delivered).")
REPORT = N_("📢 Broadcast #{id} finished: {sent} of {total} delivered, {failed} failed, {blocked} blocked, "
            "{cancelled} not sent (access revoked).")
REPORT_FAILED_LINE = N_("• {name}: {reason}")
REPORT_BLOCKED_LINE = N_("• {name} has blocked the bot.")
REPORT_ACKS = N_("Acknowledged so far: {acked} of {total}.")
REPORT_RESEND = N_("Those who have not acknowledged will be reminded after {minutes} minutes (at most twice).")
ACKS_BUTTON = N_("👁 Who acknowledged")

NO_TEXT = N_("The alert has no text. Please write what the officers must know.")
TOO_LONG = N_("The alert is too long ({length} characters; at most {limit}).")
NOBODY = N_("The scope {scope} matches no active officer, so nobody would receive the alert.")
BAD_SCOPE = N_("I do not understand the scope {scope}. Examples: all, country:VN, country:LA,VN, "
               "agency:\"Customs\", case:CN-VN-2026-0042, country:VN+case:CN-VN-2026-0042.")
UNKNOWN_COUNTRY = N_("Unknown country {country}: use CN, LA or VN.")
UNKNOWN_AGENCY = N_("No agency is called {agency}.")
UNKNOWN_CASE = N_("No case room is tagged {case}.")
BAD_PRIORITY = N_("The priority must be normal or urgent.")
NO_BROADCAST = N_("There is no broadcast #{id}.")
NO_BROADCASTS = N_("You have not sent any broadcast yet.")
EXPIRED = N_("This preview has expired. Please start again with /broadcast.")
WAS_CANCELLED = N_("This broadcast was cancelled.")
NOT_RECIPIENT = N_("This alert was not addressed to you.")


# --- scope ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Filter:
    """One filter of a scope part: kind "all", "country", "agency" or "case", with its values."""

    kind: str
    values: tuple[str, ...] = ()

    def text(self) -> str:
        """Return the filter in the grammar's normalized form."""
        if self.kind == "all":
            return "all"
        if self.kind == "agency":
            return "agency:" + ",".join(f'"{v}"' if re.search(r'[\s,+&"]', v) else v for v in self.values)
        return f"{self.kind}:" + ",".join(self.values)


@dataclass(frozen=True)
class Scope:
    """A parsed scope: a union of parts, each an intersection of filters."""

    parts: tuple[tuple[Filter, ...], ...]

    def text(self) -> str:
        """Return the scope in the grammar's normalized form."""
        return "+".join("&".join(f.text() for f in part) for part in self.parts)


_QUOTES = {'"': '"', "“": "”", "„": "“", "«": "»", "'": "'"}
_KEYWORDS = ("country", "agency", "case")


class _Reader:
    """A cursor over the scope text."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def skip_spaces(self) -> None:
        """Move past whitespace."""
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        """Return the next character ('' at the end)."""
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def word(self) -> str:
        """Read a bare value or a quoted one."""
        ch = self.peek()
        if ch in _QUOTES:
            end = self.text.find(_QUOTES[ch], self.pos + 1)
            if end < 0:
                raise ValueError("unclosed quote")
            value = self.text[self.pos + 1:end]
            self.pos = end + 1
            return value.strip()
        start = self.pos
        while self.pos < len(self.text) and not self.text[self.pos].isspace() and self.text[self.pos] not in ",+&":
            self.pos += 1
        return self.text[start:self.pos]


def _filter(reader: _Reader) -> Filter:
    """Read one filter (keyword, ':' and comma-separated values)."""
    reader.skip_spaces()
    match = re.compile(r"(all|everyone|country|agency|case)\b(:)?", re.IGNORECASE).match(reader.text, reader.pos)
    if match is None:
        raise ValueError("expected a filter")
    keyword = match.group(1).lower()
    reader.pos = match.end()
    if keyword in ("all", "everyone"):
        if match.group(2):
            raise ValueError("'all' takes no value")
        return Filter("all")
    if not match.group(2):
        raise ValueError("a filter needs ':'")
    values: list[str] = []
    while True:
        reader.skip_spaces()
        value = reader.word()
        if not value:
            raise ValueError("empty value")
        values.append(value)
        save = reader.pos
        reader.skip_spaces()
        if reader.peek() == ",":
            reader.pos += 1
            continue
        reader.pos = save
        break
    if keyword == "country":
        values = [v.upper() for v in values]
    elif keyword == "case":
        values = [v.upper().lstrip("#") for v in values]
    return Filter(keyword, tuple(dict.fromkeys(values)))


def parse_scope_prefix(text: str) -> tuple[Scope, str]:
    """Read a scope at the start of `text`; return it and the rest (e.g. the alert's text)."""
    reader = _Reader(text or "")
    parts: list[tuple[Filter, ...]] = []
    current: list[Filter] = []
    try:
        while True:
            current.append(_filter(reader))
            save = reader.pos
            reader.skip_spaces()
            sep = reader.peek()
            if sep in ("+", "&"):
                reader.pos += 1
                if sep == "+":
                    parts.append(tuple(current))
                    current = []
                continue
            reader.pos = save
            break
    except ValueError:
        raise InvalidInput(BAD_SCOPE, scope=(text or "").strip()[:80]) from None
    parts.append(tuple(current))
    rest = reader.text[reader.pos:]
    if rest and not rest[0].isspace():
        raise InvalidInput(BAD_SCOPE, scope=(text or "").strip()[:80])
    return Scope(tuple(parts)), rest.strip()


def parse_scope(text: str) -> Scope:
    """Parse a whole scope (see the module docstring); raise InvalidInput when it is not one."""
    scope, rest = parse_scope_prefix(text)
    if rest:
        raise InvalidInput(BAD_SCOPE, scope=text.strip()[:80])
    return scope


def resolve(s: Session, scope: Scope, *, exclude: int | None = None) -> list[Officer]:
    """Return the active officers a scope matches (ordered by id); unknown names raise InvalidInput."""
    officers = list(s.execute(select(Officer).where(Officer.status == OfficerStatus.ACTIVE)
                              .order_by(Officer.id)).scalars())
    by_id = {o.id: o for o in officers}
    chosen: set[int] = set()
    for part in scope.parts:
        ids = set(by_id)
        for flt in part:
            ids &= _matching(s, flt, officers)
        chosen |= ids
    chosen.discard(exclude)  # type: ignore[arg-type]
    return [by_id[i] for i in sorted(chosen)]


def _matching(s: Session, flt: Filter, officers: list[Officer]) -> set[int]:
    """Return the ids of the officers one filter matches; unknown names raise InvalidInput."""
    if flt.kind == "all":
        return {o.id for o in officers}
    if flt.kind == "country":
        for code in flt.values:
            if code not in COUNTRY_FLAG:
                raise InvalidInput(UNKNOWN_COUNTRY, country=code)
        return {o.id for o in officers if o.country in flt.values}
    if flt.kind == "agency":
        agency_ids: set[int] = set()
        for name in flt.values:
            found = set(s.execute(select(Agency.id).where(func.lower(Agency.name) == name.lower())).scalars())
            if not found:
                raise InvalidInput(UNKNOWN_AGENCY, agency=name)
            agency_ids |= found
        return {o.id for o in officers if o.agency_id in agency_ids}
    members: set[int] = set()
    for tag in flt.values:
        room_id = s.execute(select(Room.id).where(func.upper(Room.case_tag) == tag, Room.kind == "case")
                            ).scalar_one_or_none()
        if room_id is None:
            raise InvalidInput(UNKNOWN_CASE, case=tag)
        members |= set(s.execute(select(RoomMember.officer_id).where(
            RoomMember.room_id == room_id, RoomMember.left_at.is_(None))).scalars())
    return members


# --- roles ------------------------------------------------------------------------------------------
def check_sender(core: Core, actor: OfficerInfo | None, action: str = "broadcast") -> None:
    """Allow coordinators and admins (and the CLI); anyone else is refused AND the refusal audited."""
    if actor is None or (actor.active and actor.role in STAFF_ROLES):
        return
    with core.db.transaction() as s:
        audit.record(s, "broadcast.refused", actor_id=actor.id, at=core.clock.now(),
                     data={"action": action, "role": actor.role})
    raise NotAllowed()


# --- draft and preview ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preview:
    """What the coordinator confirms: recipients per country and the text in each language."""

    id: int
    scope: str
    priority: str
    total: int
    #: country code (None for officers without one) → recipients
    by_country: dict[str | None, int]
    #: language → the alert's text in it (plain, not escaped)
    texts: dict[str, str]
    #: languages for which no translation was available (the original is sent)
    untranslated: tuple[str, ...]
    source_lang: str


def draft(core: Core, actor: OfficerInfo | None, scope_text: str, text: str, *, priority: str = "normal",
          source_lang: str | None = None, status_chat_id: int | None = None) -> Preview:
    """Resolve the recipients, translate once per language and store a draft to preview (blocking)."""
    check_sender(core, actor)
    text = (text or "").strip()
    if not text:
        raise InvalidInput(NO_TEXT)
    if len(text) > MAX_TEXT:
        raise InvalidInput(TOO_LONG, length=len(text), limit=MAX_TEXT)
    if priority not in PRIORITIES:
        raise InvalidInput(BAD_PRIORITY)
    scope = parse_scope(scope_text)
    source = source_lang or (actor.language if actor else "en")
    with core.db.session() as s:
        recipients = [officer_info(o) for o in resolve(s, scope, exclude=actor.id if actor else None)]
    if not recipients:
        raise InvalidInput(NOBODY, scope=scope.text())
    langs = sorted({r.language for r in recipients})
    # Translation is the slow part: done here, outside any transaction, once per language.
    translations = core.translator.translate(text, source, [lang for lang in langs if lang != source])
    now = core.clock.now()
    with core.db.transaction() as s:
        row = Broadcast(created_by_id=actor.id if actor else None, scope=scope.text(), priority=priority,
                        status=BroadcastStatus.DRAFT, source_lang=source,
                        text_enc=core.cipher.encrypt(text, _TEXT_AAD), body_hash=body_hash(text), created_at=now,
                        status_chat_id=status_chat_id, resends=0)
        s.add(row)
        s.flush()
        bodies: dict[str, str] = {}
        untranslated: list[str] = []
        for lang in langs:
            tr = translations.get(lang)
            body = text if lang == source or tr is None else tr.text
            ok = lang == source or (tr is not None and tr.translated)
            if not ok:
                untranslated.append(lang)
            bodies[lang] = body
            s.add(BroadcastText(broadcast_id=row.id, lang=lang, text_enc=core.cipher.encrypt(body, _LANG_AAD),
                                engine="identity" if lang == source else (tr.engine if tr else "none"),
                                translated=ok, failure=None if ok else (tr.failure if tr else "missing")))
        s.add_all([BroadcastRecipient(broadcast_id=row.id, officer_id=r.id, chat_id=r.telegram_id, lang=r.language,
                                      country=r.country, resent=0) for r in recipients])
        audit.record(s, "broadcast.drafted", actor_id=actor.id if actor else None, at=now, data={
            "broadcast": row.id, "scope": row.scope, "priority": priority, "hash": row.body_hash,
            "source": source, "recipients": len(recipients), "languages": langs})
        broadcast_id = row.id
    return Preview(broadcast_id, scope.text(), priority, len(recipients), dict(Counter(r.country for r in recipients)),
                   bodies, tuple(untranslated), source)


def _sender_label(tr: Texts, author: Officer | None) -> str:
    """Return who the alert is from (flag, name, agency), or the coordination centre for the CLI."""
    if author is None:
        return tr(FROM_CENTRE)
    flag = COUNTRY_FLAG.get(author.country or "", "")
    agency = f" ({escape(author.agency.name)})" if author.agency is not None else ""
    return f"{flag} <b>{escape(author.display_name)}</b>{agency}".strip()


def render_copy(texts: Texts, author: Officer | None, priority: str, body: str, translated: bool,
                resend: int = 0) -> str:
    """Return one recipient language's copy as Telegram HTML (header, text, note, acknowledgment prompt)."""
    sender = _sender_label(texts, author)
    msgid = HEADER_URGENT if priority == PRIORITIES[1] else HEADER_NORMAL
    header = texts.gettext(msgid).format(sender=sender)
    lines = []
    if resend:
        lines.append(texts(RESEND_HEADER, n=resend, total=MAX_RESENDS))
    lines += [header, "", escape(body)]
    if not translated:
        lines += ["", f"<i>{texts(NOT_TRANSLATED)}</i>"]
    lines += ["", texts(ACK_PROMPT)]
    return "\n".join(lines)


def _payloads(s: Session, core: Core, b: Broadcast, resend: int = 0) -> dict[str, delivery.Payload]:
    """Return one payload per recipient language (shared by every copy in that language)."""
    author = s.get(Officer, b.created_by_id) if b.created_by_id else None
    out: dict[str, delivery.Payload] = {}
    for row in s.execute(select(BroadcastText).where(BroadcastText.broadcast_id == b.id)).scalars():
        texts = core.catalogs.get(row.lang)
        body = core.cipher.decrypt(row.text_enc, _LANG_AAD)
        out[row.lang] = delivery.Payload(
            text=render_copy(texts, author, b.priority, body, row.translated, resend),
            buttons=((Button(texts.plain(ACK_BUTTON), f"bc:ack:{b.id}"),),))
    return out


# --- confirm / cancel -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Confirmation:
    """The outcome of a confirm press: `already` when the broadcast had been confirmed or cancelled."""

    id: int
    status: str
    queued: int
    total: int
    already: bool = False


def _locked_broadcast(s: Session, broadcast_id: int) -> Broadcast:
    """Return a broadcast locked for update (PostgreSQL; SQLite transactions are serialized)."""
    query = select(Broadcast).where(Broadcast.id == broadcast_id)
    if s.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = s.execute(query).scalar_one_or_none()
    if row is None:
        raise NotFound(NO_BROADCAST, id=broadcast_id)
    return row


def _check_owner(actor: OfficerInfo | None, b: Broadcast) -> None:
    """Allow only the author (or an admin, or the CLI) to confirm or cancel a draft."""
    if actor is not None and b.created_by_id != actor.id and actor.role != "admin":
        raise NotAllowed()


def confirm(core: Core, actor: OfficerInfo | None, broadcast_id: int) -> Confirmation:
    """Send a draft: one state transition draft → sending queues every copy; a second press does nothing."""
    check_sender(core, actor, "confirm")
    now = core.clock.now()
    with core.db.transaction() as s:
        b = _locked_broadcast(s, broadcast_id)
        _check_owner(actor, b)
        total = s.execute(select(func.count()).select_from(BroadcastRecipient)
                          .where(BroadcastRecipient.broadcast_id == b.id)).scalar_one()
        if b.status != BroadcastStatus.DRAFT:
            return Confirmation(b.id, b.status, 0, total, already=True)
        if now - b.created_at > DRAFT_LIFETIME:
            raise InvalidInput(EXPIRED)
        rows = list(s.execute(select(BroadcastRecipient, Officer)
                              .join(Officer, Officer.id == BroadcastRecipient.officer_id)
                              .where(BroadcastRecipient.broadcast_id == b.id,
                                     Officer.status == OfficerStatus.ACTIVE)
                              .order_by(BroadcastRecipient.officer_id)))
        if not rows:
            raise InvalidInput(NOBODY, scope=b.scope)
        payloads = _payloads(s, core, b)
        b.status, b.confirmed_at = BroadcastStatus.SENDING, now
        if b.priority == "urgent":
            b.next_resend_at = now + timedelta(minutes=core.settings.broadcast_resend_minutes)
        audit.record(s, "broadcast.confirmed", actor_id=actor.id if actor else None, at=now, data={
            "broadcast": b.id, "scope": b.scope, "priority": b.priority, "hash": b.body_hash,
            "recipients": [r.officer_id for r, _o in rows]})
        prio = COPY_PRIORITY[b.priority]
        delivery.enqueue_many(s, core, [
            delivery.NewDelivery(kind=KIND, ref_id=b.id, chat_id=o.telegram_id, recipient_id=o.id, lang=r.lang,
                                 payload=payloads[r.lang], priority=prio)
            for r, o in rows], actor_id=actor.id if actor else None)
        if b.status_chat_id is not None:
            texts = core.catalogs.get(actor.language if actor else None)
            status = delivery.enqueue(s, core, kind=STATUS_KIND, ref_id=b.id, chat_id=b.status_chat_id,
                                      recipient_id=actor.id if actor else None, lang=texts.lang,
                                      payload=delivery.Payload(text=texts(PROGRESS, id=b.id, done=0, total=len(rows),
                                                                          sent=0)),
                                      priority=STATUS_PRIORITY, actor_id=actor.id if actor else None)
            b.status_delivery_id = status.id
        queued = len(rows)
    delivery.wake(core)
    return Confirmation(broadcast_id, BroadcastStatus.SENDING, queued, total)


def cancel(core: Core, actor: OfficerInfo | None, broadcast_id: int) -> bool:
    """Drop a draft (True), or say it was already confirmed or cancelled (False)."""
    check_sender(core, actor, "cancel")
    now = core.clock.now()
    with core.db.transaction() as s:
        b = _locked_broadcast(s, broadcast_id)
        _check_owner(actor, b)
        if b.status != BroadcastStatus.DRAFT:
            return False
        b.status, b.cancelled_at = BroadcastStatus.CANCELLED, now
        audit.record(s, "broadcast.cancelled", actor_id=actor.id if actor else None, at=now,
                     data={"broadcast": b.id})
    return True


# --- acknowledgments --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ack:
    """An acknowledgment: when it was recorded, and whether it had been recorded before."""

    broadcast_id: int
    at: datetime
    already: bool


def acknowledge(core: Core, officer: OfficerInfo, broadcast_id: int) -> Ack:
    """Record that an officer read a broadcast (once; a second press keeps the first time)."""
    now = core.clock.now()
    with core.db.transaction() as s:
        row = s.get(BroadcastRecipient, (broadcast_id, officer.id))
        b = s.get(Broadcast, broadcast_id)
        if row is None or b is None or b.status in (BroadcastStatus.DRAFT, BroadcastStatus.CANCELLED):
            raise NotFound(NOT_RECIPIENT)
        if row.acked_at is not None:
            return Ack(broadcast_id, row.acked_at, True)
        row.acked_at = now
        audit.record(s, "broadcast.acknowledged", actor_id=officer.id, at=now,
                     data={"broadcast": broadcast_id, "officer": officer.id})
    return Ack(broadcast_id, now, False)


@dataclass(frozen=True)
class RecipientState:
    """One recipient of a broadcast as the coordinator sees it."""

    officer: OfficerInfo
    acked_at: datetime | None
    #: status of their copy (sent, failed, blocked, cancelled, pending, sending)
    status: str
    reason: str | None
    resent: int


@dataclass(frozen=True)
class Report:
    """A broadcast's delivery figures and who acknowledged."""

    id: int
    scope: str
    priority: str
    status: str
    created_at: datetime
    confirmed_at: datetime | None
    finished_at: datetime | None
    resends: int
    counts: dict[str, int]
    recipients: list[RecipientState] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Return how many officers the broadcast is for."""
        return len(self.recipients)

    @property
    def acked(self) -> list[RecipientState]:
        """Return those who acknowledged, earliest first."""
        return sorted((r for r in self.recipients if r.acked_at), key=lambda r: r.acked_at)  # type: ignore[arg-type,return-value]

    @property
    def not_acked(self) -> list[RecipientState]:
        """Return those who have not acknowledged."""
        return [r for r in self.recipients if r.acked_at is None]


def latest_id(core: Core, actor: OfficerInfo | None) -> int:
    """Return the id of the actor's latest confirmed broadcast (any, from the CLI)."""
    with core.db.session() as s:
        query = select(func.max(Broadcast.id)).where(Broadcast.confirmed_at.is_not(None))
        if actor is not None:
            query = query.where(Broadcast.created_by_id == actor.id)
        found = s.execute(query).scalar_one_or_none()
    if found is None:
        raise NotFound(NO_BROADCASTS)
    return int(found)


def report(core: Core, actor: OfficerInfo | None, broadcast_id: int | None = None) -> Report:
    """Return who received and who acknowledged a broadcast (coordinators and admins)."""
    check_sender(core, actor, "report")
    if broadcast_id is None:
        broadcast_id = latest_id(core, actor)
    with core.db.session() as s:
        b = s.get(Broadcast, broadcast_id)
        if b is None:
            raise NotFound(NO_BROADCAST, id=broadcast_id)
        return _report_in(s, b)


def delivery_rows(s: Session, broadcast_id: int) -> list[Any]:
    """Return (recipient_id, status, reason) of a broadcast's first copies."""
    return list(s.execute(select(Delivery.recipient_id, Delivery.status, Delivery.reason).where(
        Delivery.kind == KIND, Delivery.ref_id == broadcast_id, Delivery.op == "send")))


# --- progress and the final report ------------------------------------------------------------------
def _counts(s: Session, broadcast_id: int) -> Counter[str]:
    """Return the statuses of a broadcast's first copies, counted."""
    return Counter({status: int(n) for status, n in s.execute(
        select(Delivery.status, func.count()).where(Delivery.kind == KIND, Delivery.ref_id == broadcast_id,
                                                    Delivery.op == "send").group_by(Delivery.status))})


def render_report(texts: Texts, rep: Report, resend_minutes: int) -> str:
    """Return the final report in the coordinator's language (figures, failures with reasons, acks)."""
    c = rep.counts
    lines = [texts(REPORT, id=rep.id, total=rep.total, sent=c.get("sent", 0), failed=c.get("failed", 0),
                   blocked=c.get("blocked", 0), cancelled=c.get("cancelled", 0))]
    for r in rep.recipients:
        name = f"{r.officer.flag} {r.officer.display_name}".strip()
        if r.status == "failed":
            lines.append(texts(REPORT_FAILED_LINE, name=name, reason=r.reason or "?"))
        elif r.status == "blocked":
            lines.append(texts(REPORT_BLOCKED_LINE, name=name))
    lines.append(texts(REPORT_ACKS, acked=len(rep.acked), total=rep.total))
    if rep.priority == "urgent" and rep.resends < MAX_RESENDS and rep.not_acked:
        lines.append(texts(REPORT_RESEND, minutes=resend_minutes))
    return "\n".join(lines)


def update_progress(core: Core, broadcast_id: int) -> bool:
    """Edit the progress message (sent/total), or turn it into the final report once nothing is pending.

    Returns True when the broadcast is finished. The transition sending → done happens once.
    """
    now = core.clock.now()
    with core.db.transaction() as s:
        b = _locked_broadcast(s, broadcast_id)
        counts = _counts(s, b.id)
        total = sum(counts.values())
        open_ = counts.get(delivery.PENDING, 0) + counts.get(delivery.SENDING, 0)
        finishing = b.status == BroadcastStatus.SENDING and open_ == 0
        if finishing:
            b.status, b.finished_at = BroadcastStatus.DONE, now
            audit.record(s, "broadcast.finished", at=now, data={"broadcast": b.id, "counts": dict(counts)})
        if b.status_delivery_id is None or (b.status == BroadcastStatus.DONE and not finishing):
            return b.status == BroadcastStatus.DONE
        author = s.get(Officer, b.created_by_id) if b.created_by_id else None
        texts = core.catalogs.get(author.language if author else None)
        if finishing:
            s.flush()
            rep = _report_in(s, b)
            text = render_report(texts, rep, core.settings.broadcast_resend_minutes)
            buttons: tuple[tuple[Button, ...], ...] = ((Button(texts.plain(ACKS_BUTTON), f"bc:acks:{b.id}"),),)
        else:
            text = texts(PROGRESS, id=b.id, done=total - open_, total=total, sent=counts.get(delivery.SENT, 0))
            buttons = ()
        delivery.enqueue_edit(s, core, b.status_delivery_id, delivery.Payload(text=text, buttons=buttons))
    delivery.wake(core)
    return finishing


def _report_in(s: Session, b: Broadcast) -> Report:
    """Build the report inside an open session."""
    copies = {d.recipient_id: d for d in delivery_rows(s, b.id)}
    recipients = []
    for r, o in s.execute(select(BroadcastRecipient, Officer).join(Officer, Officer.id == BroadcastRecipient.officer_id)
                          .where(BroadcastRecipient.broadcast_id == b.id).order_by(Officer.id)):
        copy = copies.get(r.officer_id)
        recipients.append(RecipientState(officer_info(o), r.acked_at, copy.status if copy else "not-queued",
                                         copy.reason if copy else None, r.resent))
    return Report(b.id, b.scope, b.priority, b.status, b.created_at, b.confirmed_at, b.finished_at, b.resends,
                  dict(Counter(r.status for r in recipients)), recipients)


class ProgressTracker:
    """Per process: turns the outbox's delivery events into throttled progress edits and the final report.

    A finished copy schedules one update of its broadcast `every` seconds later (unless one is already
    scheduled), so a fan-out of any size edits the progress message at most once per `every` seconds,
    and the last copy is followed by the final report within `every` seconds. The database decides what
    the message says and when the broadcast is finished, so a restart loses nothing (see `tick`).
    """

    def __init__(self, core: Core, every: float = PROGRESS_EVERY) -> None:
        self.core = core
        self.every = every
        self._scheduled: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_event(self, event: delivery.DeliveryEvent) -> None:
        """Schedule a progress update for the copy's broadcast when a copy reached a final status."""
        if event.op != "send" or event.status not in delivery.FINAL_STATUSES or event.ref_id is None:
            return
        if event.ref_id in self._scheduled:
            return
        self._scheduled.add(event.ref_id)
        task = asyncio.create_task(self._update_later(event.ref_id), name=f"broadcast-progress-{event.ref_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _update_later(self, broadcast_id: int) -> None:
        """Wait `every` seconds, then update the broadcast's progress message."""
        await asyncio.sleep(self.every)
        self._scheduled.discard(broadcast_id)
        try:
            await asyncio.to_thread(update_progress, self.core, broadcast_id)
        except Exception:
            logger.exception("could not update the progress of broadcast %s", broadcast_id)

    async def flush(self) -> None:
        """Wait for the scheduled updates (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel the scheduled updates (the tick finishes what they would have done)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._scheduled.clear()


def _open_copies(core: Core, broadcast_id: int) -> int:
    """Return how many first copies are still pending or being sent."""
    with core.db.session() as s:
        c = _counts(s, broadcast_id)
    return c.get(delivery.PENDING, 0) + c.get(delivery.SENDING, 0)


def tracker(core: Core) -> ProgressTracker:
    """Return this process's progress tracker (created and subscribed to the outbox on first use)."""
    found = core.extras.get(EXTRAS_KEY)
    if found is None:
        found = core.extras[EXTRAS_KEY] = ProgressTracker(core)
        delivery.outbox(core).subscribe(KIND, found.on_event)
    return found  # type: ignore[no-any-return]


async def release_tracker(core: Core) -> None:
    """Stop this process's progress tracker and unsubscribe it (a service stopping)."""
    found: ProgressTracker | None = core.extras.pop(EXTRAS_KEY, None)
    if found is not None:
        delivery.outbox(core).unsubscribe(KIND, found.on_event)
        await found.stop()


# --- the tick: re-sends and unfinished reports ------------------------------------------------------
@dataclass(frozen=True)
class Resent:
    """One re-send round of an urgent broadcast."""

    broadcast_id: int
    round: int
    officer_ids: tuple[int, ...]


def resend_due(core: Core, limit: int = 20) -> list[Resent]:
    """Re-send due urgent broadcasts to their active non-acknowledgers; each round exactly once."""
    now = core.clock.now()
    done: list[Resent] = []
    with core.db.transaction() as s:
        query = (select(Broadcast).where(Broadcast.priority == "urgent",
                                         Broadcast.status.in_((BroadcastStatus.SENDING, BroadcastStatus.DONE)),
                                         Broadcast.next_resend_at.is_not(None), Broadcast.next_resend_at <= now,
                                         Broadcast.resends < MAX_RESENDS)
                 .order_by(Broadcast.id).limit(limit))
        if s.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for b in list(s.execute(query).scalars()):
            in_flight = set(s.execute(select(Delivery.recipient_id).where(
                Delivery.kind.in_((KIND, RESEND_KIND)), Delivery.ref_id == b.id,
                Delivery.status.in_((delivery.PENDING, delivery.SENDING)))).scalars())
            rows = [(r, o) for r, o in s.execute(
                select(BroadcastRecipient, Officer).join(Officer, Officer.id == BroadcastRecipient.officer_id)
                .where(BroadcastRecipient.broadcast_id == b.id, BroadcastRecipient.acked_at.is_(None),
                       Officer.status == OfficerStatus.ACTIVE).order_by(Officer.id))
                if o.id not in in_flight]
            b.resends += 1
            b.next_resend_at = (now + timedelta(minutes=core.settings.broadcast_resend_minutes)
                                if b.resends < MAX_RESENDS else None)
            if not rows:
                b.next_resend_at = None
                continue
            payloads = _payloads(s, core, b, resend=b.resends)
            for r, _o in rows:
                r.resent += 1
            audit.record(s, "broadcast.resent", at=now, data={
                "broadcast": b.id, "round": b.resends, "recipients": [o.id for _r, o in rows]})
            delivery.enqueue_many(s, core, [
                delivery.NewDelivery(kind=RESEND_KIND, ref_id=b.id, chat_id=o.telegram_id, recipient_id=o.id,
                                     lang=r.lang, payload=payloads[r.lang], priority=COPY_PRIORITY["urgent"])
                for r, o in rows])
            done.append(Resent(b.id, b.resends, tuple(o.id for _r, o in rows)))
    if done:
        delivery.wake(core)
    return done


def finish_stale(core: Core) -> list[int]:
    """Finish broadcasts whose last copy was handled while no process was watching (e.g. a restart)."""
    with core.db.session() as s:
        ids = list(s.execute(select(Broadcast.id).where(Broadcast.status == BroadcastStatus.SENDING)).scalars())
    return [bid for bid in ids if _open_copies(core, bid) == 0 and update_progress(core, bid)]


def tick(core: Core) -> list[Resent]:
    """The scheduler's job: finish reports left unfinished, then re-send what is due."""
    finish_stale(core)
    return resend_due(core)


def stats(core: Core, broadcast_id: int) -> dict[str, int]:
    """Return the copies' status counts (first copies only) — for the CLI and tests."""
    with core.db.session() as s:
        return dict(_counts(s, broadcast_id))
