"""Reminders: the schedule, and the tick that claims what the database says is due.

The database is the only source of truth. Each owner of an open action item has `next_remind_at`
(a UTC instant: 09:00 in the owner's time zone on a day of the schedule). APScheduler only ticks;
each tick, in ONE transaction:

1. gives up claims left by a process that died mid-send (never resent: at most once);
2. retires owners who were revoked (and tells the coordinator);
3. claims due owners with ``SELECT … FOR UPDATE SKIP LOCKED`` and, in the same transaction, writes one
   claimed reminder per owner and moves `next_remind_at` to the first slot AFTER now, so a bot that was
   down over several slots sends one reminder at start, not one per missed slot;
4. does the same for overdue items (escalation to the meeting's coordinator) and weekly digests;
5. claims pending notices (help requests, completions, retries after a 429).

`tick` returns the claimed messages, rendered in each recipient's language; `deliver` sends them
through an `Outbound` and records each result. A second bot process on the same PostgreSQL database
skips rows the first one holds and finds them no longer due once it commits; every message also has a
unique `dedupe` key, so even a bug cannot write the same reminder twice.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date as babel_format_date
from sqlalchemy import Integer, and_, column, func, select, update, values
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot import audit
from bot.core import Core
from bot.i18n import N_, Texts
from bot.models import COUNTRY_TIMEZONE, Officer, OfficerStatus, UtcDateTime
from bot.models.meetings import (
    ActionItem,
    ActionOwner,
    ItemStatus,
    Meeting,
    MeetingMessage,
    MeetingText,
    MessageStatus,
    OwnerState,
    meeting_text_aad,
)
from bot.outbound import Button, Outbound, OutMessage, SendError
from bot.translation.base import Translation

logger = logging.getLogger(__name__)

#: seconds between two ticks of the scheduler
TICK_SECONDS = 60
#: at most this many reminders (and as many notices) are claimed by one tick; the runner ticks again
#: at once while batches come back full
CLAIM_BATCH = 200
#: a claim older than this belongs to a process that died mid-send
CLAIM_LEASE = timedelta(minutes=10)
#: sends of one message before it is given up
MAX_ATTEMPTS = 8
#: pause between two sends (Telegram allows about 30 messages a second to different chats)
SEND_PACE = 0.05
#: Telegram's limit on a message's length
MESSAGE_LIMIT = 4096

ENCRYPTION_AAD = {
    "title": b"liaison:meeting-title",
    "item": b"liaison:action-item",
    "place": b"liaison:meeting-place",
    "participants": b"liaison:meeting-participants",
}

# --- texts -------------------------------------------------------------------------------------------
#: (2 days or more: English needs no singular, so no plural forms anywhere)
DUE_IN_DAYS = N_("⏰ Reminder: action item #{id} is due in {n} days, on {due}.")
DUE_TOMORROW = N_("⏰ Reminder: action item #{id} is due tomorrow, {due}.")
DUE_TODAY = N_("⏰ Reminder: action item #{id} is due today, {due}.")
OVERDUE_YESTERDAY = N_("⚠️ Action item #{id} is overdue: it was due yesterday, {due}.")
OVERDUE = N_("⚠️ Action item #{id} is overdue: it was due on {due}, {n} days ago.")
ASSIGNED = N_("📋 New action item #{id} for you, agreed at the meeting “{meeting}” ({date}):")
ASSIGNED_FOOTER = N_("Due date: {due}. I will remind you before it.")
MEETING_LINE = N_("Meeting: {meeting} ({date})")
CASE_LINE = N_("Case: {case}")
UNTRANSLATED = N_("(Original text: no translation into your language was available.)")
ESCALATION = N_("⚠️ Action item #{id} of your meeting “{meeting}” is overdue since {due}. Owners: {owners}.")
HELP = N_("🆘 {name} asks for help with action item #{id} of your meeting “{meeting}” (due {due}):")
COMPLETED = N_("✅ {name} marked action item #{id} of your meeting “{meeting}” as done:")
NO_OWNER = N_(
    "⚠️ Action item #{id} of your meeting “{meeting}” has no active owner any more: {name} can no longer "
    "use the bot. Assign a new owner with /item {id} owners @username."
)
OWNER_LOST = N_(
    "{name} can no longer use the bot and is no longer reminded of action item #{id} of your meeting "
    "“{meeting}”. Remaining owners: {owners}."
)
BLOCKED = N_(
    "⚠️ {name} has blocked the bot and cannot receive reminders for action item #{id} of your meeting "
    "“{meeting}”. Please contact them directly."
)
DIGEST_HEADER = N_("📊 Weekly digest of your meetings' action items, week of {date}")
DIGEST_MEETING = N_("<b>{meeting}</b> ({date})")
DIGEST_COUNTS = N_("Open: {open} · overdue: {overdue} · completed: {done} ({week} this week)")
DIGEST_OVERDUE = N_("• #{id} {text} — due {due}; {owners}")
DIGEST_MORE = N_("… and more overdue items: {n}")
DIGEST_MORE_MEETINGS = N_("… and more meetings with open items: {n} (see /actions)")
#: overdue items listed by name per meeting in the digest (the rest are counted)
DIGEST_ITEMS_PER_MEETING = 5
NOBODY = N_("nobody")
BUTTON_DONE = N_("✅ Done")
BUTTON_SNOOZE = N_("⏰ Snooze 1 day")
BUTTON_HELP = N_("🆘 Need help")

#: audit event kind recorded when a message of a kind has been sent
SENT_EVENT = {
    "reminder": "meeting.reminder.sent",
    "escalation": "meeting.item.escalated",
    "digest": "meeting.digest.sent",
}


# --- the schedule ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """When owners are reminded (in days around the due date) and coordinators told."""

    before_days: tuple[int, ...] = (7, 1)
    on_due_date: bool = True
    overdue_every_days: int = 3
    escalate_every_days: int = 7

    def slot_dates(self, due: date, start: date) -> Iterator[date]:
        """Yield the reminder days on or after `start`, in order (endless while overdue)."""
        for days in sorted(set(self.before_days), reverse=True):
            if due - timedelta(days=days) >= start:
                yield due - timedelta(days=days)
        if self.on_due_date and due >= start:
            yield due
        every = self.overdue_every_days
        n = max(1, math.ceil((start - due).days / every)) if start > due else 1
        while True:
            yield due + timedelta(days=n * every)
            n += 1

    def next_reminder(self, due: date, tz: str, hour: int, after: datetime) -> datetime:
        """Return the first reminder instant (UTC) strictly after `after`."""
        zone = ZoneInfo(tz)
        start = after.astimezone(zone).date() - timedelta(days=1)
        for day in self.slot_dates(due, start):
            at = local_instant(day, zone, hour)
            if at > after:
                return at
        raise AssertionError("the schedule is endless")  # pragma: no cover

    def next_escalation(self, due: date, tz: str, hour: int, after: datetime) -> datetime:
        """Return the first escalation instant after `after`: the day after the due date, then weekly."""
        zone = ZoneInfo(tz)
        at = local_instant(due + timedelta(days=1), zone, hour)
        if at > after:
            return at
        weeks = math.floor((after - at) / timedelta(days=self.escalate_every_days)) + 1
        candidate = local_instant(due + timedelta(days=1 + weeks * self.escalate_every_days), zone, hour)
        while candidate <= after:  # pragma: no cover  (only around DST changes)
            candidate += timedelta(days=self.escalate_every_days)
        return candidate


DEFAULT_SCHEDULE = Schedule()


def local_instant(day: date, zone: ZoneInfo, hour: int) -> datetime:
    """Return `hour`:00 of a local day as a UTC instant."""
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


def last_digest_slot(tz: str, hour: int, now: datetime) -> datetime:
    """Return the latest Monday `hour`:00 in the time zone at or before now (UTC)."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    at = local_instant(monday, zone, hour)
    return at if at <= now else local_instant(monday - timedelta(days=7), zone, hour)


