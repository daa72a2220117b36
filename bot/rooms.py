"""Case rooms and one-to-one rooms: who is in which room, which room an officer writes to, handling codes."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from bot import audit, delivery
from bot.core import Core
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.i18n import N_
from bot.models import COUNTRY_FLAG, Officer, OfficerStatus, Role
from bot.models.relay import CurrentRoom, Introduction, Room, RoomMember, column_aad
from bot.officers import STAFF_ROLES, OfficerInfo, find_officer, officer_info, require_role
from bot.render import HANDLING_CODES, handling_line
from bot.translation.base import LANGUAGES

logger = logging.getLogger(__name__)

#: A case tag: one to four two-letter country codes, the year, a number — e.g. CN-VN-2026-0042.
CASE_TAG_RE = re.compile(r"^(?:[A-Z]{2}-){1,4}(?:19|20)\d{2}-\d{1,6}$")
MAX_TITLE = 200
POSTING_ROLES = (Role.OFFICER.value, Role.COORDINATOR.value, Role.ADMIN.value)
_TITLE_AAD = column_aad("rooms", "title_enc")
_CONDITIONS_AAD = column_aad("rooms", "conditions_enc")

BAD_TAG = N_("{tag} is not a valid case tag. Use country codes, the year and a number, e.g. CN-VN-2026-0042.")
TAG_TAKEN = N_("A case room {tag} already exists.")
NO_TITLE = N_("Give the case a title: /newcase CN-VN-2026-0042 Pangolin scales via Lao Cai")
NO_ROOM = N_("You are not writing to any room yet. Choose one with /rooms, or start a one-to-one chat with /dm.")
NOT_MEMBER = N_("You are not a member of {case}.")
UNKNOWN_ROOM = N_("There is no room {case} that you are a member of.")
ALREADY_MEMBER = N_("{name} is already in {case}.")
NOT_IN_ROOM = N_("{name} is not in {case}.")
NO_AUDITORS = N_("Auditors read rooms through exports; they cannot be room members.")
INACTIVE = N_("{name} can no longer use the bot.")
BAD_CODE = N_("Unknown handling code {code}: use H0, H1, H2 or H3.")
H3_NEEDS_CONDITIONS = N_("H3 needs its conditions in words, e.g. /handling H3 Only for the Lao Cai investigation team")
NOT_VISIBLE = N_("You can only write to officers you share a case room with, or whom a coordinator introduced.")
SELF_DM = N_("You cannot open a one-to-one room with yourself.")
NO_DM_HANDLING = N_("Handling codes are set for case rooms; mark a single message with H2: at its start instead.")
NOT_CASE_ROOM = N_("One-to-one rooms have exactly two members; open a case room with /newcase to work with more officers.")
# Notices sent to officers (through the outbox, in each reader's language)
ADDED_YOU = N_("{actor} added you to case room {case} — {title}.")
ADDED_YOU_CURRENT = N_("Your messages now go to {case}. Use /rooms to switch rooms.")
ADDED_YOU_SWITCH = N_("Send /room {case} to write there.")
ADDED_OTHER = N_("{flag} {name} ({agency}) has joined {case} and will receive its messages.")
REMOVED_YOU = N_("You were removed from case room {case}. You will no longer receive its messages.")
REMOVED_OTHER = N_("{name} has left {case} and no longer receives its messages.")
HANDLING_CHANGED = N_("{actor} set the handling code of {case}:")
INTRODUCED = N_("A coordinator introduced you to {flag} {name} ({agency}). Send /dm to write to them.")
DM_OPENED = N_("{flag} {name} ({agency}) opened a one-to-one conversation with you. Reply to their messages to answer, or send /dm to choose them.")


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """A room as a reader sees it."""

    id: int
    case_tag: str
    kind: str
    title: str | None
    handling: str
    members: int
    current: bool = False
    #: for one-to-one rooms: the other officer's name
    counterpart: str | None = None

    @property
    def is_dm(self) -> bool:
        """Tell whether this is a one-to-one room."""
        return self.kind == "dm"


def parse_case_tag(text: str) -> str:
    """Return a valid, upper-cased case tag or raise InvalidInput."""
    tag = (text or "").strip().upper().lstrip("#")
    if not CASE_TAG_RE.match(tag):
        raise InvalidInput(BAD_TAG, tag=text.strip() or "—")
    return tag


def parse_handling(text: str) -> str:
    """Return H0..H3 or raise InvalidInput."""
    code = (text or "").strip().upper()
    if code not in HANDLING_CODES:
        raise InvalidInput(BAD_CODE, code=text.strip() or "—")
    return code


def require_poster(actor: OfficerInfo) -> None:
    """Raise unless the actor may post into rooms (auditors may not)."""
    if actor.role == Role.AUDITOR:
        raise NotAllowed(N_("Auditors cannot post into rooms."))
    require_role(actor, *POSTING_ROLES)


def room_title(core: Core, room: Room) -> str | None:
    """Return a room's decrypted title."""
    return core.cipher.decrypt_opt(room.title_enc, _TITLE_AAD)


