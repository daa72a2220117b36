"""Data-key management: which keys the stored values use, rotation and re-encryption without downtime.

Rotation (`liaison keys rotate`, keyring-file installations):
1. a new key becomes the active one in the keyring file; the old keys stay in it for decryption;
   running bot processes notice the changed file within a second and encrypt with the new key;
2. every encrypted column (see `bot.crypto.encrypted_columns`) is re-encrypted in small batches, each
   its own short transaction, with a compare-and-set update so a value the bot changes meanwhile is not
   overwritten;
3. optionally (`--drop-old`) the old keys are removed from the file once a final scan finds no value
   that still uses them.
Each step is an audit event. With LIAISON_DATA_KEY the active key comes from the environment; see
`rotate` for the procedure there.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, and_, func, select, tuple_, update

from bot import audit
from bot.core import Core
from bot.crypto import (
    REFRESH_SECONDS,
    DataKeyError,
    EncryptedColumn,
    binary_columns,
    blob_key_id,
    encrypted_columns,
    key_id_of,
    keyring_path,
    read_keyring,
    write_keyring,
)
from bot.officers import OfficerInfo

logger = logging.getLogger(__name__)

#: rows re-encrypted per transaction (small, so the bot's own writes never wait long)
DEFAULT_BATCH = 500


class KeyRotationError(DataKeyError):
    """Rotation cannot go ahead as asked; the message says what to do instead."""


def all_encrypted_columns() -> list[EncryptedColumn]:
    """Return every encrypted column of every area: marked in the models or listed in ENCRYPTED_COLUMNS."""
    import bot.models as models
    from bot.models import Base

    listed: list[Any] = []
    for info in pkgutil.iter_modules(models.__path__):
        module = importlib.import_module(f"bot.models.{info.name}")
        listed.extend(getattr(module, "ENCRYPTED_COLUMNS", ()))
    return encrypted_columns(Base.metadata, listed)


def _table(name: str) -> Table:
    from bot.models import Base

    return Base.metadata.tables[name]


def _batches(core: Core, col: EncryptedColumn, size: int, work: Callable[[Any, Any], None]) -> None:
    """Walk a column's non-null values by primary key, `size` rows per transaction, calling work(s, rows)."""
    table = _table(col.table)
    pk = [table.c[name] for name in col.pk]
    extra = [table.c[name] for name in col.aad_fields() if name not in col.pk]
    last: tuple[Any, ...] | None = None
    while True:
        with core.db.transaction() as s:
            stmt = select(*pk, *extra, table.c[col.column]).where(table.c[col.column].is_not(None))
            if last is not None:
                stmt = stmt.where(tuple_(*pk) > tuple_(*last) if len(pk) > 1 else pk[0] > last[0])
            rows = s.execute(stmt.order_by(*pk).limit(size)).all()
            if not rows:
                return
            work(s, rows)
            last = tuple(rows[-1][: len(pk)])


@dataclass
class ReencryptReport:
    """What a re-encryption pass did."""

    active: str
    rewritten: Counter[str] = field(default_factory=Counter)
    already: Counter[str] = field(default_factory=Counter)
    #: changed by the bot between read and write (then already on the active key)
    raced: int = 0
    #: (column, primary key, reason) of values that could not be decrypted
    failures: list[tuple[str, str, str]] = field(default_factory=list)


