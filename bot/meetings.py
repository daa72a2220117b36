"""Joint meetings and their action items: recording, validation, owners' actions (done, snooze, help).

Texts (titles and item texts) are translated once per target language when recorded — every owner's
language and the coordinator's — and stored encrypted. The reminder schedule lives in `bot.reminders`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import get_month_names
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot import audit, reminders
from bot.core import Core
from bot.errors import Conflict, InvalidInput, LiaisonError, NotAllowed, NotFound
from bot.i18n import N_
from bot.models import Officer, OfficerStatus, Role
from bot.models.meetings import ActionItem, ActionOwner, ItemStatus, Meeting, MeetingMessage, OwnerState
from bot.officers import OfficerInfo, find_officer, officer_info, require_role
from bot.translation.base import LANGUAGES
from bot.translation.detect import detect

logger = logging.getLogger(__name__)

MAX_TITLE = 300
MAX_TEXT = 2000
MAX_FIELD = 1000
MAX_ITEMS = 100
MAX_OWNERS = 20
#: due dates further away than this are almost always typos (2062 for 2026)
MAX_DUE_AHEAD = timedelta(days=5 * 366)
STAFF = (Role.COORDINATOR.value, Role.ADMIN.value)

EMPTY_TITLE = N_("The meeting needs a title.")
EMPTY_TEXT = N_("The action item needs a text.")
TOO_LONG = N_("The text is too long ({n} characters; at most {max}).")
BAD_DATE = N_("Cannot read the date {value}: write it like 30/08/2026 or 2026-08-30.")
DUE_PAST = N_("The due date {date} is in the past.")
DUE_FAR = N_("The due date {date} is more than five years away; please check it.")
MEETING_FUTURE = N_("The meeting date {date} is in the future; record a meeting once it has taken place.")
NO_OWNERS = N_("Name at least one owner, e.g. @username.")
TOO_MANY_OWNERS = N_("An action item can have at most {max} owners.")
UNKNOWN_OWNER = N_("No active officer is registered as {ref}.")
BAD_CASE = N_("The case tag {value} is not valid: use letters, digits and dashes, e.g. CN-VN-2026-0042.")
NO_COORDINATOR = N_("The meeting needs a coordinator: the @username of a registered coordinator.")
NOT_COORDINATOR = N_("{ref} is not a coordinator.")
NO_ITEMS = N_("The meeting has no action items.")
TOO_MANY_ITEMS = N_("A meeting can have at most {max} action items.")
BAD_LANGUAGE = N_("Unknown language {value}: use zh, lo, vi or en.")
DUPLICATE_MEETING = N_("This meeting is already recorded (meeting #{id}).")
DUPLICATE_DRAFT = N_("The same meeting appears twice (first at line {line}).")
NO_SUCH_ITEM = N_("There is no action item #{id}.")
NOT_OWNER = N_("You are not an owner of action item #{id}.")
ITEM_CLOSED = N_("Action item #{id} is already closed.")
COORDINATOR_GONE = N_("The meeting's coordinator can no longer use the bot; please contact your agency.")
BAD_TIMEZONE = N_("Unknown time zone {value}: use a name such as Asia/Vientiane or Asia/Shanghai.")
NO_SUCH_MEETING = N_("There is no meeting #{id}.")

_CASE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,63}$")
_OWNER_SPLIT = re.compile(r"[\s,;，、；]+")


# --- reading what people type -------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _month_words() -> list[tuple[str, int]]:
    """Month names officers may type: English, Lao (full and abbreviated), longest first."""
    words: dict[str, int] = {}
    for locale in ("en", "lo"):
        for width in ("wide", "abbreviated"):
            for number, name in get_month_names(width, locale=locale).items():
                words[name.lower().rstrip(".")] = number
                words[name.lower()] = number
    words["sept"] = 9
    return sorted(words.items(), key=lambda kv: -len(kv[0]))


def parse_date(text: str) -> date:
    """Read a date as officers type it: 2026-08-30, 30/08/2026, 30.08.2026, 2026/8/30, 30 Aug 2026,
    Aug 30, 2026, 2026年8月30日, 30 tháng 8 năm 2026, 30 ສິງຫາ 2026."""
    raw = text or ""
    value = unicodedata.normalize("NFKC", raw).strip().lower().rstrip(".")
    if not value:
        raise InvalidInput(BAD_DATE, value=raw)
    # Vietnamese "ngày 30 tháng 8 năm 2026" and Chinese "2026年8月30日" mark the parts with words.
    value = re.sub(r"th(?:á|a)ng\s*(\d{1,2})", r" m\1 ", value)
    value = re.sub(r"\b(ng(?:à|a)y|n(?:ă|a)m)\b", " ", value)
    value = re.sub(r"(\d+)\s*年\s*(\d+)\s*月\s*(\d+)\s*[日号]?", r"\1-\2-\3", value)
    for word, number in _month_words():
        if word in value:
            value = value.replace(word, f" m{number} ")
            break
    try:
        return _from_parts(value)
    except (ValueError, IndexError):
        raise InvalidInput(BAD_DATE, value=raw) from None


def _from_parts(value: str) -> date:
    months = re.findall(r"m(\d{1,2})\b", value)
    numbers = [int(n) for n in re.findall(r"(?<!m)\b\d+\b", re.sub(r"m\d{1,2}\b", " ", value))]
    if months:
        if len(months) != 1 or len(numbers) != 2:
            raise ValueError(value)
        month = int(months[0])
        year_first = numbers[0] > 31
        year, day = (numbers[0], numbers[1]) if year_first else (numbers[1], numbers[0])
        return date(_year(year), month, day)
    parts = [p for p in re.split(r"[\s/.\-]+", value) if p]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(value)
    a, b, c = (int(p) for p in parts)
    if len(parts[0]) == 4:
        return date(a, b, c)
    try:
        return date(_year(c), b, a)  # day first, as in Lao PDR, Viet Nam and most of the world
    except ValueError:
        return date(_year(c), a, b)  # 08/30/2026 cannot be day first: month first


def _year(value: int) -> int:
    return 2000 + value if value < 100 else value


def parse_case_tag(text: str | None) -> str | None:
    """Return a case tag in upper case, None for nothing ('-' included), or raise."""
    value = (text or "").strip()
    if value in ("", "-", "—"):
        return None
    tag = value.upper()
    if not _CASE_RE.match(tag):
        raise InvalidInput(BAD_CASE, value=value)
    return tag


def clean_text(text: str | None, empty: str, limit: int = MAX_TEXT) -> str:
    """Return a text with its blanks tidied; raise with `empty` when there is nothing."""
    value = "\n".join(" ".join(line.split()) for line in (text or "").strip().splitlines()).strip()
    if not value:
        raise InvalidInput(empty)
    if len(value) > limit:
        raise InvalidInput(TOO_LONG, n=len(value), max=limit)
    return value


def optional_text(text: str | None, limit: int = MAX_FIELD) -> str | None:
    """Return a tidied optional text, None for nothing or '-'."""
    value = (text or "").strip()
    if value in ("", "-", "—"):
        return None
    return clean_text(value, EMPTY_TEXT, limit)


def split_owner_refs(text: str | Sequence[str]) -> list[str]:
    """Split '@a @b, @c' (or a list) into owner references, without duplicates."""
    parts = (
        _OWNER_SPLIT.split(text)
        if isinstance(text, str)
        else [p for t in text for p in _OWNER_SPLIT.split(t)]
    )
    seen: dict[str, None] = {}
    for part in parts:
        if part.strip():
            seen.setdefault(part.strip(), None)
    return list(seen)


def resolve_owners(s: Session, refs: Sequence[str]) -> list[Officer]:
    """Return the active officers named by @username, Telegram id or id:N; raise for the first unknown."""
    if not refs:
        raise InvalidInput(NO_OWNERS)
    if len(refs) > MAX_OWNERS:
        raise InvalidInput(TOO_MANY_OWNERS, max=MAX_OWNERS)
    officers: dict[int, Officer] = {}
    for ref in refs:
        officer = _active_officer(s, ref)
        officers.setdefault(officer.id, officer)
    return list(officers.values())


def _active_officer(s: Session, ref: str) -> Officer:
    try:
        officer = find_officer(s, ref)
    except NotFound:
        raise InvalidInput(UNKNOWN_OWNER, ref=ref) from None
    if officer.status != OfficerStatus.ACTIVE:
        raise InvalidInput(UNKNOWN_OWNER, ref=ref)
    return officer


def check_due(due: date, today: date) -> date:
    """Refuse due dates in the past (today is fine) or implausibly far away."""
    if due < today:
        raise InvalidInput(DUE_PAST, date=due.isoformat())
    if due - today > MAX_DUE_AHEAD:
        raise InvalidInput(DUE_FAR, date=due.isoformat())
    return due


def check_held_on(held_on: date, today: date) -> date:
    """Refuse meeting dates after tomorrow (a typo, or a meeting that has not taken place)."""
    if held_on > today + timedelta(days=1):
        raise InvalidInput(MEETING_FUTURE, date=held_on.isoformat())
    return held_on


def parse_language(text: str | None, default: str) -> str:
    """Return zh, lo, vi or en; the default when nothing is given."""
    value = (text or "").strip().lower()
    if not value:
        return default
    if value not in LANGUAGES:
        raise InvalidInput(BAD_LANGUAGE, value=text)
    return value


def today_in(tz: str, now: datetime) -> date:
    """Return the local date in a time zone."""
    return now.astimezone(ZoneInfo(tz)).date()


def require_staff(actor: OfficerInfo | None) -> None:
    """Only coordinators and admins record meetings."""
    require_role(actor, *STAFF)


def _actor_today(core: Core, actor: OfficerInfo | None) -> date:
    return today_in(actor.timezone if actor else "UTC", core.clock.now())


def read_meeting_date(core: Core, actor: OfficerInfo | None, text: str) -> date:
    """Read and check a meeting date typed by a coordinator."""
    return check_held_on(parse_date(text), _actor_today(core, actor))


def read_due(core: Core, actor: OfficerInfo | None, text: str) -> date:
    """Read and check a due date typed by a coordinator (not in the past in their time zone)."""
    return check_due(parse_date(text), _actor_today(core, actor))


def read_owners(core: Core, text: str) -> list[str]:
    """Check owner references typed by a coordinator; return how they will be shown."""
    with core.db.session() as s:
        return [_label(o) for o in resolve_owners(s, split_owner_refs(text))]


# --- drafts and recording -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemDraft:
    """An action item as typed or imported: texts still to be checked."""

    text: str
    owners: tuple[str, ...]
    due: str | date
    case_tag: str | None = None
    line: int | None = None
    #: line of each field in an imported file
    lines: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MeetingDraft:
    """A meeting as typed or imported."""

    title: str
    held_on: str | date
    place: str | None = None
    participants: str | None = None
    #: @username of the coordinator; None = the officer recording it
    coordinator: str | None = None
    #: language of the texts; None = the coordinator's
    language: str | None = None
    items: tuple[ItemDraft, ...] = ()
    line: int | None = None
    lines: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    """Something wrong in a draft, with the line it is on (imports)."""

    line: int | None
    error: LiaisonError

    def english(self) -> str:
        """Return the problem in English (CLI)."""
        return self.error.english()


@dataclass
class _ValidItem:
    text: str
    owners: list[Officer]
    due: date
    case_tag: str | None


@dataclass
class _ValidMeeting:
    title: str
    held_on: date
    place: str | None
    participants: str | None
    coordinator: Officer
    language: str
    items: list[_ValidItem]
    fingerprint: str


@dataclass(frozen=True)
class RecordedItem:
    """An item as recorded."""

    id: int
    position: int
    text: str
    due_on: date
    case_tag: str | None
    owners: tuple[str, ...]


@dataclass(frozen=True)
class RecordedMeeting:
    """A meeting as recorded, with its items."""

    id: int
    title: str
    held_on: date
    coordinator: str
    items: tuple[RecordedItem, ...]


def fingerprint(title: str, held_on: date, coordinator_id: int) -> str:
    """Return what identifies a meeting without storing its title in clear."""
    key = f"{' '.join(title.lower().split())}|{held_on.isoformat()}|{coordinator_id}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_meetings(
    core: Core, actor: OfficerInfo | None, drafts: Sequence[MeetingDraft]
) -> tuple[list[_ValidMeeting], list[Problem]]:
    """Check every field of every draft; return the valid meetings and ALL problems found."""
    require_role(actor, *STAFF)
    now = core.clock.now()
    valid: list[_ValidMeeting] = []
    problems: list[Problem] = []

    def attempt(line: int | None, fn, *args):  # type: ignore[no-untyped-def]
        try:
            return fn(*args)
        except LiaisonError as exc:
            problems.append(Problem(line, exc))
            return None

    seen: dict[str, int | None] = {}
    with core.db.session() as s:
        for draft in drafts:
            before = len(problems)
            ln = draft.lines.get
            coordinator = attempt(ln("coordinator", draft.line), _coordinator, s, actor, draft.coordinator)
            tz = reminders.officer_tz(coordinator.timezone, coordinator.country) if coordinator else "UTC"
            today = today_in(tz, now)
            title = attempt(ln("title", draft.line), clean_text, draft.title, EMPTY_TITLE, MAX_TITLE)
            held_on = attempt(ln("date", draft.line), _read_held_on, draft.held_on, today)
            place = attempt(ln("place", draft.line), optional_text, draft.place)
            participants = attempt(ln("participants", draft.line), optional_text, draft.participants)
            sample = " ".join([draft.title or ""] + [i.text or "" for i in draft.items])
            language = attempt(
                ln("language", draft.line),
                parse_language,
                draft.language,
                detect(sample, fallback=coordinator.language if coordinator else "en"),
            )
            if not draft.items:
                problems.append(Problem(draft.line, InvalidInput(NO_ITEMS)))
            elif len(draft.items) > MAX_ITEMS:
                problems.append(Problem(draft.line, InvalidInput(TOO_MANY_ITEMS, max=MAX_ITEMS)))
            items: list[_ValidItem] = []
            for item in draft.items:
                il = item.lines.get
                text = attempt(il("text", item.line), clean_text, item.text, EMPTY_TEXT)
                owners = attempt(il("owners", item.line), resolve_owners, s, split_owner_refs(item.owners))
                due = attempt(il("due", item.line), _read_due, item.due, today)
                case_tag = attempt(il("case", item.line), parse_case_tag, item.case_tag)
                if None not in (text, owners, due):
                    items.append(_ValidItem(text, owners, due, case_tag))
            if coordinator is not None and title is not None and held_on is not None:
                fp = fingerprint(title, held_on, coordinator.id)
                existing = s.execute(select(Meeting.id).where(Meeting.fingerprint == fp)).scalar()
                if existing is not None:
                    problems.append(Problem(draft.line, Conflict(DUPLICATE_MEETING, id=existing)))
                elif fp in seen:
                    problems.append(Problem(draft.line, Conflict(DUPLICATE_DRAFT, line=seen[fp] or "?")))
                seen.setdefault(fp, draft.line)
                if len(problems) == before:
                    valid.append(
                        _ValidMeeting(
                            title, held_on, place, participants, coordinator, language or "en", items, fp
                        )
                    )
    return valid, problems


def _as_date(value: str | date) -> date:
    return value if isinstance(value, date) else parse_date(value)


def _read_held_on(value: str | date, today: date) -> date:
    return check_held_on(_as_date(value), today)


def _read_due(value: str | date, today: date) -> date:
    return check_due(_as_date(value), today)


def _coordinator(s: Session, actor: OfficerInfo | None, ref: str | None) -> Officer:
    if ref is None or not ref.strip():
        if actor is None:
            raise InvalidInput(NO_COORDINATOR)
        row = s.get(Officer, actor.id)
        assert row is not None
        return row
    officer = _active_officer(s, ref.strip())
    if officer.role not in STAFF:
        raise InvalidInput(NOT_COORDINATOR, ref=ref.strip())
    return officer


def record_meetings(
    core: Core, actor: OfficerInfo | None, drafts: Sequence[MeetingDraft], *, source: str = "telegram"
) -> list[RecordedMeeting]:
    """Check, translate and record meetings all or nothing; owners are told and reminders planned."""
    valid, problems = check_meetings(core, actor, drafts)
    if problems:
        raise problems[0].error
    translated = [_translate(core, m) for m in valid]
    now = core.clock.now()
    hour = core.settings.reminder_hour
    schedule = reminders.DEFAULT_SCHEDULE
    out: list[RecordedMeeting] = []
    with core.db.transaction() as s:
        for meeting, (title_tr, item_trs) in zip(valid, translated, strict=True):
            coordinator = s.get(Officer, meeting.coordinator.id)
            if coordinator is None or coordinator.status != OfficerStatus.ACTIVE:
                raise InvalidInput(NO_COORDINATOR)
            coord_tz = reminders.officer_tz(coordinator.timezone, coordinator.country)
            row = Meeting(
                title=core.cipher.encrypt(meeting.title, reminders.ENCRYPTION_AAD["title"]),
                held_on=meeting.held_on,
                place=core.cipher.encrypt_opt(meeting.place, reminders.ENCRYPTION_AAD["place"]),
                participants=core.cipher.encrypt_opt(
                    meeting.participants, reminders.ENCRYPTION_AAD["participants"]
                ),
                language=meeting.language,
                coordinator_id=coordinator.id,
                created_by_id=actor.id if actor else None,
                created_at=now,
                source=source,
                fingerprint=meeting.fingerprint,
            )
            s.add(row)
            s.flush()
            reminders.store_texts(s, core, row.id, None, title_tr)
            audit.record(
                s,
                "meeting.created",
                actor_id=actor.id if actor else None,
                at=now,
                data={
                    "meeting_id": row.id,
                    "title_sha256": audit.body_hash(meeting.title),
                    "held_on": meeting.held_on.isoformat(),
                    "coordinator_id": coordinator.id,
                    "language": meeting.language,
                    "items": len(meeting.items),
                    "via": source,
                },
            )
            items: list[RecordedItem] = []
            for position, (item, trs) in enumerate(zip(meeting.items, item_trs, strict=True), start=1):
                item_row = ActionItem(
                    meeting_id=row.id,
                    position=position,
                    text=core.cipher.encrypt(item.text, reminders.ENCRYPTION_AAD["item"]),
                    due_on=item.due,
                    case_tag=item.case_tag,
                    status=ItemStatus.OPEN,
                    created_at=now,
                    updated_at=now,
                    escalations=0,
                    escalate_at=schedule.next_escalation(item.due, coord_tz, hour, now),
                )
                s.add(item_row)
                s.flush()
                reminders.store_texts(s, core, row.id, item_row.id, trs)
                _add_owners(s, core, item_row, item.owners, now, schedule)
                audit.record(
                    s,
                    "meeting.item.created",
                    actor_id=actor.id if actor else None,
                    at=now,
                    case_tag=item.case_tag,
                    data={
                        "item_id": item_row.id,
                        "meeting_id": row.id,
                        "text_sha256": audit.body_hash(item.text),
                        "due_on": item.due.isoformat(),
                        "owners": [o.id for o in item.owners],
                    },
                )
                items.append(
                    RecordedItem(
                        item_row.id,
                        position,
                        item.text,
                        item.due,
                        item.case_tag,
                        tuple(_label(o) for o in item.owners),
                    )
                )
            out.append(
                RecordedMeeting(row.id, meeting.title, meeting.held_on, _label(coordinator), tuple(items))
            )
    logger.info(
        "recorded %s meeting(s) with %s item(s) via %s", len(out), sum(len(m.items) for m in out), source
    )
    return out


def _label(officer: Officer) -> str:
    return reminders.officer_label(officer.display_name, officer.username)


def _translate(core: Core, meeting: _ValidMeeting) -> tuple[dict, list[dict]]:  # type: ignore[type-arg]
    """Translate the title and each item once per target language (owners' and coordinator's)."""
    targets = {meeting.language, meeting.coordinator.language}
    for item in meeting.items:
        targets |= {o.language for o in item.owners}
    ordered = sorted(targets)
    title = core.translator.translate(meeting.title, meeting.language, ordered)
    items = [core.translator.translate(item.text, meeting.language, ordered) for item in meeting.items]
    return title, items


def _add_owners(
    s: Session,
    core: Core,
    item: ActionItem,
    owners: Sequence[Officer],
    now: datetime,
    schedule: reminders.Schedule,
) -> None:
    """Make officers owners of an item: schedule their reminders and queue the 'assigned' notice."""
    notices = []
    for officer in owners:
        existing = s.execute(
            select(ActionOwner).where(ActionOwner.item_id == item.id, ActionOwner.officer_id == officer.id)
        ).scalar_one_or_none()
        tz = reminders.officer_tz(officer.timezone, officer.country)
        next_at = schedule.next_reminder(item.due_on, tz, core.settings.reminder_hour, now)
        if existing is None:
            existing = ActionOwner(
                item_id=item.id,
                officer_id=officer.id,
                state=OwnerState.ACTIVE,
                next_remind_at=next_at,
                reminders_sent=0,
                created_at=now,
            )
            s.add(existing)
        else:
            existing.state, existing.next_remind_at, existing.snoozed_until = OwnerState.ACTIVE, next_at, None
        s.flush()
        notices.append(
            {
                "kind": "assigned",
                "officer_id": officer.id,
                "item_id": item.id,
                "owner_id": existing.id,
                "dedupe": f"asg:{existing.id}:{int(now.timestamp())}",
            }
        )
    reminders.enqueue(s, core, notices)


# --- what owners and coordinators do ------------------------------------------------------------------
@dataclass(frozen=True)
class ItemView:
    """An action item as one reader sees it (texts in their language)."""

    id: int
    meeting_id: int
    meeting_title: str
    held_on: date
    text: str
    translated: bool
    due_on: date
    case_tag: str | None
    status: str
    owners: tuple[str, ...]
    overdue: bool


def _views(s: Session, core: Core, item_ids: Sequence[int], lang: str, tz: str) -> list[ItemView]:
    if not item_ids:
        return []
    rows = s.execute(
        select(
            ActionItem.id,
            ActionItem.meeting_id,
            ActionItem.due_on,
            ActionItem.case_tag,
            ActionItem.status,
            Meeting.held_on,
        )
        .join(Meeting, Meeting.id == ActionItem.meeting_id)
        .where(ActionItem.id.in_(list(item_ids)))
        .order_by(ActionItem.due_on, ActionItem.id)
    ).all()
    book = reminders.load_texts(s, core, [r[1] for r in rows], [r[0] for r in rows], [lang])
    owners = reminders.item_owner_labels(s, [r[0] for r in rows])
    today = today_in(tz, core.clock.now())
    out = []
    for item_id, meeting_id, due_on, case_tag, status, held_on in rows:
        title, _ = book.get(meeting_id, None, lang)
        text, translated = book.get(meeting_id, item_id, lang)
        out.append(
            ItemView(
                item_id,
                meeting_id,
                title,
                held_on,
                text,
                translated,
                due_on,
                case_tag,
                status,
                tuple(owners.get(item_id, [])),
                status == ItemStatus.OPEN and due_on < today,
            )
        )
    return out


def open_items(core: Core, officer: OfficerInfo) -> list[ItemView]:
    """Return the officer's open action items, soonest due first."""
    with core.db.session() as s:
        ids = list(
            s.execute(
                select(ActionOwner.item_id)
                .join(ActionItem, ActionItem.id == ActionOwner.item_id)
                .where(
                    ActionOwner.officer_id == officer.id,
                    ActionOwner.state == OwnerState.ACTIVE,
                    ActionItem.status == ItemStatus.OPEN,
                )
            ).scalars()
        )
        return _views(s, core, ids, officer.language, officer.timezone)