def room_conditions(core: Core, room: Room, lang: str) -> str | None:
    """Return a room's H3 conditions in a language (the original when no translation exists)."""
    if room.conditions_enc is None:
        return None
    doc = json.loads(core.cipher.decrypt(room.conditions_enc, _CONDITIONS_AAD))
    return doc.get("tr", {}).get(lang) or doc.get("text")  # type: ignore[no-any-return]


def _member(s: Session, room_id: int, officer_id: int) -> RoomMember | None:
    """Return an officer's current membership of a room, or None."""
    row = s.get(RoomMember, (room_id, officer_id))
    return row if row is not None and row.left_at is None else None


def active_members(s: Session, room_id: int) -> list[Officer]:
    """Return the room's current members who can still use the bot."""
    return list(s.execute(
        select(Officer).join(RoomMember, RoomMember.officer_id == Officer.id)
        .where(RoomMember.room_id == room_id, RoomMember.left_at.is_(None), Officer.status == OfficerStatus.ACTIVE)
        .order_by(Officer.id)).scalars())


def _info(core: Core, s: Session, room: Room, viewer_id: int | None, current_id: int | None = None) -> RoomInfo:
    """Return a room as the viewer sees it."""
    members = active_members(s, room.id)
    counterpart = None
    if room.kind == "dm":
        others = [m for m in members if m.id != viewer_id]
        counterpart = others[0].display_name if others else None
    return RoomInfo(room.id, room.case_tag, room.kind, room_title(core, room), room.handling, len(members),
                    current=room.id == current_id, counterpart=counterpart)


def _set_current(s: Session, officer_id: int, room_id: int | None, now: datetime) -> None:
    """Set (or clear) the room an officer writes to."""
    row = s.get(CurrentRoom, officer_id)
    if room_id is None:
        if row is not None:
            s.delete(row)
        return
    if row is None:
        s.add(CurrentRoom(officer_id=officer_id, room_id=room_id, chosen_at=now))
    else:
        row.room_id, row.chosen_at = room_id, now


def _room_by_tag(s: Session, tag: str) -> Room | None:
    """Return the room with a case tag (any case, with or without #)."""
    return s.execute(select(Room).where(func.upper(Room.case_tag) == tag.strip().upper().lstrip("#"))
                     ).scalar_one_or_none()


def _actor_room(s: Session, actor: OfficerInfo, tag: str | None) -> Room:
    """Return the room an action names (by tag), or the actor's current room."""
    if tag:
        room = _room_by_tag(s, tag)
        if room is None:
            raise NotFound(UNKNOWN_ROOM, case=tag)
        if actor.role != Role.ADMIN and _member(s, room.id, actor.id) is None:
            raise NotAllowed(NOT_MEMBER, case=room.case_tag)
        return room
    current = s.get(CurrentRoom, actor.id)
    if current is None:
        raise NotFound(NO_ROOM)
    room = s.get(Room, current.room_id)
    assert room is not None
    if _member(s, room.id, actor.id) is None:
        raise NotFound(NO_ROOM)
    return room


def notice(s: Session, core: Core, officer: Officer, html_text: str, *, case_tag: str | None = None,
           actor_id: int | None = None, ref_id: int | None = None) -> None:
    """Queue a short notice to an officer (kind "notice"), stored before it is sent."""
    delivery.enqueue(s, core, kind="notice", chat_id=officer.telegram_id, recipient_id=officer.id,
                     lang=officer.language, payload=delivery.Payload(text=html_text), ref_id=ref_id,
                     case_tag=case_tag, actor_id=actor_id, priority=5)


