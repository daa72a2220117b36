"""Officers as the services see them: a detached snapshot, lookups and role checks."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.orm import Session

from bot.errors import NotAllowed, NotFound
from bot.i18n import N_
from bot.models import COUNTRY_FLAG, COUNTRY_TIMEZONE, Agency, Officer, OfficerStatus, Role


@dataclass(frozen=True, slots=True)
class OfficerInfo:
    """An officer's identity, role and preferences, usable outside a session."""

    id: int
    telegram_id: int
    username: str | None
    display_name: str
    role: str
    country: str | None
    agency_id: int | None
    agency_name: str | None
    language: str
    timezone: str
    active: bool

    @property
    def flag(self) -> str:
        """Return the country's flag emoji (empty for officers without a country)."""
        return COUNTRY_FLAG.get(self.country or "", "")

    @property
    def tz(self) -> ZoneInfo:
        """Return the officer's time zone."""
        return ZoneInfo(self.timezone)

    def is_(self, *roles: str) -> bool:
        """Return whether the officer has one of the roles."""
        return self.role in roles


def officer_info(officer: Officer) -> OfficerInfo:
    """Snapshot an `Officer` row."""
    return OfficerInfo(
        id=officer.id,
        telegram_id=officer.telegram_id,
        username=officer.username,
        display_name=officer.display_name,
        role=officer.role,
        country=officer.country,
        agency_id=officer.agency_id,
        agency_name=officer.agency.name if officer.agency else None,
        language=officer.language,
        timezone=officer.timezone or COUNTRY_TIMEZONE.get(officer.country or "", "UTC"),
        active=officer.status == OfficerStatus.ACTIVE,
    )


_OFFICERS = Officer.__table__
_AGENCIES = Agency.__table__
#: the gate's lookup for every update, built once: the active officer with a Telegram id, and their agency
_ACTIVE_INFO = (
    select(_OFFICERS.c.id, _OFFICERS.c.telegram_id, _OFFICERS.c.username, _OFFICERS.c.display_name, _OFFICERS.c.role,
           _OFFICERS.c.country, _OFFICERS.c.agency_id, _AGENCIES.c.name, _OFFICERS.c.language, _OFFICERS.c.timezone)
    .outerjoin(_AGENCIES, _AGENCIES.c.id == _OFFICERS.c.agency_id)
    .where(_OFFICERS.c.telegram_id == bindparam("telegram_id"), _OFFICERS.c.status == OfficerStatus.ACTIVE)
)


def active_info_by_telegram_id(connection: Connection, telegram_id: int) -> OfficerInfo | None:
    """Return a snapshot of the active officer with this Telegram id, or None (one plain statement)."""
    row = connection.execute(_ACTIVE_INFO, {"telegram_id": telegram_id}).first()
    if row is None:
        return None
    (officer_id, tg_id, username, display_name, role, country, agency_id, agency_name, language, timezone) = row
    return OfficerInfo(id=officer_id, telegram_id=tg_id, username=username, display_name=display_name, role=role,
                       country=country, agency_id=agency_id, agency_name=agency_name, language=language,
                       timezone=timezone or COUNTRY_TIMEZONE.get(country or "", "UTC"), active=True)


def active_by_telegram_id(session: Session, telegram_id: int) -> Officer | None:
    """Return the active officer with this Telegram id, or None (strangers and revoked officers)."""
    return session.execute(
        select(Officer).where(Officer.telegram_id == telegram_id, Officer.status == OfficerStatus.ACTIVE)
    ).scalar_one_or_none()


def find_officer(session: Session, ref: str | int) -> Officer:
    """Find an officer by '@username', Telegram id or 'id:N'; raise NotFound otherwise."""
    ref_text = str(ref).strip()
    officer: Officer | None = None
    if ref_text.startswith("@") and len(ref_text) > 1:
        officer = session.execute(
            select(Officer).where(func.lower(Officer.username) == ref_text[1:].lower())
        ).scalar_one_or_none()
    elif ref_text.lower().startswith("id:") and ref_text[3:].isdigit():
        officer = session.get(Officer, int(ref_text[3:]))
    elif ref_text.lstrip("-").isdigit():
        officer = session.execute(
            select(Officer).where(Officer.telegram_id == int(ref_text))
        ).scalar_one_or_none()
    if officer is None:
        raise NotFound(N_("No officer {ref} is registered."), ref=ref_text)
    return officer


def require_role(actor: OfficerInfo | None, *roles: str) -> None:
    """Raise NotAllowed unless the actor (None = the server's CLI, trusted) has one of the roles."""
    if actor is None:
        return
    if not actor.active or actor.role not in roles:
        raise NotAllowed()


ALL_ROLES = tuple(r.value for r in Role)
STAFF_ROLES = (Role.COORDINATOR.value, Role.ADMIN.value)