def item_view(core: Core, reader: OfficerInfo | None, item_id: int) -> ItemView:
    """Return one item in the reader's language (English for the CLI)."""
    with core.db.session() as s:
        views = _views(
            s, core, [item_id], reader.language if reader else "en", reader.timezone if reader else "UTC"
        )
    if not views:
        raise NotFound(NO_SUCH_ITEM, id=item_id)
    return views[0]


def _locked_item(s: Session, item_id: int) -> tuple[ActionItem, Meeting]:
    item = s.execute(
        select(ActionItem).where(ActionItem.id == item_id).with_for_update()
    ).scalar_one_or_none()
    if item is None:
        raise NotFound(NO_SUCH_ITEM, id=item_id)
    meeting = s.get(Meeting, item.meeting_id)
    assert meeting is not None
    return item, meeting


def _my_owner_row(s: Session, item_id: int, officer: OfficerInfo) -> ActionOwner | None:
    return s.execute(
        select(ActionOwner).where(
            ActionOwner.item_id == item_id,
            ActionOwner.officer_id == officer.id,
            ActionOwner.state == OwnerState.ACTIVE,
        )
    ).scalar_one_or_none()


def complete(core: Core, actor: OfficerInfo | None, item_id: int) -> ItemView:
    """Close an item (its owners, the meeting's coordinator, an admin, or the CLI); reminders stop."""
    now = core.clock.now()
    with core.db.transaction() as s:
        item, meeting = _locked_item(s, item_id)
        if (
            actor is not None
            and actor.id != meeting.coordinator_id
            and actor.role != Role.ADMIN
            and _my_owner_row(s, item_id, actor) is None
        ):
            raise NotAllowed(NOT_OWNER, id=item_id)
        if item.status != ItemStatus.OPEN:
            raise Conflict(ITEM_CLOSED, id=item_id)
        item.status, item.completed_at, item.updated_at = ItemStatus.DONE, now, now
        item.completed_by_id, item.escalate_at = (actor.id if actor else None), None
        s.execute(
            update(ActionOwner)
            .where(ActionOwner.item_id == item_id)
            .values(next_remind_at=None, snoozed_until=None)
        )
        audit.record(
            s,
            "meeting.item.completed",
            actor_id=actor.id if actor else None,
            at=now,
            case_tag=item.case_tag,
            data={"item_id": item_id, "meeting_id": meeting.id, "via": "telegram" if actor else "cli"},
        )
        if actor is not None and actor.id != meeting.coordinator_id:
            reminders.enqueue(
                s,
                core,
                [
                    {
                        "kind": "completed",
                        "officer_id": meeting.coordinator_id,
                        "item_id": item_id,
                        "subject_id": actor.id,
                        "dedupe": f"done:{item_id}",
                    }
                ],
            )
    return item_view(core, actor, item_id)