def create_case(core: Core, actor: OfficerInfo, tag: str, title: str) -> RoomInfo:
    """Open a case room (coordinators and admins); the creator joins it and writes to it from now on."""
    require_role(actor, *STAFF_ROLES)
    tag = parse_case_tag(tag)
    title = " ".join((title or "").split())[:MAX_TITLE]
    if not title:
        raise InvalidInput(NO_TITLE)
    now = core.clock.now()
    with core.db.transaction() as s:
        if _room_by_tag(s, tag) is not None:
            raise Conflict(TAG_TAKEN, tag=tag)
        room = Room(case_tag=tag, kind="case", title_enc=core.cipher.encrypt(title, _TITLE_AAD), handling="H0",
                    created_by_id=actor.id, created_at=now)
        s.add(room)
        s.flush()
        s.add(RoomMember(room_id=room.id, officer_id=actor.id, added_by_id=actor.id, joined_at=now))
        _set_current(s, actor.id, room.id, now)
        audit.record(s, "room.created", actor_id=actor.id, case_tag=tag, at=now,
                     data={"room": room.id, "kind": "case", "title_hash": audit.body_hash(title), "handling": "H0"})
        audit.record(s, "room.member_added", actor_id=actor.id, case_tag=tag, at=now,
                     data={"room": room.id, "officer": actor.id})
        s.flush()
        return _info(core, s, room, actor.id, room.id)


def add_member(core: Core, actor: OfficerInfo, ref: str | int, tag: str | None = None) -> tuple[RoomInfo, OfficerInfo]:
    """Add an officer to a case room (the actor's current one unless a tag is given); staff only."""
    require_role(actor, *STAFF_ROLES)
    now = core.clock.now()
    with core.db.transaction() as s:
        room = _actor_room(s, actor, tag)
        if room.kind != "case":
            raise InvalidInput(NOT_CASE_ROOM)
        target = find_officer(s, ref)
        if target.status != OfficerStatus.ACTIVE:
            raise Conflict(INACTIVE, name=target.display_name)
        if target.role == Role.AUDITOR:
            raise NotAllowed(NO_AUDITORS)
        row = s.get(RoomMember, (room.id, target.id))
        if row is not None and row.left_at is None:
            raise Conflict(ALREADY_MEMBER, name=target.display_name, case=room.case_tag)
        others = active_members(s, room.id)
        if row is None:
            s.add(RoomMember(room_id=room.id, officer_id=target.id, added_by_id=actor.id, joined_at=now))
        else:
            row.left_at, row.joined_at, row.added_by_id = None, now, actor.id
        first_room = s.get(CurrentRoom, target.id) is None
        if first_room:
            _set_current(s, target.id, room.id, now)
        audit.record(s, "room.member_added", actor_id=actor.id, case_tag=room.case_tag, at=now,
                     data={"room": room.id, "officer": target.id})
        title = room_title(core, room) or ""
        t = core.catalogs.get(target.language)
        follow = t(ADDED_YOU_CURRENT, case=room.case_tag) if first_room else t(ADDED_YOU_SWITCH, case=room.case_tag)
        notice(s, core, target, t(ADDED_YOU, actor=actor.display_name, case=room.case_tag, title=title) + "\n" + follow,
               case_tag=room.case_tag, actor_id=actor.id, ref_id=room.id)
        info = officer_info(target)
        for other in others:
            if other.id != actor.id:
                tt = core.catalogs.get(other.language)
                notice(s, core, other, tt(ADDED_OTHER, flag=info.flag, name=info.display_name,
                                          agency=info.agency_name or "—", case=room.case_tag),
                       case_tag=room.case_tag, actor_id=actor.id, ref_id=room.id)
        s.flush()
        result = _info(core, s, room, actor.id)
    delivery.wake(core)
    return result, info