def officer_tz(timezone: str | None, country: str | None) -> str:
    """Return an officer's time zone: their own setting, else their country's."""
    return timezone or COUNTRY_TIMEZONE.get(country or "", "UTC")


@lru_cache(maxsize=4096)
def format_day(day: date, lang: str) -> str:
    """Return a date as people of the language write it (30 ສິງຫາ 2026, 2026年8月30日 ...)."""
    return babel_format_date(day, format="long", locale=lang)


# --- encrypted texts ---------------------------------------------------------------------------------
def text_aad(meeting_id: int, item_id: int | None, lang: str) -> bytes:
    """Return the associated data binding an encrypted text to its meeting, item and language."""
    return meeting_text_aad({"meeting_id": meeting_id, "item_id": item_id, "lang": lang})


def store_texts(
    s: Session, core: Core, meeting_id: int, item_id: int | None, translations: dict[str, Translation]
) -> None:
    """Write a title or item text in each language, encrypted."""
    for lang, tr in translations.items():
        s.add(
            MeetingText(
                meeting_id=meeting_id,
                item_id=item_id,
                lang=lang,
                text=core.cipher.encrypt(tr.text, text_aad(meeting_id, item_id, lang)),
                engine=tr.engine[:32],
                model=tr.model[:96],
                translated=tr.translated,
            )
        )


@dataclass
class TextBook:
    """Decrypted titles and item texts of some meetings, in the languages asked for."""

    #: (meeting_id, item_id or 0, lang) -> (text, translated)
    entries: dict[tuple[int, int, str], tuple[str, bool]] = field(default_factory=dict)
    #: meeting_id -> source language
    sources: dict[int, str] = field(default_factory=dict)

    def get(self, meeting_id: int, item_id: int | None, lang: str) -> tuple[str, bool]:
        """Return (text, translated) in a language, else the original (translated=False)."""
        found = self.entries.get((meeting_id, item_id or 0, lang))
        if found is not None:
            return found
        source = self.sources.get(meeting_id, "en")
        original = self.entries.get((meeting_id, item_id or 0, source))
        if original is not None:
            return original[0], lang == source
        return "", False


def load_texts(
    s: Session, core: Core, meeting_ids: Iterable[int], item_ids: Iterable[int], langs: Iterable[str]
) -> TextBook:
    """Load and decrypt the titles of some meetings and texts of some items in some languages."""
    book = TextBook()
    mids, iids, wanted = sorted(set(meeting_ids)), sorted(set(item_ids)), set(langs)
    for chunk in chunks(mids):
        for mid, lang in s.execute(select(Meeting.id, Meeting.language).where(Meeting.id.in_(chunk))):
            book.sources[mid] = lang
    wanted |= set(book.sources.values())
    queries = [and_(MeetingText.meeting_id.in_(c), MeetingText.item_id.is_(None)) for c in chunks(mids)]
    queries += [MeetingText.item_id.in_(c) for c in chunks(iids)]
    for where in queries:
        rows = s.execute(
            select(
                MeetingText.meeting_id,
                MeetingText.item_id,
                MeetingText.lang,
                MeetingText.text,
                MeetingText.translated,
            ).where(where, MeetingText.lang.in_(sorted(wanted)))
        )
        for mid, iid, lang, blob, translated in rows:
            text = core.cipher.decrypt(blob, text_aad(mid, iid, lang))
            book.entries[(mid, iid or 0, lang)] = (text, translated)
    return book