def snooze(core: Core, officer: OfficerInfo, item_id: int, days: int = 1) -> datetime:
    """Hold an owner's reminders of an item for `days` days; return when the next one comes."""
    now = core.clock.now()
    with core.db.transaction() as s:
        item, _meeting = _locked_item(s, item_id)
        mine = _my_owner_row(s, item_id, officer)
        if mine is None:
            raise NotAllowed(NOT_OWNER, id=item_id)
        if item.status != ItemStatus.OPEN:
            raise Conflict(ITEM_CLOSED, id=item_id)
        until = now + timedelta(days=days)
        # Nothing for a day, then one reminder; after it, the normal schedule resumes.
        mine.next_remind_at = mine.snoozed_until = until
        audit.record(
            s,
            "meeting.item.snoozed",
            actor_id=officer.id,
            at=now,
            case_tag=item.case_tag,
            data={"item_id": item_id, "owner_id": mine.id, "until": mine.next_remind_at},
        )
        return mine.next_remind_at


def ask_help(core: Core, officer: OfficerInfo, item_id: int) -> str:
    """Tell the meeting's coordinator an owner needs help; return the coordinator's name."""
    now = core.clock.now()
    with core.db.transaction() as s:
        item, meeting = _locked_item(s, item_id)
        mine = _my_owner_row(s, item_id, officer)
        if mine is None:
            raise NotAllowed(NOT_OWNER, id=item_id)
        if item.status != ItemStatus.OPEN:
            raise Conflict(ITEM_CLOSED, id=item_id)
        coordinator = s.get(Officer, meeting.coordinator_id)
        if coordinator is None or coordinator.status != OfficerStatus.ACTIVE:
            raise Conflict(COORDINATOR_GONE)
        reminders.enqueue(
            s,
            core,
            [
                {
                    "kind": "help",
                    "officer_id": coordinator.id,
                    "item_id": item_id,
                    "owner_id": mine.id,
                    "subject_id": officer.id,
                    "dedupe": f"help:{mine.id}:{int(now.timestamp())}",
                }
            ],
        )
        audit.record(
            s,
            "meeting.item.help",
            actor_id=officer.id,
            at=now,
            case_tag=item.case_tag,
            data={"item_id": item_id, "coordinator_id": coordinator.id},
        )
        return _label(coordinator)