def remove_member(core: Core, actor: OfficerInfo, ref: str | int, tag: str | None = None
                  ) -> tuple[RoomInfo, OfficerInfo]:
    """Remove an officer from a case room; copies not yet sent to them are cancelled. Staff only."""
    require_role(actor, *STAFF_ROLES)
    now = core.clock.now()
    with core.db.transaction() as s:
        room = _actor_room(s, actor, tag)
        if room.kind != "case":
            raise InvalidInput(NOT_CASE_ROOM)
        target = find_officer(s, ref)
        row = _member(s, room.id, target.id)
        if row is None:
            raise Conflict(NOT_IN_ROOM, name=target.display_name, case=room.case_tag)
        row.left_at = now
        current = s.get(CurrentRoom, target.id)
        if current is not None and current.room_id == room.id:
            _set_current(s, target.id, None, now)
        from bot.models.relay import Message

        message_ids = list(s.execute(select(Message.id).where(Message.room_id == room.id)).scalars())
        cancelled = delivery.cancel_pending(s, core, kind="relay", ref_ids=message_ids, recipient_id=target.id,
                                            reason="removed from the room", actor_id=actor.id) if message_ids else []
        audit.record(s, "room.member_removed", actor_id=actor.id, case_tag=room.case_tag, at=now,
                     data={"room": room.id, "officer": target.id, "cancelled": cancelled})
        if target.status == OfficerStatus.ACTIVE and target.id != actor.id:
            notice(s, core, target, core.catalogs.get(target.language)(REMOVED_YOU, case=room.case_tag),
                   case_tag=room.case_tag, actor_id=actor.id, ref_id=room.id)
        for other in active_members(s, room.id):
            if other.id != actor.id:
                notice(s, core, other, core.catalogs.get(other.language)(
                    REMOVED_OTHER, name=target.display_name, case=room.case_tag),
                    case_tag=room.case_tag, actor_id=actor.id, ref_id=room.id)
        s.flush()
        result, info = _info(core, s, room, actor.id), officer_info(target)
    delivery.wake(core)
    return result, info


def my_rooms(core: Core, officer: OfficerInfo) -> list[RoomInfo]:
    """Return the rooms an officer is a member of, case rooms first, the current one marked."""
    with core.db.session() as s:
        current = s.get(CurrentRoom, officer.id)
        rooms = s.execute(select(Room).join(RoomMember, RoomMember.room_id == Room.id)
                          .where(RoomMember.officer_id == officer.id, RoomMember.left_at.is_(None))
                          .order_by(Room.kind, Room.case_tag)).scalars()
        return [_info(core, s, r, officer.id, current.room_id if current else None) for r in rooms]


def current_room(core: Core, officer: OfficerInfo) -> RoomInfo | None:
    """Return the room an officer's messages go to, or None."""
    with core.db.session() as s:
        current = s.get(CurrentRoom, officer.id)
        if current is None or _member(s, current.room_id, officer.id) is None:
            return None
        room = s.get(Room, current.room_id)
        assert room is not None
        return _info(core, s, room, officer.id, room.id)


def room_tag(core: Core, room_id: int) -> str:
    """Return a room's case tag (NotFound for an unknown id)."""
    with core.db.session() as s:
        room = s.get(Room, room_id)
        if room is None:
            raise NotFound(UNKNOWN_ROOM, case=str(room_id))
        return room.case_tag


def choose_room(core: Core, officer: OfficerInfo, ref: str | int) -> RoomInfo:
    """Make a room (by case tag or room id) the one the officer writes to."""
    now = core.clock.now()
    with core.db.transaction() as s:
        room = s.get(Room, int(ref)) if isinstance(ref, int) else _room_by_tag(s, ref)
        if room is None or _member(s, room.id, officer.id) is None:
            raise NotFound(UNKNOWN_ROOM, case=str(ref) if not isinstance(ref, int) else "—")
        _set_current(s, officer.id, room.id, now)
        s.flush()
        return _info(core, s, room, officer.id, room.id)


