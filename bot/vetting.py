"""The vetting gate: invites, registration, revocation and brute-force throttling."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import audit
from bot.core import Core
from bot.db import insert_new
from bot.errors import Conflict, InvalidInput, LiaisonError, NotAllowed
from bot.i18n import N_
from bot.models import (
    COUNTRY_LANGUAGE,
    AccessAttempt,
    Agency,
    Country,
    Invite,
    KeyValue,
    Officer,
    OfficerStatus,
    ProcessedUpdate,
    Role,
)
from bot.officers import OfficerInfo, active_info_by_telegram_id, find_officer, officer_info, require_role
from bot.translation.base import LANGUAGES

logger = logging.getLogger(__name__)

#: failed codes allowed per Telegram account before it is made to wait
MAX_FAILED_ATTEMPTS = 5
ATTEMPT_WINDOW = timedelta(minutes=15)
#: failed codes allowed from all accounts together in the window (against many throwaway accounts)
MAX_FAILED_ATTEMPTS_GLOBAL = 100
MAX_INVITE_LIFETIME = timedelta(days=30)
DEFAULT_INVITE_LIFETIME = timedelta(hours=72)
_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_DURATION_RE = re.compile(r"^\s*(\d{1,4})\s*([mhdw])\s*$", re.IGNORECASE)
_UPDATES = ProcessedUpdate.__table__
#: record an update as handled unless it already is; a row comes back only for a new one
_RECORD_UPDATE = insert_new(_UPDATES, "update_id")


class InvalidCode(LiaisonError):
    """The invite code is unknown, used, expired or cancelled (deliberately not saying which)."""

    message = N_("This invite code is not valid. Ask your coordinator for a new one.")


class Throttled(LiaisonError):
    """Too many wrong codes in a short time."""

    message = N_("Too many attempts. Please wait {minutes} minutes and try again.")


@dataclass(frozen=True)
class CreatedInvite:
    """A new invite: the code is shown once and never stored."""

    code: str
    role: str
    country: str | None
    agency: str | None
    language: str
    expires_at: datetime

    def link(self, bot_username: str | None) -> str | None:
        """Return the deep link that registers whoever opens it, or None without a bot username."""
        if not bot_username:
            return None
        return f"https://t.me/{bot_username}?start={self.code}"


def hash_code(code: str) -> str:
    """Return the stored form of an invite code."""
    return hashlib.sha256(b"liaison-invite:" + code.encode("utf-8")).hexdigest()


def parse_duration(text: str) -> timedelta:
    """Parse '72h', '30m', '7d', '2w' into a timedelta."""
    match = _DURATION_RE.match(text or "")
    if not match:
        raise InvalidInput(N_("Cannot read the duration {value}: use e.g. 30m, 72h, 7d."), value=text)
    amount, unit = int(match.group(1)), match.group(2).lower()
    delta = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount),
             "w": timedelta(weeks=amount)}[unit]
    if delta <= timedelta(0) or delta > MAX_INVITE_LIFETIME:
        raise InvalidInput(N_("An invite must expire within 30 days."))
    return delta


def parse_role(text: str) -> str:
    """Return a valid role name or raise."""
    value = (text or "").strip().lower()
    if value not in {r.value for r in Role}:
        raise InvalidInput(N_("Unknown role {value}: use officer, coordinator, auditor or admin."), value=text)
    return value


def parse_country(text: str | None) -> str | None:
    """Return CN, LA or VN (or None for nothing given), or raise."""
    if text is None or text == "":
        return None
    value = text.strip().upper()
    if value not in {c.value for c in Country}:
        raise InvalidInput(N_("Unknown country {value}: use CN, LA or VN."), value=text)
    return value


def parse_language(text: str | None) -> str | None:
    """Return zh, lo, vi or en (or None), or raise."""
    if text is None or text == "":
        return None
    value = text.strip().lower()
    if value not in LANGUAGES:
        raise InvalidInput(N_("Unknown language {value}: use zh, lo, vi or en."), value=text)
    return value


def _agency(session: Session, country: str | None, name: str | None, now: datetime) -> Agency | None:
    if not name:
        return None
    if country is None:
        raise InvalidInput(N_("An agency needs a country."))
    name = " ".join(name.split())[:200]
    agency = session.execute(
        select(Agency).where(Agency.country == country, func.lower(Agency.name) == name.lower())
    ).scalar_one_or_none()
    if agency is None:
        agency = Agency(country=country, name=name, created_at=now)
        session.add(agency)
        session.flush()
    return agency


def create_invite(
    core: Core,
    actor: OfficerInfo | None,
    *,
    role: str,
    country: str | None = None,
    agency: str | None = None,
    language: str | None = None,
    lifetime: timedelta = DEFAULT_INVITE_LIFETIME,
) -> CreatedInvite:
    """Create a one-time invite; `actor` None means the server's administrator at the CLI."""
    role = parse_role(role)
    country = parse_country(country)
    language = parse_language(language)
    if actor is not None:
        require_role(actor, Role.COORDINATOR, Role.ADMIN)
        if actor.role == Role.COORDINATOR:
            if role not in (Role.OFFICER, Role.COORDINATOR):
                raise NotAllowed(N_("Coordinators can invite officers and coordinators only."))
            country = country or actor.country
            if country != actor.country:
                raise NotAllowed(N_("Coordinators can invite officers of their own country only."))
            agency = agency or actor.agency_name
    if role != Role.ADMIN and country is None:
        raise InvalidInput(N_("An officer needs a country: CN, LA or VN."))
    if lifetime <= timedelta(0) or lifetime > MAX_INVITE_LIFETIME:
        raise InvalidInput(N_("An invite must expire within 30 days."))
    language = language or COUNTRY_LANGUAGE.get(country or "", "en")
    code = secrets.token_urlsafe(12)
    now = core.clock.now()
    with core.db.transaction() as s:
        agency_row = _agency(s, country, agency, now)
        invite = Invite(
            code_hash=hash_code(code),
            role=role,
            country=country,
            agency_id=agency_row.id if agency_row else None,
            language=language,
            created_by_id=actor.id if actor else None,
            created_at=now,
            expires_at=now + lifetime,
        )
        s.add(invite)
        s.flush()
        audit.record(
            s,
            "invite.created",
            actor_id=actor.id if actor else None,
            at=now,
            data={
                "invite_id": invite.id,
                "role": role,
                "country": country,
                "agency": agency_row.name if agency_row else None,
                "language": language,
                "expires_at": invite.expires_at,
                "via": "telegram" if actor else "cli",
            },
        )
    logger.info("invite %s created for role %s", invite.id, role)
    return CreatedInvite(code, role, country, agency_row.name if agency_row else None, language, invite.expires_at)


