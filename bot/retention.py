"""Retention: remove message bodies older than LIAISON_RETENTION_DAYS, keep the audit events and hashes.

The audit chain refers to bodies only by their SHA-256, so purging a body leaves the chain verifiable and
an export still shows who sent what to whom, when, in which case and language — with the text marked as
purged. What counts as a body is every encrypted column with a `purge_after` age column (see
`bot.crypto.encrypted`) plus `BODY_COLUMNS` below for areas whose models list their encrypted columns
without ages. A nullable column is set to NULL; a NOT NULL one gets an encrypted empty text (so readers
keep working). The purge itself is an audit event.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update

from bot import audit
from bot.core import Core
from bot.crypto import EncryptedColumn
from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_
from bot.officers import OfficerInfo

logger = logging.getLogger(__name__)

#: rows purged per transaction
BATCH = 1_000


@dataclass(frozen=True)
class BodyColumn:
    """A column holding message bodies: purged when `age` is older than the retention period.

    `only_if_set` names a column that must be non-NULL for the row to be purged (e.g. a delivery's
    `finished_at`, so a copy still waiting to be sent keeps its text).
    """

    table: str
    column: str
    age: str
    only_if_set: str | None = None


#: the relay's bodies (texts, captions, media descriptions, translations, the copies' payloads);
#: room titles and meeting texts are not message bodies and stay.
BODY_COLUMNS: tuple[BodyColumn, ...] = (
    BodyColumn("messages", "body_enc", "created_at"),
    BodyColumn("messages", "media_enc", "created_at"),
    BodyColumn("message_versions", "body_enc", "created_at"),
    BodyColumn("message_translations", "text_enc", "created_at"),
    BodyColumn("deliveries", "payload_enc", "created_at", only_if_set="finished_at"),
)

ERR_NO_RETENTION = N_("No retention period is set (LIAISON_RETENTION_DAYS): bodies are kept forever.")


@dataclass
class PurgeReport:
    """What a purge removed (or would remove, for a dry run)."""

    cutoff: datetime
    days: int
    purged: Counter[str] = field(default_factory=Counter)
    dry_run: bool = False

    @property
    def total(self) -> int:
        """Return the number of values purged."""
        return sum(self.purged.values())


def body_columns() -> list[tuple[BodyColumn, EncryptedColumn]]:
    """Return the purgeable columns that exist in this installation's models, with their encryption info."""
    from bot.keys import all_encrypted_columns
    from bot.models import Base

    registered = {c.name: c for c in all_encrypted_columns()}
    found: dict[str, tuple[BodyColumn, EncryptedColumn]] = {}
    known = {f"{b.table}.{b.column}": b for b in BODY_COLUMNS}
    for col in registered.values():
        if col.purge_after:
            # The model's marker says by which age; a known body column adds its safety condition.
            extra = known[col.name].only_if_set if col.name in known else None
            found[col.name] = (BodyColumn(col.table, col.column, col.purge_after, extra), col)
    for body in BODY_COLUMNS:
        name = f"{body.table}.{body.column}"
        table = Base.metadata.tables.get(body.table)
        if name in found or table is None or body.column not in table.c or body.age not in table.c:
            continue
        found[name] = (
            body,
            registered.get(name)
            or EncryptedColumn(
                body.table, body.column, (), None, body.age, bool(table.c[body.column].nullable)
            ),
        )
    return [found[k] for k in sorted(found)]


def purge(
    core: Core,
    actor: OfficerInfo | None = None,
    *,
    days: int | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PurgeReport:
    """Remove bodies older than the retention period (the setting, or `days`); audited (not a dry run)."""
    if actor is not None and actor.role != "admin":
        raise NotAllowed()
    days = days if days is not None else core.settings.retention_days
    if days is None:
        raise InvalidInput(ERR_NO_RETENTION)
    if days < 1:
        raise InvalidInput(N_("The retention period must be at least one day."))
    cutoff = (now or core.clock.now()) - timedelta(days=days)
    report = PurgeReport(cutoff=cutoff, days=days, dry_run=dry_run)
    from bot.models import Base

    for body, enc in body_columns():
        table = Base.metadata.tables[body.table]
        target = table.c[body.column]
        conds = [table.c[body.age] < cutoff, target.is_not(None)]
        if body.only_if_set:
            conds.append(table.c[body.only_if_set].is_not(None))
        if not enc.nullable:
            # A NOT NULL column holds an encrypted empty text once purged: leave those alone.
            conds.append(func.length(target) > _empty_length(core, enc))
        if dry_run:
            with core.db.session() as s:
                count = int(s.execute(select(func.count()).select_from(table).where(*conds)).scalar() or 0)
        else:
            count = _purge_column(core, table, enc, conds)
        if count:
            report.purged[enc.name] = count
    if not dry_run:
        with core.db.transaction() as s:
            audit.record(
                s,
                "retention.purged",
                actor_id=actor.id if actor else None,
                at=core.clock.now(),
                data={
                    "days": days,
                    "cutoff": cutoff,
                    "purged": dict(report.purged),
                    "via": "telegram" if actor else "cli",
                },
            )
        logger.info("retention purge: %s bodies older than %s removed", report.total, cutoff.isoformat())
    return report


def _empty_length(core: Core, enc: EncryptedColumn) -> int:
    """Return the stored size of an encrypted empty text (what a purged NOT NULL value holds)."""
    return len(core.cipher.encrypt("", b""))


def _purge_column(core: Core, table: Any, enc: EncryptedColumn, conds: list[Any]) -> int:
    """Purge in batches of primary keys, each batch its own short transaction."""
    pk = [table.c[n] for n in (enc.pk or tuple(c.name for c in table.primary_key.columns))]
    extra = [table.c[n] for n in enc.aad_fields() if n not in {c.name for c in pk}]
    total = 0
    while True:
        with core.db.transaction() as s:
            rows = s.execute(select(*pk, *extra).where(*conds).order_by(*pk).limit(BATCH)).all()
            if not rows:
                return total
            for row in rows:
                key = and_(*(c == row._mapping[c.name] for c in pk))
                if enc.nullable:
                    value = None
                else:
                    value = core.cipher.encrypt("", enc.aad_for(row._mapping))
                s.execute(update(table).where(key).values({enc.column: value}))
            total += len(rows)


def scheduled_purge(core: Core) -> PurgeReport | None:
    """The daily job: purge when a retention period is set, else do nothing."""
    if core.settings.retention_days is None:
        return None
    return purge(core)