def set_handling(core: Core, actor: OfficerInfo, code: str, conditions: str | None = None,
                 tag: str | None = None) -> RoomInfo:
    """Set a case room's handling code (staff); H3 needs conditions, translated once into every language."""
    require_role(actor, *STAFF_ROLES)
    code = parse_handling(code)
    conditions = " ".join((conditions or "").split()) or None
    if code == "H3" and not conditions:
        raise InvalidInput(H3_NEEDS_CONDITIONS)
    doc = None
    if code == "H3" and conditions:
        from bot.translation.detect import detect

        source = detect(conditions, actor.language)
        translated = core.translator.translate(conditions, source, [lang for lang in LANGUAGES if lang != source])
        doc = {"source": source, "text": conditions,
               "tr": {lang: t.text for lang, t in translated.items() if t.translated}}
    now = core.clock.now()
    with core.db.transaction() as s:
        room = _actor_room(s, actor, tag)
        if room.kind != "case":
            raise InvalidInput(NO_DM_HANDLING)
        old = room.handling
        room.handling = code
        room.conditions_enc = core.cipher.encrypt(json.dumps(doc, ensure_ascii=False), _CONDITIONS_AAD) if doc else None
        audit.record(s, "room.handling_changed", actor_id=actor.id, case_tag=room.case_tag, at=now,
                     data={"room": room.id, "from": old, "to": code,
                           "conditions_hash": audit.body_hash(conditions) if conditions else None})
        for member in active_members(s, room.id):
            t = core.catalogs.get(member.language)
            text = t(HANDLING_CHANGED, actor=actor.display_name, case=room.case_tag) + "\n" + handling_line(
                t, code, room_conditions(core, room, member.language))
            notice(s, core, member, text, case_tag=room.case_tag, actor_id=actor.id, ref_id=room.id)
        s.flush()
        result = _info(core, s, room, actor.id)
    delivery.wake(core)
    return result


# --- who can see whom, one-to-one rooms -------------------------------------------------------------

def _visible_query(officer: OfficerInfo):  # type: ignore[no-untyped-def]
    """Return a select of the officers this officer may see (staff see every active officer)."""
    base = select(Officer).where(Officer.status == OfficerStatus.ACTIVE, Officer.id != officer.id,
                                 Officer.role != Role.AUDITOR)
    if officer.role in STAFF_ROLES:
        return base
    mine, theirs = aliased(RoomMember), aliased(RoomMember)
    shared = (select(theirs.officer_id).join(mine, mine.room_id == theirs.room_id)
              .join(Room, Room.id == theirs.room_id)
              .where(mine.officer_id == officer.id, mine.left_at.is_(None), theirs.left_at.is_(None),
                     Room.kind == "case"))
    introduced_a = select(Introduction.officer_b_id).where(Introduction.officer_a_id == officer.id)
    introduced_b = select(Introduction.officer_a_id).where(Introduction.officer_b_id == officer.id)
    return base.where(or_(Officer.id.in_(shared), Officer.id.in_(introduced_a), Officer.id.in_(introduced_b)))


def visible_officers(core: Core, officer: OfficerInfo, *, country: str | None = None,
                     agency_id: int | None = None) -> list[OfficerInfo]:
    """Return the counterparts an officer may open a one-to-one room with (optionally one country/agency)."""
    query = _visible_query(officer)
    if country is not None:
        query = query.where(Officer.country == country)
    if agency_id is not None:
        query = query.where(Officer.agency_id == agency_id if agency_id else Officer.agency_id.is_(None))
    with core.db.session() as s:
        return [officer_info(o) for o in s.execute(query.order_by(Officer.country, Officer.display_name))
                .unique().scalars()]


def add_candidates(core: Core, actor: OfficerInfo, *, country: str | None = None,
                   agency_id: int | None = None) -> list[OfficerInfo]:
    """Return active officers a coordinator can add to their current room (not auditors, not members)."""
    require_role(actor, *STAFF_ROLES)
    with core.db.session() as s:
        room = _actor_room(s, actor, None)
        members = select(RoomMember.officer_id).where(RoomMember.room_id == room.id, RoomMember.left_at.is_(None))
        query = select(Officer).where(Officer.status == OfficerStatus.ACTIVE, Officer.role != Role.AUDITOR,
                                      Officer.id.not_in(members))
        if country is not None:
            query = query.where(Officer.country == country)
        if agency_id is not None:
            query = query.where(Officer.agency_id == agency_id if agency_id else Officer.agency_id.is_(None))
        return [officer_info(o) for o in s.execute(query.order_by(Officer.country, Officer.display_name))
                .unique().scalars()]


def room_members(core: Core, actor: OfficerInfo, tag: str | None = None) -> tuple[RoomInfo, list[OfficerInfo]]:
    """Return a room (the actor's current one unless tagged) and its active members."""
    with core.db.session() as s:
        room = _actor_room(s, actor, tag)
        return _info(core, s, room, actor.id), [officer_info(o) for o in active_members(s, room.id)]