def _throttle_check(s: Session, telegram_id: int, now: datetime) -> None:
    since = now - ATTEMPT_WINDOW
    mine = s.execute(
        select(func.count()).where(
            AccessAttempt.telegram_id == telegram_id,
            AccessAttempt.kind == "bad-code",
            AccessAttempt.at >= since,
        )
    ).scalar_one()
    everyone = s.execute(
        select(func.count()).where(AccessAttempt.kind == "bad-code", AccessAttempt.at >= since)
    ).scalar_one()
    if mine >= MAX_FAILED_ATTEMPTS or everyone >= MAX_FAILED_ATTEMPTS_GLOBAL:
        raise Throttled(minutes=int(ATTEMPT_WINDOW.total_seconds() // 60))


def register(
    core: Core,
    *,
    telegram_id: int,
    code: str,
    display_name: str,
    username: str | None,
) -> OfficerInfo:
    """Register the sender of `/start CODE`; every refusal is audited and counted for throttling."""
    now = core.clock.now()
    code = (code or "").strip()
    refusal: LiaisonError | None = None
    with core.db.transaction() as s:
        try:
            _throttle_check(s, telegram_id, now)
        except Throttled as exc:
            audit.record(s, "registration.throttled", at=now, data={"telegram_id": telegram_id})
            refusal = exc
        else:
            existing = s.execute(select(Officer).where(Officer.telegram_id == telegram_id)).scalar_one_or_none()
            if existing is not None and existing.status == OfficerStatus.ACTIVE:
                raise Conflict(N_("You are already registered."))
            invite = None
            if _CODE_RE.match(code):
                invite = s.execute(
                    select(Invite).where(Invite.code_hash == hash_code(code)).with_for_update()
                ).scalar_one_or_none()
            reason = None
            if invite is None:
                reason = "unknown"
            elif invite.used_at is not None:
                reason = "used"
            elif invite.cancelled_at is not None:
                reason = "cancelled"
            elif invite.expires_at <= now:
                reason = "expired"
            if reason is not None:
                s.add(AccessAttempt(telegram_id=telegram_id, at=now, kind="bad-code", success=False))
                audit.record(
                    s,
                    "registration.refused",
                    at=now,
                    data={"telegram_id": telegram_id, "reason": reason,
                          "invite_id": invite.id if invite else None},
                )
                refusal = InvalidCode()
            else:
                assert invite is not None
                officer = existing or Officer(telegram_id=telegram_id, created_at=now)
                officer.username = username
                officer.display_name = (display_name or username or str(telegram_id))[:200]
                officer.role = invite.role
                officer.country = invite.country
                officer.agency_id = invite.agency_id
                officer.language = invite.language
                officer.status = OfficerStatus.ACTIVE
                officer.revoked_at = None
                officer.invited_by_id = invite.created_by_id
                s.add(officer)
                s.flush()
                invite.used_at, invite.used_by_id = now, officer.id
                s.add(AccessAttempt(telegram_id=telegram_id, at=now, kind="registered", success=True))
                audit.record(
                    s,
                    "officer.registered",
                    actor_id=officer.id,
                    at=now,
                    data={"officer_id": officer.id, "telegram_id": telegram_id, "invite_id": invite.id,
                          "role": officer.role, "country": officer.country, "agency_id": officer.agency_id,
                          "language": officer.language, "re_registered": existing is not None},
                )
                s.refresh(officer)
                info = officer_info(officer)
    if refusal is not None:
        raise refusal
    logger.info("officer %s registered with role %s", info.id, info.role)
    return info


def note_stranger(core: Core, telegram_id: int, what: str) -> None:
    """Audit a stranger's contact, once per account per hour (so floods do not flood the trail)."""
    now = core.clock.now()
    with core.db.transaction() as s:
        recent = s.execute(
            select(func.count()).where(
                AccessAttempt.telegram_id == telegram_id,
                AccessAttempt.kind == "stranger",
                AccessAttempt.at >= now - timedelta(hours=1),
            )
        ).scalar_one()
        if recent:
            return
        s.add(AccessAttempt(telegram_id=telegram_id, at=now, kind="stranger", success=False))
        audit.record(s, "access.refused", at=now, data={"telegram_id": telegram_id, "update": what})


def revoke(core: Core, actor: OfficerInfo | None, ref: str | int, reason: str | None = None) -> OfficerInfo:
    """Revoke an officer: from now on the bot ignores them and nothing is delivered to them."""
    now = core.clock.now()
    with core.db.transaction() as s:
        target = find_officer(s, ref)
        if actor is not None:
            require_role(actor, Role.COORDINATOR, Role.ADMIN)
            if target.id == actor.id:
                raise NotAllowed(N_("You cannot revoke yourself."))
            if actor.role == Role.COORDINATOR and (
                target.country != actor.country or target.role not in (Role.OFFICER, Role.COORDINATOR)
            ):
                raise NotAllowed(N_("Coordinators can revoke officers of their own country only."))
        if target.status == OfficerStatus.REVOKED:
            raise Conflict(N_("{name} is already revoked."), name=target.display_name)
        target.status = OfficerStatus.REVOKED
        target.revoked_at = now
        audit.record(
            s,
            "officer.revoked",
            actor_id=actor.id if actor else None,
            at=now,
            data={"officer_id": target.id, "telegram_id": target.telegram_id, "reason": reason,
                  "via": "telegram" if actor else "cli"},
        )
        s.flush()
        info = officer_info(target)
    logger.info("officer %s revoked", info.id)
    return info


def list_officers(core: Core, actor: OfficerInfo | None, *, include_revoked: bool = False) -> list[OfficerInfo]:
    """List officers for coordinators, auditors and admins (officers see counterparts through rooms)."""
    require_role(actor, Role.COORDINATOR, Role.ADMIN, Role.AUDITOR)
    with core.db.session() as s:
        query = select(Officer).order_by(Officer.country, Officer.display_name, Officer.id)
        if not include_revoked:
            query = query.where(Officer.status == OfficerStatus.ACTIVE)
        return [officer_info(o) for o in s.execute(query).scalars()]


def set_language(core: Core, officer: OfficerInfo, language: str) -> OfficerInfo:
    """Change an officer's interface and translation language."""
    lang = parse_language(language)
    if lang is None:
        raise InvalidInput(N_("Unknown language {value}: use zh, lo, vi or en."), value=language)
    with core.db.transaction() as s:
        row = s.get(Officer, officer.id)
        assert row is not None
        old, row.language = row.language, lang
        audit.record(s, "officer.language", actor_id=officer.id, at=core.clock.now(),
                     data={"officer_id": officer.id, "from": old, "to": lang})
        s.flush()
        return officer_info(row)


def active_officer(core: Core, telegram_id: int) -> OfficerInfo | None:
    """Return the active officer with this Telegram id, or None."""
    with core.db.session() as s:
        row = s.execute(
            select(Officer).where(Officer.telegram_id == telegram_id, Officer.status == OfficerStatus.ACTIVE)
        ).scalar_one_or_none()
        return officer_info(row) if row else None


def admit(core: Core, update_id: int, telegram_id: int | None) -> tuple[bool, OfficerInfo | None]:
    """Record an update as handled and look its sender up, in one transaction (the gate's only query).

    Returns (new, officer): `new` is False for a redelivered update; `officer` is the active officer
    with that Telegram id, or None.
    """
    with core.db.transaction() as s:
        conn = s.connection()  # every update passes here: one or two prebuilt plain statements
        recorded = conn.execute(_RECORD_UPDATE[conn.dialect.name], {"update_id": update_id, "at": core.clock.now()})
        if recorded.first() is None:
            return False, None
        if telegram_id is None:
            return True, None
        return True, active_info_by_telegram_id(conn, telegram_id)


def prune_processed_updates(core: Core, older_than: timedelta = timedelta(days=7)) -> int:
    """Forget handled update ids older than a week (Telegram keeps updates 24 hours at most)."""
    from sqlalchemy import delete

    with core.db.transaction() as s:
        result = s.execute(delete(ProcessedUpdate).where(ProcessedUpdate.at < core.clock.now() - older_than))
        return int(result.rowcount or 0)


def remember(core: Core, key: str, value: str) -> None:
    """Store a small installation fact (e.g. the bot's username)."""
    with core.db.transaction() as s:
        row = s.get(KeyValue, key)
        if row is None:
            s.add(KeyValue(key=key, value=value))
        else:
            row.value = value


def recall(core: Core, key: str) -> str | None:
    """Return a stored installation fact."""
    with core.db.session() as s:
        row = s.get(KeyValue, key)
        return row.value if row else None