def change_item(
    core: Core,
    actor: OfficerInfo | None,
    item_id: int,
    *,
    due: str | date | None = None,
    owners: Sequence[str] | None = None,
    cancel: bool = False,
) -> ItemView:
    """Let the meeting's coordinator (or an admin, or the CLI) move the due date, reassign or cancel."""
    require_role(actor, *STAFF)
    now = core.clock.now()
    schedule = reminders.DEFAULT_SCHEDULE
    hour = core.settings.reminder_hour
    with core.db.transaction() as s:
        item, meeting = _locked_item(s, item_id)
        if actor is not None and actor.role != Role.ADMIN and actor.id != meeting.coordinator_id:
            raise NotAllowed()
        if item.status != ItemStatus.OPEN:
            raise Conflict(ITEM_CLOSED, id=item_id)
        coordinator = s.get(Officer, meeting.coordinator_id)
        assert coordinator is not None
        coord_tz = reminders.officer_tz(coordinator.timezone, coordinator.country)
        changes: dict[str, object] = {}
        if cancel:
            item.status, item.escalate_at = ItemStatus.CANCELLED, None
            s.execute(update(ActionOwner).where(ActionOwner.item_id == item_id).values(next_remind_at=None))
            changes["status"] = ItemStatus.CANCELLED.value
        if due is not None and not cancel:
            new_due = check_due(_as_date(due), today_in(coord_tz, now))
            changes["due_on"] = {"from": item.due_on.isoformat(), "to": new_due.isoformat()}
            item.due_on = new_due
            item.escalate_at = schedule.next_escalation(new_due, coord_tz, hour, now)
            for owner, officer in s.execute(
                select(ActionOwner, Officer)
                .join(Officer)
                .where(ActionOwner.item_id == item_id, ActionOwner.state == OwnerState.ACTIVE)
            ):
                owner.next_remind_at = schedule.next_reminder(
                    new_due, reminders.officer_tz(officer.timezone, officer.country), hour, now
                )
                owner.snoozed_until = None
        if owners is not None and not cancel:
            new = resolve_owners(s, split_owner_refs(list(owners)))
            new_ids = {o.id for o in new}
            current = s.execute(select(ActionOwner).where(ActionOwner.item_id == item_id)).scalars().all()
            for owner in current:
                if owner.officer_id not in new_ids and owner.state == OwnerState.ACTIVE:
                    owner.state, owner.next_remind_at = OwnerState.REMOVED, None
            active_now = {o.officer_id for o in current if o.state == OwnerState.ACTIVE}
            added = [o for o in new if o.id not in active_now]
            _ensure_texts(s, core, meeting, item, {o.language for o in added})
            _add_owners(s, core, item, added, now, schedule)
            changes["owners"] = sorted(new_ids)
        item.updated_at = now
        audit.record(
            s,
            "meeting.item.changed",
            actor_id=actor.id if actor else None,
            at=now,
            case_tag=item.case_tag,
            data={"item_id": item_id, "changes": changes},
        )
    return item_view(core, actor, item_id)