def open_dm(core: Core, officer: OfficerInfo, ref: str | int) -> tuple[RoomInfo, OfficerInfo]:
    """Open (or reopen) the one-to-one room with a visible counterpart and write to it from now on."""
    require_poster(officer)
    now = core.clock.now()
    with core.db.transaction() as s:
        other = s.get(Officer, int(ref[3:])) if isinstance(ref, str) and ref.startswith("id:") else find_officer(s, ref)
        if other is None:
            raise NotFound(N_("No officer {ref} is registered."), ref=str(ref))
        if other.id == officer.id:
            raise InvalidInput(SELF_DM)
        visible = s.execute(_visible_query(officer).where(Officer.id == other.id)).unique().scalar_one_or_none()
        if visible is None:
            raise NotAllowed(NOT_VISIBLE)
        low, high = sorted((officer.id, other.id))
        tag = f"DM-{low}-{high}"
        room = _room_by_tag(s, tag)
        created = room is None
        if room is None:
            room = Room(case_tag=tag, kind="dm", title_enc=None, handling="H0", created_by_id=officer.id, created_at=now)
            s.add(room)
            s.flush()
            audit.record(s, "room.created", actor_id=officer.id, case_tag=tag, at=now,
                         data={"room": room.id, "kind": "dm", "officers": [low, high]})
        for member_id in (low, high):
            row = s.get(RoomMember, (room.id, member_id))
            if row is None:
                s.add(RoomMember(room_id=room.id, officer_id=member_id, added_by_id=officer.id, joined_at=now))
            elif row.left_at is not None:
                row.left_at = None
        _set_current(s, officer.id, room.id, now)
        if created:
            t = core.catalogs.get(other.language)
            notice(s, core, other, t(DM_OPENED, flag=officer.flag, name=officer.display_name,
                                     agency=officer.agency_name or "—"), case_tag=tag, actor_id=officer.id,
                   ref_id=room.id)
        s.flush()
        result, info = _info(core, s, room, officer.id, room.id), officer_info(other)
    delivery.wake(core)
    return result, info


def introduce(core: Core, actor: OfficerInfo, ref_a: str | int, ref_b: str | int) -> tuple[OfficerInfo, OfficerInfo]:
    """Make two officers visible to each other for one-to-one rooms (coordinators and admins)."""
    require_role(actor, *STAFF_ROLES)
    now = core.clock.now()
    with core.db.transaction() as s:
        a, b = find_officer(s, ref_a), find_officer(s, ref_b)
        if a.id == b.id:
            raise InvalidInput(SELF_DM)
        for person in (a, b):
            if person.status != OfficerStatus.ACTIVE:
                raise Conflict(INACTIVE, name=person.display_name)
            if person.role == Role.AUDITOR:
                raise NotAllowed(NO_AUDITORS)
        low, high = sorted((a.id, b.id))
        if s.get(Introduction, (low, high)) is None:
            s.add(Introduction(officer_a_id=low, officer_b_id=high, created_by_id=actor.id, created_at=now))
            audit.record(s, "room.introduced", actor_id=actor.id, at=now, data={"officers": [low, high]})
            for me, them in ((a, b), (b, a)):
                info = officer_info(them)
                notice(s, core, me, core.catalogs.get(me.language)(
                    INTRODUCED, flag=info.flag, name=info.display_name, agency=info.agency_name or "—"),
                    actor_id=actor.id)
        s.flush()
        result = officer_info(a), officer_info(b)
    delivery.wake(core)
    return result


def countries_of(officers: list[OfficerInfo]) -> list[tuple[str, int]]:
    """Return (country, count) for a list of officers, in the usual order."""
    counts: dict[str, int] = {}
    for o in officers:
        counts[o.country or "—"] = counts.get(o.country or "—", 0) + 1
    return sorted(counts.items(), key=lambda kv: list(COUNTRY_FLAG).index(kv[0]) if kv[0] in COUNTRY_FLAG else 9)


def agencies_of(officers: list[OfficerInfo]) -> list[tuple[int, str, int]]:
    """Return (agency id or 0, agency name, count) for a list of officers."""
    counts: dict[int, tuple[str, int]] = {}
    for o in officers:
        key = o.agency_id or 0
        name, n = counts.get(key, (o.agency_name or "—", 0))
        counts[key] = (name, n + 1)
    return sorted(((k, name, n) for k, (name, n) in counts.items()), key=lambda t: t[1].lower())