def reencrypt(
    core: Core,
    *,
    batch: int = DEFAULT_BATCH,
    columns: list[EncryptedColumn] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> ReencryptReport:
    """Re-encrypt every value not on the active key; unreadable values are listed, never overwritten."""
    cipher = core.cipher
    cipher.refresh()
    report = ReencryptReport(active=cipher.active)
    for col in columns if columns is not None else all_encrypted_columns():
        table = _table(col.table)
        target = table.c[col.column]

        def work(
            s: Any, rows: list[Any], col: EncryptedColumn = col, table: Table = table, target: Any = target
        ) -> None:
            for row in rows:
                mapping = row._mapping
                blob = bytes(mapping[col.column])
                if blob_key_id(blob) == cipher.active:
                    report.already[col.name] += 1
                    continue
                aad = col.aad_for(mapping)
                key = {name: mapping[name] for name in col.pk}
                try:
                    plain = cipher.decrypt(blob, aad)
                except DataKeyError as exc:
                    report.failures.append((col.name, repr(key), str(exc)))
                    continue
                fresh = cipher.encrypt(plain, aad)
                cond = and_(*(table.c[name] == value for name, value in key.items()), target == blob)
                if s.execute(update(table).where(cond).values({col.column: fresh})).rowcount == 1:
                    report.rewritten[col.name] += 1
                else:
                    report.raced += 1
            if progress is not None:
                progress(col.name, report.rewritten[col.name])

        _batches(core, col, batch, work)
    return report


@dataclass
class KeyUsage:
    """How many stored values use each key, per column."""

    #: column name → key id → count ("?" = not in our format)
    by_column: dict[str, Counter[str]] = field(default_factory=dict)
    #: binary columns nobody registered as encrypted that nevertheless hold values in our format
    unregistered: dict[str, Counter[str]] = field(default_factory=dict)

    def totals(self) -> Counter[str]:
        """Return the count per key id over every column."""
        total: Counter[str] = Counter()
        for counts in (*self.by_column.values(), *self.unregistered.values()):
            total.update(counts)
        return total


def _prefix_counts(core: Core, table_name: str, column: str) -> Counter[str]:
    """Count a binary column's values by the key id in their first bytes, computed by the database."""
    table = _table(table_name)
    col = table.c[column]
    prefix = func.substr(col, 1, 14)
    counts: Counter[str] = Counter()
    with core.db.session() as s:
        for head, n in s.execute(select(prefix, func.count()).where(col.is_not(None)).group_by(prefix)):
            kid = blob_key_id(bytes(head) + bytes(28)) if head is not None else None
            counts[kid or "?"] += int(n)
    return counts


def usage(core: Core) -> KeyUsage:
    """Scan every encrypted (and every other binary) column and count values per key id."""
    result = KeyUsage()
    registered = all_encrypted_columns()
    names = {c.name for c in registered}
    for col in registered:
        result.by_column[col.name] = _prefix_counts(core, col.table, col.column)
    from bot.models import Base

    for table_name, column, _pk in binary_columns(Base.metadata):
        if f"{table_name}.{column}" in names:
            continue
        counts = _prefix_counts(core, table_name, column)
        counts.pop("?", None)
        if counts:
            result.unregistered[f"{table_name}.{column}"] = counts
    return result


@dataclass
class RotationReport:
    """What `rotate` (or `finish`) did."""

    old_active: str
    new_active: str
    reencrypted: ReencryptReport
    dropped: list[str] = field(default_factory=list)
    #: key id → why it was kept
    kept: dict[str, str] = field(default_factory=dict)


def _actor(actor: OfficerInfo | None) -> int | None:
    return actor.id if actor else None


def rotate(
    core: Core,
    *,
    drop_old: bool = False,
    batch: int = DEFAULT_BATCH,
    grace: float = 2 * REFRESH_SECONDS,
    progress: Callable[[str, int], None] | None = None,
) -> RotationReport:
    """Make a new key active, re-encrypt everything with it, and optionally drop the old keys.

    Only for installations whose keys live in the keyring file. With LIAISON_DATA_KEY the environment
    decides the active key, so: `liaison keys keep-env-key` (the current key goes into the keyring
    file, for decryption), restart the bot with a new LIAISON_DATA_KEY (`liaison keys new`), then
    `liaison keys reencrypt --drop-old`.
    """
    settings = core.settings
    if settings.data_key is not None:
        raise KeyRotationError(
            "LIAISON_DATA_KEY is set, so the environment decides the active key. To rotate: run "
            "`liaison keys keep-env-key`, restart the bot with a new LIAISON_DATA_KEY (make one with "
            "`liaison keys new`), then run `liaison keys reencrypt --drop-old`."
        )
    ring = read_keyring(settings)
    if ring is None:
        raise KeyRotationError(f"no keyring file at {keyring_path(settings)}")
    keys, old_active = ring
    key = secrets.token_bytes(32)
    new_active = key_id_of(key)
    write_keyring(keyring_path(settings), {**keys, new_active: key}, new_active)
    core.cipher.refresh(force=True)
    if core.cipher.active != new_active:  # pragma: no cover - the file was just written
        raise KeyRotationError("the new key did not become active")
    activated = time.monotonic()
    with core.db.transaction() as s:
        audit.record(
            s,
            "keys.rotated",
            at=core.clock.now(),
            data={
                "old_active": old_active,
                "new_active": new_active,
                "keys": sorted({*keys, new_active}),
                "via": "cli",
            },
        )
    logger.info("data key rotated: %s -> %s", old_active, new_active)
    return _finish(
        core,
        old_active,
        new_active,
        drop_old=drop_old,
        batch=batch,
        wait_until=activated + grace,
        progress=progress,
    )


def finish(
    core: Core,
    *,
    drop_old: bool = False,
    batch: int = DEFAULT_BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> RotationReport:
    """Re-encrypt what is not on the active key yet (an interrupted rotation, or after a new env key)."""
    core.cipher.refresh()
    return _finish(
        core,
        core.cipher.active,
        core.cipher.active,
        drop_old=drop_old,
        batch=batch,
        wait_until=time.monotonic(),
        progress=progress,
    )


def _finish(
    core: Core,
    old_active: str,
    new_active: str,
    *,
    drop_old: bool,
    batch: int,
    wait_until: float,
    progress: Callable[[str, int], None] | None,
) -> RotationReport:
    report = RotationReport(old_active, new_active, reencrypt(core, batch=batch, progress=progress))
    if drop_old:
        # Give running processes time to see the new key, then catch what they wrote meanwhile.
        delay = wait_until - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        late = reencrypt(core, batch=batch)
        report.reencrypted.rewritten.update(late.rewritten)
        # The late pass retried every value not on the active key: its failures are the current ones.
        report.reencrypted.failures = late.failures
        report.reencrypted.raced += late.raced
        report.dropped, report.kept = drop_unused(core)
    with core.db.transaction() as s:
        audit.record(
            s,
            "keys.reencrypted",
            at=core.clock.now(),
            data={
                "active": core.cipher.active,
                "rewritten": dict(report.reencrypted.rewritten),
                "failed": len(report.reencrypted.failures),
                "dropped": report.dropped,
                "kept": sorted(k for k in report.kept if k != core.cipher.active),
            },
        )
    return report


def drop_unused(core: Core) -> tuple[list[str], dict[str, str]]:
    """Remove from the keyring file every inactive key no stored value uses; return (dropped, kept)."""
    settings = core.settings
    ring = read_keyring(settings)
    if ring is None:
        return [], {}
    keys, file_active = ring
    active = core.cipher.active
    in_use = usage(core).totals()
    dropped, kept = [], {}
    for kid in sorted(keys):
        if kid == active or (settings.data_key is None and kid == file_active):
            kept[kid] = "active"
        elif in_use.get(kid):
            kept[kid] = f"{in_use[kid]} value(s) still use it"
        else:
            dropped.append(kid)
    if not dropped:
        return [], kept
    remaining = {k: v for k, v in keys.items() if k not in dropped}
    path = keyring_path(settings)
    if remaining:
        write_keyring(path, remaining, file_active if file_active in remaining else active)
    else:
        # LIAISON_DATA_KEY installation whose retired keys are all gone: no key stays on disk.
        path.unlink()
    core.cipher.refresh(force=True)
    logger.info("dropped data key(s) %s", ", ".join(dropped))
    return dropped, kept


def keep_env_key(core: Core) -> str:
    """Save LIAISON_DATA_KEY's key in the keyring file (owner-only) so it still decrypts after a change."""
    settings = core.settings
    if settings.data_key is None:
        raise KeyRotationError("LIAISON_DATA_KEY is not set; use `liaison keys rotate`")
    active = core.cipher.active
    ring = read_keyring(settings)
    keys = dict(ring[0]) if ring else {}
    keys[active] = core.cipher.keys[active]
    write_keyring(keyring_path(settings), keys, ring[1] if ring and ring[1] in keys else active)
    with core.db.transaction() as s:
        audit.record(s, "keys.env_key_kept", at=core.clock.now(), data={"key": active, "via": "cli"})
    return active


def check_keys(core: Core) -> None:
    """Refuse to run when stored values use keys this installation lacks (a clear error, not garbage).

    Looks at the first and the last value of each encrypted column: cheap enough for every start.
    """
    missing: dict[str, str] = {}
    for col in all_encrypted_columns():
        table = _table(col.table)
        target = table.c[col.column]
        pk = [table.c[n] for n in col.pk]
        extra = [table.c[n] for n in col.aad_fields() if n not in col.pk]
        with core.db.session() as s:
            for order in (pk, [p.desc() for p in pk]):
                row = s.execute(
                    select(*pk, *extra, target).where(target.is_not(None)).order_by(*order).limit(1)
                ).first()
                if row is None:
                    break
                blob = bytes(row._mapping[col.column])
                try:
                    core.cipher.decrypt(blob, col.aad_for(row._mapping))
                except DataKeyError as exc:
                    missing[col.name] = str(exc)
    if missing:
        name, reason = next(iter(missing.items()))
        raise DataKeyError(
            f"stored data cannot be decrypted with this installation's keys ({name}: {reason}); restore the "
            f"keyring file {keyring_path(core.settings)} or set LIAISON_DATA_KEY to the key the data was "
            "written with"
        )


def new_env_key() -> str:
    """Return a fresh key for LIAISON_DATA_KEY."""
    from bot.crypto import new_key_text

    return new_key_text()