def _ensure_texts(s: Session, core: Core, meeting: Meeting, item: ActionItem, langs: set[str]) -> None:
    """Translate a title and item text into languages they do not exist in yet (new owners)."""
    from bot.models.meetings import MeetingText

    have = {
        (r[0] or 0, r[1])
        for r in s.execute(
            select(MeetingText.item_id, MeetingText.lang).where(
                MeetingText.meeting_id == meeting.id,
                (MeetingText.item_id == item.id) | MeetingText.item_id.is_(None),
            )
        )
    }
    for target_item, blob, aad in (
        (None, meeting.title, reminders.ENCRYPTION_AAD["title"]),
        (item.id, item.text, reminders.ENCRYPTION_AAD["item"]),
    ):
        missing = sorted(lang for lang in langs if (target_item or 0, lang) not in have)
        if missing:
            text = core.cipher.decrypt(blob, aad)
            reminders.store_texts(
                s, core, meeting.id, target_item, core.translator.translate(text, meeting.language, missing)
            )


def set_timezone(core: Core, actor: OfficerInfo | None, ref: str, timezone: str) -> OfficerInfo:
    """Set an officer's own time zone (reminders at 09:00 there); '-' returns to the country's."""
    require_role(actor, *STAFF)
    value = timezone.strip()
    if value not in ("-", ""):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(BAD_TIMEZONE, value=timezone) from None
    with core.db.transaction() as s:
        officer = find_officer(s, ref)
        old = officer.timezone
        officer.timezone = None if value in ("-", "") else value
        s.flush()
        info = officer_info(officer)
        count = reminders.reschedule_officer(s, core, officer.id, info.timezone)
        audit.record(
            s,
            "officer.timezone",
            actor_id=actor.id if actor else None,
            at=core.clock.now(),
            data={"officer_id": officer.id, "from": old, "to": officer.timezone, "rescheduled": count},
        )
    return info