def chunks(values: Sequence[int], size: int = 900) -> Iterator[list[int]]:
    """Split ids for IN (...) lists that every database accepts."""
    values = list(values)
    for i in range(0, len(values), size):
        yield values[i : i + size]


def officer_label(display_name: str, username: str | None) -> str:
    """Return how a person is named in notices: name and @username."""
    return f"{display_name} @{username}" if username else display_name


# --- the outbox --------------------------------------------------------------------------------------
def _insert(s: Session, dialect: str) -> Any:
    return postgresql.insert(MeetingMessage) if dialect == "postgresql" else sqlite.insert(MeetingMessage)


def enqueue(s: Session, core: Core, rows: list[dict[str, Any]], *, claimed: bool = False) -> list[int]:
    """Write outgoing messages (skipping any whose dedupe key exists); return the new ids."""
    if not rows:
        return []
    now = core.clock.now()
    values = [
        {
            "kind": r["kind"],
            "officer_id": r["officer_id"],
            "item_id": r.get("item_id"),
            "owner_id": r.get("owner_id"),
            "subject_id": r.get("subject_id"),
            "dedupe": r["dedupe"],
            "status": MessageStatus.CLAIMED if claimed else MessageStatus.PENDING,
            "due_at": r.get("due_at", now),
            "claimed_at": now if claimed else None,
            "attempts": 0,
            "sent_at": None,
            "telegram_message_id": None,
            "error": None,
            "created_at": now,
        }
        for r in rows
    ]
    stmt = _insert(s, core.db.dialect).on_conflict_do_nothing(index_elements=["dedupe"])
    ids: list[int] = []
    for start in range(0, len(values), 1000):
        result = s.execute(stmt.returning(MeetingMessage.id), values[start : start + 1000])
        ids.extend(result.scalars())
    return ids


@dataclass(frozen=True)
class Outgoing:
    """A claimed message, rendered, ready to send."""

    message_id: int
    kind: str
    officer_id: int
    item_id: int | None
    owner_id: int | None
    case_tag: str | None
    message: OutMessage


def tick(core: Core, *, limit: int = CLAIM_BATCH, schedule: Schedule = DEFAULT_SCHEDULE) -> list[Outgoing]:
    """Claim everything due now and return it rendered; the caller sends it (see `deliver`)."""
    now = core.clock.now()
    hour = core.settings.reminder_hour
    with core.db.transaction() as s:
        _give_up_stale_claims(s, now)
        _retire_inactive_owners(s, core, now)
        claimed = _plan_reminders(s, core, now, hour, limit, schedule)
        claimed += _plan_escalations(s, core, now, hour, limit, schedule)
        _plan_digests(s, core, now, hour)
        claimed += _claim_pending(s, now, limit)
        return render(s, core, claimed, now)


def _give_up_stale_claims(s: Session, now: datetime) -> None:
    result = s.execute(
        update(MeetingMessage)
        .where(MeetingMessage.status == MessageStatus.CLAIMED, MeetingMessage.claimed_at < now - CLAIM_LEASE)
        .values(status=MessageStatus.UNKNOWN, error="claim expired: the sending process stopped")
    )
    expired = int(getattr(result, "rowcount", 0) or 0)
    if expired:
        logger.warning(
            "%s meeting messages were claimed by a process that stopped; not resending them", expired
        )


def _retire_inactive_owners(s: Session, core: Core, now: datetime) -> None:
    """Stop reminding revoked officers and tell the coordinator who is left on the item."""
    rows = s.execute(
        select(
            ActionOwner.id,
            ActionOwner.item_id,
            ActionOwner.officer_id,
            ActionItem.status,
            Meeting.coordinator_id,
            ActionItem.case_tag,
        )
        .join(Officer, Officer.id == ActionOwner.officer_id)
        .join(ActionItem, ActionItem.id == ActionOwner.item_id)
        .join(Meeting, Meeting.id == ActionItem.meeting_id)
        .where(ActionOwner.state == OwnerState.ACTIVE, Officer.status != OfficerStatus.ACTIVE)
        .with_for_update(of=ActionOwner, skip_locked=True)
    ).all()
    notices = []
    for owner_id, item_id, officer_id, status, coordinator_id, case_tag in rows:
        s.execute(
            update(ActionOwner)
            .where(ActionOwner.id == owner_id)
            .values(state=OwnerState.INACTIVE, next_remind_at=None)
        )
        audit.record(
            s,
            "meeting.owner.inactive",
            at=now,
            case_tag=case_tag,
            data={"item_id": item_id, "officer_id": officer_id, "reason": "revoked"},
        )
        if status != ItemStatus.OPEN:
            continue
        left = active_owner_count(s, item_id)
        notices.append(
            {
                "kind": "owner_lost" if left else "no_owner",
                "officer_id": coordinator_id,
                "item_id": item_id,
                "owner_id": owner_id,
                "subject_id": officer_id,
                "dedupe": f"lost:{owner_id}",
            }
        )
    enqueue(s, core, notices)


