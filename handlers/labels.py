"""Localized names of roles, countries and languages, and local-time formatting for people."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.i18n import N_, Texts

ROLE_NAMES = {
    "officer": N_("officer"),
    "coordinator": N_("coordinator"),
    "auditor": N_("auditor"),
    "admin": N_("administrator"),
}
COUNTRY_NAMES = {"CN": N_("China"), "LA": N_("Lao PDR"), "VN": N_("Viet Nam")}
#: each language named in itself, as language pickers do
LANGUAGE_NAMES = {"zh": "中文", "lo": "ລາວ", "vi": "Tiếng Việt", "en": "English"}


def role_name(texts: Texts, role: str) -> str:
    """Return a role's localized name."""
    return texts.plain(ROLE_NAMES.get(role, role))


def country_name(texts: Texts, country: str | None) -> str:
    """Return a country's localized name ('—' for none)."""
    return texts.plain(COUNTRY_NAMES[country]) if country in COUNTRY_NAMES else "—"


def local_time(when: datetime, tz: str) -> str:
    """Return a time in the reader's time zone, with its UTC offset (e.g. 2026-08-30 09:00 UTC+07:00)."""
    local = when.astimezone(ZoneInfo(tz))
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} UTC{offset[:3]}:{offset[3:]}"
