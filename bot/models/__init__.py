"""All tables; importing this package registers every model on `Base.metadata`."""

from bot.models import audit, broadcasts, meetings, relay  # noqa: F401  (registers the areas' tables)
from bot.models.base import Base, UtcDateTime
from bot.models.core import (
    COUNTRY_FLAG,
    COUNTRY_LANGUAGE,
    COUNTRY_TIMEZONE,
    AccessAttempt,
    Agency,
    AuditEvent,
    AuditHead,
    Country,
    InboxUpdate,
    Invite,
    KeyValue,
    Officer,
    OfficerStatus,
    ProcessedUpdate,
    Role,
)

__all__ = [
    "COUNTRY_FLAG",
    "COUNTRY_LANGUAGE",
    "COUNTRY_TIMEZONE",
    "AccessAttempt",
    "Agency",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Country",
    "InboxUpdate",
    "Invite",
    "KeyValue",
    "Officer",
    "OfficerStatus",
    "ProcessedUpdate",
    "Role",
    "UtcDateTime",
]