def active_owner_count(s: Session, item_id: int) -> int:
    """Return how many active officers still own an item."""
    return int(
        s.execute(
            select(func.count())
            .select_from(ActionOwner)
            .join(Officer, Officer.id == ActionOwner.officer_id)
            .where(
                ActionOwner.item_id == item_id,
                ActionOwner.state == OwnerState.ACTIVE,
                Officer.status == OfficerStatus.ACTIVE,
            )
        ).scalar_one()
    )


def _plan_reminders(
    s: Session, core: Core, now: datetime, hour: int, limit: int, schedule: Schedule
) -> list[int]:
    rows = s.execute(
        select(
            ActionOwner.id,
            ActionOwner.item_id,
            ActionOwner.officer_id,
            ActionOwner.next_remind_at,
            ActionItem.due_on,
            Officer.timezone,
            Officer.country,
        )
        .join(Officer, Officer.id == ActionOwner.officer_id)
        .join(ActionItem, ActionItem.id == ActionOwner.item_id)
        .where(
            ActionOwner.state == OwnerState.ACTIVE,
            ActionOwner.next_remind_at <= now,
            Officer.status == OfficerStatus.ACTIVE,
            ActionItem.status == ItemStatus.OPEN,
        )
        .order_by(ActionOwner.next_remind_at, ActionOwner.id)
        .limit(limit)
        .with_for_update(of=ActionOwner, skip_locked=True)
    ).all()
    if not rows:
        return []
    moves, messages = [], []
    for owner_id, item_id, officer_id, slot, due_on, tz, country in rows:
        moves.append(
            {
                "id": owner_id,
                "last_reminded_at": now,
                "snoozed_until": None,
                "next_remind_at": schedule.next_reminder(due_on, officer_tz(tz, country), hour, now),
            }
        )
        messages.append(
            {
                "kind": "reminder",
                "officer_id": officer_id,
                "item_id": item_id,
                "owner_id": owner_id,
                "dedupe": f"rem:{owner_id}:{int(slot.timestamp()) if slot else 0}",
            }
        )
    _move_owners(s, core.db.dialect, moves, now)
    return enqueue(s, core, messages, claimed=True)


def _move_owners(s: Session, dialect: str, moves: list[dict[str, Any]], now: datetime) -> None:
    """Set each claimed owner's next reminder: one UPDATE … FROM (VALUES …) on PostgreSQL."""
    if dialect == "postgresql":
        # executemany would be one round trip per row; a VALUES list is one statement for the batch.
        table = values(column("oid", Integer), column("nxt", UtcDateTime()), name="moves").data(
            [(m["id"], m["next_remind_at"]) for m in moves]
        )
        s.execute(
            update(ActionOwner)
            .where(ActionOwner.id == table.c.oid)
            .values(
                next_remind_at=table.c.nxt,
                last_reminded_at=now,
                snoozed_until=None,
                reminders_sent=ActionOwner.reminders_sent + 1,
            ),
            execution_options={"synchronize_session": False},
        )
        return
    s.execute(update(ActionOwner), moves)
    for chunk in chunks([m["id"] for m in moves]):
        s.execute(
            update(ActionOwner)
            .where(ActionOwner.id.in_(chunk))
            .values(reminders_sent=ActionOwner.reminders_sent + 1)
        )


def _plan_escalations(
    s: Session, core: Core, now: datetime, hour: int, limit: int, schedule: Schedule
) -> list[int]:
    rows = s.execute(
        select(
            ActionItem.id,
            ActionItem.escalate_at,
            ActionItem.due_on,
            Meeting.coordinator_id,
            Officer.timezone,
            Officer.country,
            Officer.status,
        )
        .join(Meeting, Meeting.id == ActionItem.meeting_id)
        .join(Officer, Officer.id == Meeting.coordinator_id)
        .where(ActionItem.status == ItemStatus.OPEN, ActionItem.escalate_at <= now)
        .order_by(ActionItem.escalate_at, ActionItem.id)
        .limit(limit)
        .with_for_update(of=ActionItem, skip_locked=True)
    ).all()
    messages = []
    for item_id, slot, due_on, coordinator_id, tz, country, status in rows:
        s.execute(
            update(ActionItem)
            .where(ActionItem.id == item_id)
            .values(
                escalate_at=schedule.next_escalation(due_on, officer_tz(tz, country), hour, now),
                escalations=ActionItem.escalations + 1,
            )
        )
        if status != OfficerStatus.ACTIVE:
            logger.warning(
                "item %s is overdue but its meeting's coordinator can no longer be reached", item_id
            )
            continue
        messages.append(
            {
                "kind": "escalation",
                "officer_id": coordinator_id,
                "item_id": item_id,
                "dedupe": f"esc:{item_id}:{int(slot.timestamp()) if slot else 0}",
            }
        )
    return enqueue(s, core, messages, claimed=True)