# --- overviews for coordinators and the CLI -----------------------------------------------------------
@dataclass(frozen=True)
class MeetingSummary:
    """A meeting with counts of its items."""

    id: int
    title: str
    held_on: date
    place: str | None
    coordinator: str
    open: int
    overdue: int
    done: int
    cancelled: int


def list_meetings(core: Core, actor: OfficerInfo | None, *, lang: str = "en") -> list[MeetingSummary]:
    """Return meetings (coordinators see their own; admins, auditors and the CLI see all)."""
    require_role(actor, Role.COORDINATOR, Role.ADMIN, Role.AUDITOR)
    now = core.clock.now()
    with core.db.session() as s:
        query = select(Meeting, Officer).join(Officer, Officer.id == Meeting.coordinator_id)
        if actor is not None and actor.role == Role.COORDINATOR:
            query = query.where(Meeting.coordinator_id == actor.id)
        rows = s.execute(query.order_by(Meeting.held_on.desc(), Meeting.id.desc())).all()
        book = reminders.load_texts(s, core, [m.id for m, _ in rows], [], [lang])
        counts: dict[int, dict[str, int]] = {}
        for meeting_id, status, due_on, n in s.execute(
            select(ActionItem.meeting_id, ActionItem.status, ActionItem.due_on, func.count()).group_by(
                ActionItem.meeting_id, ActionItem.status, ActionItem.due_on
            )
        ):
            c = counts.setdefault(meeting_id, {"open": 0, "overdue": 0, "done": 0, "cancelled": 0})
            c[status] = c.get(status, 0) + n
            if status == ItemStatus.OPEN and due_on < now.date():
                c["overdue"] += n
        out = []
        for meeting, coordinator in rows:
            c = counts.get(meeting.id, {"open": 0, "overdue": 0, "done": 0, "cancelled": 0})
            out.append(
                MeetingSummary(
                    meeting.id,
                    book.get(meeting.id, None, lang)[0],
                    meeting.held_on,
                    core.cipher.decrypt_opt(meeting.place, reminders.ENCRYPTION_AAD["place"]),
                    _label(coordinator),
                    c["open"],
                    c["overdue"],
                    c["done"],
                    c["cancelled"],
                )
            )
        return out