def _plan_digests(s: Session, core: Core, now: datetime, hour: int) -> None:
    """Queue this week's digest for each active coordinator of a meeting (once per week, by dedupe key)."""
    rows = s.execute(
        select(Officer.id, Officer.timezone, Officer.country, func.min(Meeting.created_at))
        .join(Meeting, Meeting.coordinator_id == Officer.id)
        .where(Officer.status == OfficerStatus.ACTIVE)
        .group_by(Officer.id, Officer.timezone, Officer.country)
    ).all()
    notices = []
    for officer_id, tz, country, first_meeting in rows:
        slot = last_digest_slot(officer_tz(tz, country), hour, now)
        if slot < first_meeting:
            continue
        notices.append(
            {
                "kind": "digest",
                "officer_id": officer_id,
                "dedupe": f"dig:{officer_id}:{slot.date()}",
                "due_at": slot,
            }
        )
    if not notices:
        return
    # Most minutes every digest of the week exists already: look before inserting (ON CONFLICT stays
    # the guarantee when two processes race, but would burn an id of the sequence every minute).
    keys = [n["dedupe"] for n in notices]
    known = set(s.execute(select(MeetingMessage.dedupe).where(MeetingMessage.dedupe.in_(keys))).scalars())
    enqueue(s, core, [n for n in notices if n["dedupe"] not in known])


def _claim_pending(s: Session, now: datetime, limit: int) -> list[int]:
    ids = list(
        s.execute(
            select(MeetingMessage.id)
            .where(MeetingMessage.status == MessageStatus.PENDING, MeetingMessage.due_at <= now)
            .order_by(MeetingMessage.due_at, MeetingMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if ids:
        s.execute(
            update(MeetingMessage)
            .where(MeetingMessage.id.in_(ids))
            .values(status=MessageStatus.CLAIMED, claimed_at=now)
        )
    return ids


# --- rendering ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Person:
    id: int
    telegram_id: int
    label: str
    language: str
    tz: str
    active: bool


def _people(s: Session, ids: Iterable[int]) -> dict[int, _Person]:
    out: dict[int, _Person] = {}
    for chunk in chunks(sorted(set(ids))):
        for row in s.execute(
            select(
                Officer.id,
                Officer.telegram_id,
                Officer.display_name,
                Officer.username,
                Officer.language,
                Officer.timezone,
                Officer.country,
                Officer.status,
            ).where(Officer.id.in_(chunk))
        ):
            out[row[0]] = _Person(
                row[0],
                row[1],
                officer_label(row[2], row[3]),
                row[4],
                officer_tz(row[5], row[6]),
                row[7] == OfficerStatus.ACTIVE,
            )
    return out


def render(s: Session, core: Core, message_ids: Sequence[int], now: datetime) -> list[Outgoing]:
    """Render claimed messages in their recipients' languages (recipients gone: marked skipped)."""
    if not message_ids:
        return []
    msgs: list[Any] = []
    for chunk in chunks(sorted(message_ids)):
        msgs += s.execute(
            select(
                MeetingMessage.id,
                MeetingMessage.kind,
                MeetingMessage.officer_id,
                MeetingMessage.item_id,
                MeetingMessage.owner_id,
                MeetingMessage.subject_id,
                MeetingMessage.due_at,
            )
            .where(MeetingMessage.id.in_(chunk))
            .order_by(MeetingMessage.id)
        ).all()
    items: dict[int, Any] = {}
    for chunk in chunks(sorted({m[3] for m in msgs if m[3] is not None})):
        for row in s.execute(
            select(
                ActionItem.id,
                ActionItem.meeting_id,
                ActionItem.due_on,
                ActionItem.case_tag,
                ActionItem.status,
            ).where(ActionItem.id.in_(chunk))
        ):
            items[row[0]] = row
    people = _people(s, [m[2] for m in msgs] + [m[5] for m in msgs if m[5] is not None])
    needs_owners = [m[3] for m in msgs if m[1] in ("escalation", "owner_lost") and m[3] is not None]
    owners = item_owner_labels(s, needs_owners)
    meetings: dict[int, date] = {}
    for chunk in chunks(sorted({items[i][1] for i in items})):
        meetings.update(s.execute(select(Meeting.id, Meeting.held_on).where(Meeting.id.in_(chunk))).all())
    book = load_texts(s, core, meetings, items, {p.language for p in people.values()})
    out: list[Outgoing] = []
    skipped: list[int] = []
    for mid, kind, officer_id, item_id, owner_id, subject_id, due_at in msgs:
        person = people.get(officer_id)
        item = items.get(item_id) if item_id is not None else None
        if (
            person is None
            or not person.active
            or (
                kind in ("reminder", "assigned", "escalation")
                and item is not None
                and item[4] != ItemStatus.OPEN
            )
        ):
            skipped.append(mid)
            continue
        texts = core.catalogs.get(person.language)
        if kind == "digest":
            body = render_digest(s, core, officer_id, texts, person.tz, now, week_of=due_at)
            if body is None:
                skipped.append(mid)
                continue
            message = OutMessage(person.telegram_id, body, protect=True)
        else:
            assert item is not None
            subject = people.get(subject_id) if subject_id is not None else None
            body = _render_item_message(
                kind, texts, person, item, meetings[item[1]], book, owners.get(item_id, []), subject, now
            )
            buttons = (
                item_buttons(texts, item[0], snooze=kind == "reminder")
                if kind in ("reminder", "assigned")
                else ()
            )
            message = OutMessage(person.telegram_id, body, buttons=buttons, protect=True)
        out.append(Outgoing(mid, kind, officer_id, item_id, owner_id, item[3] if item else None, message))
    if skipped:
        s.execute(
            update(MeetingMessage)
            .where(MeetingMessage.id.in_(skipped))
            .values(status=MessageStatus.SKIPPED, error="recipient or item no longer active")
        )
    return out


def item_buttons(texts: Texts, item_id: int, *, snooze: bool = True) -> tuple[tuple[Button, ...], ...]:
    """Return the buttons under a reminder: Done, Snooze 1 day, Need help."""
    row = [Button(texts.plain(BUTTON_DONE), f"mi:done:{item_id}")]
    if snooze:
        row.append(Button(texts.plain(BUTTON_SNOOZE), f"mi:snz:{item_id}"))
    row.append(Button(texts.plain(BUTTON_HELP), f"mi:help:{item_id}"))
    return (tuple(row),)


def item_owner_labels(s: Session, item_ids: Iterable[int]) -> dict[int, list[str]]:
    """Return the names of the active owners of some items."""
    out: dict[int, list[str]] = {}
    for chunk in chunks(sorted(set(item_ids))):
        rows = s.execute(
            select(ActionOwner.item_id, Officer.display_name, Officer.username)
            .join(Officer, Officer.id == ActionOwner.officer_id)
            .where(
                ActionOwner.item_id.in_(chunk),
                ActionOwner.state == OwnerState.ACTIVE,
                Officer.status == OfficerStatus.ACTIVE,
            )
            .order_by(ActionOwner.item_id, ActionOwner.id)
        )
        for item_id, name, username in rows:
            out.setdefault(item_id, []).append(officer_label(name, username))
    return out


def due_line(texts: Texts, item_id: int, due: date, today: date) -> str:
    """Return the reminder's first line: due in N days, tomorrow, today, or overdue by N days."""
    days = (due - today).days
    when = format_day(due, texts.lang)
    if days > 1:
        return texts(DUE_IN_DAYS, id=item_id, n=days, due=when)
    if days == 1:
        return texts(DUE_TOMORROW, id=item_id, due=when)
    if days == 0:
        return texts(DUE_TODAY, id=item_id, due=when)
    if days == -1:
        return texts(OVERDUE_YESTERDAY, id=item_id, due=when)
    return texts(OVERDUE, id=item_id, n=-days, due=when)


def _render_item_message(
    kind: str,
    texts: Texts,
    person: _Person,
    item: Any,
    held_on: date,
    book: TextBook,
    owners: list[str],
    subject: _Person | None,
    now: datetime,
) -> str:
    item_id, meeting_id, due_on, case_tag, _status = item
    lang = texts.lang
    title, _ = book.get(meeting_id, None, lang)
    text, translated = book.get(meeting_id, item_id, lang)
    meeting_date = format_day(held_on, lang)
    due = format_day(due_on, lang)
    name = subject.label if subject else "—"
    if kind == "reminder":
        head = due_line(texts, item_id, due_on, now.astimezone(ZoneInfo(person.tz)).date())
    elif kind == "assigned":
        head = texts(ASSIGNED, id=item_id, meeting=title, date=meeting_date)
    elif kind == "escalation":
        head = texts(
            ESCALATION, id=item_id, meeting=title, due=due, owners=", ".join(owners) or texts.plain(NOBODY)
        )
    elif kind == "help":
        head = texts(HELP, name=name, id=item_id, meeting=title, due=due)
    elif kind == "completed":
        head = texts(COMPLETED, name=name, id=item_id, meeting=title)
    elif kind == "no_owner":
        return texts(NO_OWNER, id=item_id, meeting=title, name=name)
    elif kind == "owner_lost":
        return texts(
            OWNER_LOST, name=name, id=item_id, meeting=title, owners=", ".join(owners) or texts.plain(NOBODY)
        )
    elif kind == "blocked":
        return texts(BLOCKED, name=name, id=item_id, meeting=title)
    else:  # pragma: no cover
        raise ValueError(f"unknown meeting message kind {kind}")
    lines = [head, "", f"<b>{_escape(text)}</b>"]
    if not translated:
        lines.append(texts(UNTRANSLATED))
    lines.append("")
    if kind == "assigned":
        lines.append(texts(ASSIGNED_FOOTER, due=due))
    else:
        lines.append(texts(MEETING_LINE, meeting=title, date=meeting_date))
    if case_tag:
        lines.append(texts(CASE_LINE, case=case_tag))
    return _clip("\n".join(lines))


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=False)


def _clip(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def render_digest(
    s: Session,
    core: Core,
    coordinator_id: int,
    texts: Texts,
    tz: str,
    now: datetime,
    week_of: datetime | None = None,
) -> str | None:
    """Return the weekly digest of a coordinator's meetings, or None when there is nothing to say."""
    today = now.astimezone(ZoneInfo(tz)).date()
    week_ago = now - timedelta(days=7)
    rows = s.execute(
        select(
            Meeting.id,
            Meeting.held_on,
            ActionItem.id,
            ActionItem.status,
            ActionItem.due_on,
            ActionItem.completed_at,
        )
        .join(ActionItem, ActionItem.meeting_id == Meeting.id)
        .where(Meeting.coordinator_id == coordinator_id, ActionItem.status != ItemStatus.CANCELLED)
        .order_by(Meeting.held_on.desc(), Meeting.id, ActionItem.position)
    ).all()
    per_meeting: dict[int, dict[str, Any]] = {}
    for meeting_id, held_on, item_id, status, due_on, completed_at in rows:
        m = per_meeting.setdefault(
            meeting_id, {"held_on": held_on, "open": 0, "overdue": [], "done": 0, "week": 0}
        )
        if status == ItemStatus.OPEN:
            m["open"] += 1
            if due_on < today:
                m["overdue"].append((item_id, due_on))
        else:
            m["done"] += 1
            if completed_at is not None and completed_at >= week_ago:
                m["week"] += 1
    shown = {mid: m for mid, m in per_meeting.items() if m["open"] or m["week"]}
    if not shown:
        return None
    for m in shown.values():
        m["overdue"].sort(key=lambda pair: (pair[1], pair[0]))  # the longest overdue first
    listed = [i for m in shown.values() for i, _ in m["overdue"][:DIGEST_ITEMS_PER_MEETING]]
    book = load_texts(s, core, shown, listed, [texts.lang])
    owners = item_owner_labels(s, listed)
    monday = (week_of or last_digest_slot(tz, 0, now)).astimezone(ZoneInfo(tz)).date()
    lines = [texts(DIGEST_HEADER, date=format_day(monday, texts.lang))]
    size = len(lines[0])
    for index, (mid, m) in enumerate(shown.items()):
        title, _ = book.get(mid, None, texts.lang)
        block = [
            "",
            texts(DIGEST_MEETING, meeting=title, date=format_day(m["held_on"], texts.lang)),
            texts(DIGEST_COUNTS, open=m["open"], overdue=len(m["overdue"]), done=m["done"], week=m["week"]),
        ]
        for item_id, due_on in m["overdue"][:DIGEST_ITEMS_PER_MEETING]:
            text, _ = book.get(mid, item_id, texts.lang)
            block.append(
                texts(
                    DIGEST_OVERDUE,
                    id=item_id,
                    text=_short(text),
                    due=format_day(due_on, texts.lang),
                    owners=", ".join(owners.get(item_id, [])) or texts.plain(NOBODY),
                )
            )
        if len(m["overdue"]) > DIGEST_ITEMS_PER_MEETING:
            block.append(texts(DIGEST_MORE, n=len(m["overdue"]) - DIGEST_ITEMS_PER_MEETING))
        block_size = sum(len(x) + 1 for x in block)
        if size + block_size > MESSAGE_LIMIT - 100:
            lines += ["", texts(DIGEST_MORE_MEETINGS, n=len(shown) - index)]
            break
        lines += block
        size += block_size
    return "\n".join(lines)


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- sending -----------------------------------------------------------------------------------------
@dataclass
class DeliveryReport:
    """What one delivery round did."""

    sent: int = 0
    released: int = 0
    blocked: int = 0
    failed: int = 0

    def add(self, other: DeliveryReport) -> None:
        """Accumulate another report."""
        self.sent += other.sent
        self.released += other.released
        self.blocked += other.blocked
        self.failed += other.failed


async def deliver(
    core: Core, outbound: Outbound, batch: Sequence[Outgoing], *, pace: float = SEND_PACE
) -> DeliveryReport:
    """Send claimed messages one by one and record each result (a 429 releases the rest for later)."""
    report = DeliveryReport()
    for index, out in enumerate(batch):
        if index and pace:
            await asyncio.sleep(pace)
        try:
            telegram_id = await outbound.send(out.message)
        except SendError as exc:
            if exc.kind == "retry":
                rest = [o.message_id for o in batch[index:]]
                await asyncio.to_thread(release, core, rest, exc.retry_after, str(exc), out.message_id)
                report.released += len(rest)
                break
            if exc.kind == "blocked":
                await asyncio.to_thread(record_blocked, core, out, str(exc))
                report.blocked += 1
            else:
                await asyncio.to_thread(record_failed, core, out, str(exc))
                report.failed += 1
            continue
        await asyncio.to_thread(record_sent, core, out, telegram_id)
        report.sent += 1
    return report


def record_sent(core: Core, out: Outgoing, telegram_message_id: int) -> None:
    """Mark a message sent and append its audit event (the body only as a hash)."""
    now = core.clock.now()
    with core.db.transaction() as s:
        s.execute(
            update(MeetingMessage)
            .where(MeetingMessage.id == out.message_id)
            .values(
                status=MessageStatus.SENT,
                sent_at=now,
                telegram_message_id=telegram_message_id,
                attempts=MeetingMessage.attempts + 1,
                claimed_at=None,
            )
        )
        audit.record(
            s,
            SENT_EVENT.get(out.kind, "meeting.notice.sent"),
            at=now,
            case_tag=out.case_tag,
            data={
                "message_id": out.message_id,
                "kind": out.kind,
                "item_id": out.item_id,
                "officer_id": out.officer_id,
                "telegram_message_id": telegram_message_id,
                "body_sha256": audit.body_hash(out.message.text),
            },
        )


def _close_message(s: Session, out: Outgoing, status: str, reason: str, event: str, now: datetime,
                   **extra: Any) -> None:
    """Set a message's final status (one more attempt) and audit it, inside the caller's transaction."""
    s.execute(
        update(MeetingMessage)
        .where(MeetingMessage.id == out.message_id)
        .values(status=status, error=reason[:200], attempts=MeetingMessage.attempts + 1)
    )
    audit.record(
        s,
        event,
        at=now,
        case_tag=out.case_tag,
        data={"message_id": out.message_id, "kind": out.kind, "item_id": out.item_id,
              "officer_id": out.officer_id, **extra},
    )


def record_failed(core: Core, out: Outgoing, reason: str) -> None:
    """Mark a message Telegram refused for good."""
    now = core.clock.now()
    logger.warning("meeting message %s (%s) was refused: %s", out.message_id, out.kind, reason)
    with core.db.transaction() as s:
        _close_message(s, out, MessageStatus.FAILED, reason, "meeting.message.failed", now, reason=reason[:200])


def record_blocked(core: Core, out: Outgoing, reason: str) -> None:
    """The recipient blocked the bot: stop reminding them of the item and tell the coordinator."""
    now = core.clock.now()
    with core.db.transaction() as s:
        _close_message(s, out, MessageStatus.BLOCKED, reason, "meeting.message.blocked", now)
        if out.owner_id is None or out.kind not in ("reminder", "assigned"):
            return
        s.execute(
            update(ActionOwner)
            .where(ActionOwner.id == out.owner_id)
            .values(state=OwnerState.BLOCKED, next_remind_at=None)
        )
        coordinator_id = s.execute(
            select(Meeting.coordinator_id).join(ActionItem).where(ActionItem.id == out.item_id)
        ).scalar_one()
        enqueue(
            s,
            core,
            [
                {
                    "kind": "blocked",
                    "officer_id": coordinator_id,
                    "item_id": out.item_id,
                    "owner_id": out.owner_id,
                    "subject_id": out.officer_id,
                    "dedupe": f"blk:{out.owner_id}",
                }
            ],
        )


def release(
    core: Core,
    message_ids: Sequence[int],
    retry_after: float | None,
    reason: str,
    attempted: int | None = None,
) -> None:
    """Give claimed, unsent messages back to a later tick; the one that was tried counts an attempt
    (given up after MAX_ATTEMPTS)."""
    now = core.clock.now()
    delay = timedelta(seconds=max(retry_after or 0.0, 0.0))
    with core.db.transaction() as s:
        if attempted is not None:
            s.execute(
                update(MeetingMessage)
                .where(MeetingMessage.id == attempted)
                .values(attempts=MeetingMessage.attempts + 1, error=reason[:200])
            )
        for chunk in chunks(list(message_ids)):
            s.execute(
                update(MeetingMessage)
                .where(MeetingMessage.id.in_(chunk))
                .values(status=MessageStatus.PENDING, claimed_at=None, due_at=now + delay)
            )
            s.execute(
                update(MeetingMessage)
                .where(MeetingMessage.id.in_(chunk), MeetingMessage.attempts >= MAX_ATTEMPTS)
                .values(status=MessageStatus.FAILED)
            )
    logger.info("released %s meeting messages for a later tick (%s)", len(message_ids), reason)


class Runner:
    """Ticks and sends; one per process (ticks of one process never overlap, processes may)."""

    def __init__(
        self,
        core: Core,
        outbound: Outbound,
        *,
        batch: int = CLAIM_BATCH,
        pace: float = SEND_PACE,
        schedule: Schedule = DEFAULT_SCHEDULE,
    ) -> None:
        self.core = core
        self.outbound = outbound
        self.batch = batch
        self.pace = pace
        self.schedule = schedule
        self._lock = asyncio.Lock()

    async def run_once(self) -> DeliveryReport:
        """Tick and send until nothing due is left (several ticks when batches come back full)."""
        total = DeliveryReport()
        async with self._lock:
            while True:
                batch = await asyncio.to_thread(tick, self.core, limit=self.batch, schedule=self.schedule)
                report = await deliver(self.core, self.outbound, batch, pace=self.pace)
                total.add(report)
                if len(batch) < self.batch or report.released:
                    break
        if total.sent or total.released or total.blocked or total.failed:
            logger.info(
                "meetings tick: %s sent, %s released, %s blocked, %s failed",
                total.sent,
                total.released,
                total.blocked,
                total.failed,
            )
        return total

    async def idle(self) -> None:
        """Wait until a run in progress (sending included) has finished."""
        async with self._lock:
            return

    async def safe_run(self) -> None:
        """Run once from the scheduler: log, never raise (the next tick tries again)."""
        try:
            await self.run_once()
        except Exception:
            logger.exception("the meetings tick failed; the next tick will try again")


def pending_count(core: Core) -> dict[str, int]:
    """Return how many meeting messages are in each status (for the CLI and tests)."""
    with core.db.session() as s:
        rows = s.execute(select(MeetingMessage.status, func.count()).group_by(MeetingMessage.status))
        return dict(rows.all())


def reschedule_officer(
    s: Session, core: Core, officer_id: int, tz: str, schedule: Schedule = DEFAULT_SCHEDULE
) -> int:
    """Recompute an officer's next reminders (after a change of time zone); return how many."""
    now = core.clock.now()
    rows = s.execute(
        select(ActionOwner.id, ActionItem.due_on, ActionOwner.snoozed_until)
        .join(ActionItem, ActionItem.id == ActionOwner.item_id)
        .where(
            ActionOwner.officer_id == officer_id,
            ActionOwner.state == OwnerState.ACTIVE,
            ActionItem.status == ItemStatus.OPEN,
        )
    ).all()
    for owner_id, due_on, snoozed in rows:
        if snoozed is not None and snoozed > now:
            continue
        s.execute(
            update(ActionOwner)
            .where(ActionOwner.id == owner_id)
            .values(next_remind_at=schedule.next_reminder(due_on, tz, core.settings.reminder_hour, now))
        )
    return len(rows)