def meeting_items(
    core: Core, actor: OfficerInfo | None, meeting_id: int, *, lang: str = "en"
) -> list[ItemView]:
    """Return every item of a meeting (for its coordinator, admins, auditors and the CLI)."""
    require_role(actor, Role.COORDINATOR, Role.ADMIN, Role.AUDITOR)
    with core.db.session() as s:
        meeting = s.get(Meeting, meeting_id)
        if meeting is None or (
            actor is not None and actor.role == Role.COORDINATOR and meeting.coordinator_id != actor.id
        ):
            raise NotFound(NO_SUCH_MEETING, id=meeting_id)
        ids = list(s.execute(select(ActionItem.id).where(ActionItem.meeting_id == meeting_id)).scalars())
        return _views(s, core, ids, lang, actor.timezone if actor else "UTC")


def messages_of(core: Core, item_id: int) -> list[tuple[str, int, str]]:
    """Return (kind, recipient officer id, status) of an item's messages, oldest first (tests, CLI)."""
    with core.db.session() as s:
        rows = s.execute(
            select(MeetingMessage.kind, MeetingMessage.officer_id, MeetingMessage.status)
            .where(MeetingMessage.item_id == item_id)
            .order_by(MeetingMessage.id)
        )
        return [(str(kind), int(officer_id), str(status)) for kind, officer_id, status in rows]
