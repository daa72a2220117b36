"""Signed export bundles of the audit trail and of the conversations, and their verification.

A bundle is a ZIP file:
- `messages.csv`: UTF-8 with BOM (so spreadsheet programs show Chinese and Lao), one row per delivery
  (a message without deliveries has one row without recipient);
- `messages.jsonl`: the same rows, structured, with the exact texts;
- `events.jsonl`: the audit events in range, each with its hash and the hash before it;
- `README.txt`: how to check the bundle;
- `manifest.json`: SHA-256 and size of each file, the chain hashes at both ends of the range, the
  chain head, who exported, when, with which filter;
- `manifest.sig`: Ed25519 signature of manifest.json by the installation's key
  (`liaison keys show-public` prints the public key for auditors to pin).

Everything streams: rows come from server-side cursors, files are written to a private temporary folder
while being hashed, then stored in the ZIP; memory does not grow with the export's size.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, case, func, or_, select, type_coerce
from sqlalchemy.types import NullType

from bot import __version__, audit
from bot.core import Core
from bot.crypto import (
    DataKeyError,
    EncryptedColumn,
    load_signing_key,
    public_key_fingerprint,
    public_key_text,
    sign,
    verify_signature,
)
from bot.errors import InvalidInput, LiaisonError, NotAllowed, NotFound
from bot.i18n import N_
from bot.models import Agency, AuditEvent, AuditHead, Officer, Role
from bot.officers import OfficerInfo, find_officer

logger = logging.getLogger(__name__)

FORMAT = "liaison-audit-export/1"
#: who may export (checked here, in the service)
EXPORT_ROLES = (Role.AUDITOR.value, Role.ADMIN.value)
#: delivery kinds that carry relayed messages
RELAY_KINDS = ("relay",)
ROW_BATCH = 2_000

CSV_COLUMNS = (
    "time_utc",
    "sender_local_time",
    "case",
    "message_id",
    "version",
    "kind",
    "sender",
    "sender_agency",
    "sender_country",
    "recipient",
    "recipient_agency",
    "recipient_country",
    "original_language",
    "original_text",
    "delivered_language",
    "delivered_text",
    "engine",
    "model",
    "status",
    "delivery_id",
    "operation",
    "delivered_at_utc",
    "telegram_message_id",
    "original_sha256",
    "delivered_sha256",
    "attachment_sha256",
    "notes",
)
BUNDLE_FILES = ("messages.csv", "messages.jsonl", "events.jsonl", "README.txt")

USAGE = N_(
    "Usage: /export CASE-TAG, or /export FROM TO with dates like 2026-08-01 2026-08-31 (your time zone), "
    "or both: /export CASE-TAG FROM TO."
)
ERR_NOT_ALLOWED = N_("Only auditors and administrators can export the audit log.")
ERR_BAD_DATE = N_("Cannot read the date {value}: use the form 2026-08-31.")
ERR_BAD_RANGE = N_("The end date {until} is before the start date {since}.")
ERR_UNKNOWN_CASE = N_("No case {case} is known.")
ERR_FAILED = N_("The export could not be made; the error has been logged for the administrator.")

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_EMPTY_HASH = hashlib.sha256(b"").hexdigest()


# ---------------------------------------------------------------------------------------------------
# Filters


@dataclass(frozen=True)
class ExportFilter:
    """What to export: any combination of a case, a period (UTC, `until` exclusive) and an officer."""

    case_tag: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: '@username', Telegram id or 'id:N'
    officer: str | None = None
    #: how the period was typed (dates in which time zone), for the manifest
    typed: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Return the filter as the manifest and the audit event record it."""
        return {
            "case": self.case_tag,
            "since_utc": audit.format_time(self.since) if self.since else None,
            "until_utc": audit.format_time(self.until) if self.until else None,
            "officer": self.officer,
            "typed": dict(self.typed) or None,
        }


def parse_when(text: str, tz: str = "UTC", *, end: bool = False) -> datetime:
    """Read '2026-08-01' (a day in `tz`; with `end`, the moment the day is over) or an ISO date-time."""
    value = text.strip()
    try:
        if _DATE_RE.match(value):
            day = date.fromisoformat(value)
            if end:
                day += timedelta(days=1)
            return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(ERR_BAD_DATE, value=text) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.astimezone(UTC)


def make_filter(
    *,
    case_tag: str | None = None,
    since: str | None = None,
    until: str | None = None,
    officer: str | None = None,
    tz: str = "UTC",
) -> ExportFilter:
    """Build a filter from typed values; a date-only `until` includes that whole day."""
    if case_tag is not None and not _CASE_RE.match(case_tag):
        raise InvalidInput(ERR_UNKNOWN_CASE, case=case_tag)
    start = parse_when(since, tz) if since else None
    stop = parse_when(until, tz, end=True) if until else None
    if start and stop and stop <= start:
        raise InvalidInput(ERR_BAD_RANGE, since=since, until=until)
    typed = {k: v for k, v in (("since", since), ("until", until)) if v}
    if typed:
        typed["time_zone"] = tz
    return ExportFilter(case_tag, start, stop, officer, typed)


def parse_command_args(args: list[str], tz: str) -> ExportFilter:
    """Read `/export CASE-TAG`, `/export FROM TO` or both (the dates are days in the officer's time zone)."""
    dates = [a for a in args if _DATE_RE.match(a)]
    others = [a for a in args if not _DATE_RE.match(a)]
    if not args or len(others) > 1 or len(dates) not in (0, 2):
        raise InvalidInput(USAGE)
    return make_filter(
        case_tag=others[0] if others else None,
        since=dates[0] if dates else None,
        until=dates[1] if dates else None,
        tz=tz,
    )


# ---------------------------------------------------------------------------------------------------
# Writing files while hashing them


class _HashingWriter(io.RawIOBase):
    """A binary file that hashes (SHA-256) and counts what is written to it."""

    def __init__(self, fh: IO[bytes]) -> None:
        super().__init__()
        self._fh = fh
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.size += view.nbytes
        self._fh.write(view)
        return view.nbytes


@dataclass
class _OutFile:
    """One file of the bundle being written in the private temporary folder."""

    name: str
    path: Path
    raw: IO[bytes]
    hasher: _HashingWriter
    text: io.TextIOWrapper
    rows: int = 0

    @classmethod
    def open(cls, folder: Path, name: str) -> _OutFile:
        """Create the file (owner-only) with a UTF-8 text layer over the hashing layer."""
        path = folder / name
        raw = open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")  # noqa: SIM115
        hasher = _HashingWriter(raw)
        text = io.TextIOWrapper(io.BufferedWriter(hasher, 1 << 16), encoding="utf-8", newline="")  # type: ignore[arg-type]
        return cls(name, path, raw, hasher, text)

    def close(self) -> dict[str, Any]:
        """Flush and close; return the manifest entry."""
        self.text.flush()
        self.text.detach().flush()
        self.raw.close()
        return {"sha256": self.hasher.sha.hexdigest(), "bytes": self.hasher.size, "rows": self.rows}


def _json_line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"


#: a CSV cell starting with one of these gets a leading ' so spreadsheet programs do not run it as a formula
FORMULA_START = "=+-@\t\r"


def csv_cells(item: dict[str, Any]) -> list[Any]:
    """Return a row's CSV cells in column order, formulas neutralized."""
    return [
        "'" + v if v.__class__ is str and v and v[0] in FORMULA_START else v
        for v in map(item.__getitem__, CSV_COLUMNS)
    ]


# ---------------------------------------------------------------------------------------------------
# The query layer over the relay tables


def _utc(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _local(value: datetime | None, tz: str | None) -> str | None:
    if value is None:
        return None
    try:
        zone = ZoneInfo(tz or "UTC")
    except (ValueError, KeyError):
        zone = ZoneInfo("UTC")
    return value.astimezone(zone).isoformat(timespec="seconds")


def _person(name: str | None, username: str | None) -> str | None:
    if name is None:
        return None
    return f"{name} (@{username})" if username else name


@dataclass
class _Decryptor:
    """Decrypts the relay's values through the encrypted-column registry, remembering failures."""

    core: Core
    columns: dict[str, EncryptedColumn]
    unreadable: int = 0

    def text(self, column: str, blob: bytes | None, row: dict[str, Any]) -> tuple[str | None, str | None]:
        """Return (plaintext, problem); (None, None) for a value that is not stored (purged)."""
        if blob is None:
            return None, None
        col = self.columns.get(column)
        try:
            aad = col.aad_for(row) if col else b""
            return self.core.cipher.decrypt(bytes(blob), aad), None
        except DataKeyError as exc:
            self.unreadable += 1
            return None, f"unreadable {column}: {exc}"


def _message_statement(flt: ExportFilter, officer_id: int | None) -> Any:
    """Return the SELECT of one row per delivery of a relayed message (outer-joined), in message order."""
    from bot.models.relay import Delivery, Message, MessageTranslation, MessageVersion

    m, d = Message.__table__, Delivery.__table__

    def raw(col: Any) -> Any:
        # Times come as the driver gives them (no per-value type processing); `_as_utc` reads them.
        return type_coerce(col, NullType())

    sender, recipient = Officer.__table__.alias("s"), Officer.__table__.alias("r")
    sag, rag = Agency.__table__.alias("sa"), Agency.__table__.alias("ra")
    t2, v2 = MessageTranslation.__table__.alias("t2"), MessageVersion.__table__.alias("v2")
    # Which version of the message a copy carried: the translation whose hash the delivery recorded,
    # else the newest version that existed when the copy was queued.
    by_hash = (
        select(func.max(t2.c.version))
        .where(t2.c.message_id == m.c.id, t2.c.lang == d.c.lang, t2.c.text_hash == d.c.body_hash)
        .scalar_subquery()
    )
    by_time = (
        select(func.max(v2.c.version))
        .where(v2.c.message_id == m.c.id, v2.c.created_at <= d.c.created_at)
        .scalar_subquery()
    )
    version = case((d.c.id.is_(None), m.c.version), else_=func.coalesce(by_hash, by_time, 1))
    conds = []
    if flt.case_tag is not None:
        conds.append(m.c.case_tag == flt.case_tag)
    if flt.since is not None:
        conds.append(m.c.created_at >= flt.since)
    if flt.until is not None:
        conds.append(m.c.created_at < flt.until)
    if officer_id is not None:
        conds.append(or_(m.c.sender_id == officer_id, d.c.recipient_id == officer_id))
    base = (
        select(
            m.c.id.label("message_id"),
            m.c.case_tag,
            m.c.kind,
            m.c.source_lang,
            raw(m.c.created_at).label("created_at"),
            raw(m.c.retracted_at).label("retracted_at"),
            m.c.file_sha256,
            m.c.media_enc,
            m.c.version.label("versions"),
            m.c.body_enc.label("current_enc"),
            m.c.body_hash.label("current_hash"),
            sender.c.display_name.label("s_name"),
            sender.c.username.label("s_user"),
            sender.c.country.label("s_country"),
            sender.c.timezone.label("s_tz"),
            sag.c.name.label("s_agency"),
            d.c.id.label("delivery_id"),
            d.c.op,
            d.c.lang.label("d_lang"),
            d.c.body_hash.label("d_hash"),
            d.c.status,
            raw(d.c.finished_at).label("finished_at"),
            d.c.telegram_message_id,
            d.c.reason,
            recipient.c.display_name.label("r_name"),
            recipient.c.username.label("r_user"),
            recipient.c.country.label("r_country"),
            rag.c.name.label("r_agency"),
            version.label("ver"),
        )
        .select_from(
            m.join(sender, sender.c.id == m.c.sender_id)
            .outerjoin(sag, sag.c.id == sender.c.agency_id)
            .outerjoin(d, and_(d.c.ref_id == m.c.id, d.c.kind.in_(RELAY_KINDS)))
            .outerjoin(recipient, recipient.c.id == d.c.recipient_id)
            .outerjoin(rag, rag.c.id == recipient.c.agency_id)
        )
        .where(*conds)
        # A fence (OFFSET 0): the version is worked out once per row, not again in each join below.
        .offset(0)
        .subquery("b")
    )
    v, t = MessageVersion.__table__.alias("v"), MessageTranslation.__table__.alias("t")
    return (
        select(
            base,
            v.c.body_enc.label("orig_enc"),
            v.c.body_hash.label("orig_hash"),
            v.c.source_lang.label("orig_lang"),
            t.c.text_enc,
            t.c.text_hash,
            t.c.engine,
            t.c.model,
            t.c.translated,
            t.c.failure,
        )
        .select_from(
            base.outerjoin(v, and_(v.c.message_id == base.c.message_id, v.c.version == base.c.ver)).outerjoin(
                t,
                and_(
                    t.c.message_id == base.c.message_id, t.c.version == base.c.ver, t.c.lang == base.c.d_lang
                ),
            )
        )
        .order_by(base.c.message_id, base.c.delivery_id)
    )


def _as_utc(value: Any) -> datetime | None:
    """Return a stored time as an aware UTC datetime (SQLite gives text, PostgreSQL a datetime)."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


def message_rows(
    conn: Connection, core: Core, flt: ExportFilter, officer_id: int | None, decryptor: _Decryptor
) -> Iterator[dict[str, Any]]:
    """Yield one structured row per delivery (the messages.jsonl objects), streaming from the database."""
    result = conn.execution_options(stream_results=True, yield_per=ROW_BATCH).execute(
        _message_statement(flt, officer_id)
    )
    ix = {name: i for i, name in enumerate(result.keys())}
    (MID, VER, ORIG_ENC, ORIG_HASH, CUR_ENC, CUR_HASH, MEDIA, DID, TEXT_ENC, D_LANG, TEXT_HASH) = (
        ix[k]
        for k in (
            "message_id",
            "ver",
            "orig_enc",
            "orig_hash",
            "current_enc",
            "current_hash",
            "media_enc",
            "delivery_id",
            "text_enc",
            "d_lang",
            "text_hash",
        )
    )
    cache: dict[Any, Any] = {}
    current = None
    head: dict[str, Any] = {}
    for row in itertools.chain.from_iterable(audit.prefetched(result.partitions())):
        mid = row[MID]
        if mid != current:
            # What every row of one message shares is computed once.
            cache.clear()
            current = mid
            created = _as_utc(row[ix["created_at"]])
            retracted = _as_utc(row[ix["retracted_at"]])
            media_text, problem_m = decryptor.text("messages.media_enc", row[MEDIA], {"id": mid})
            media: Any = None
            if media_text is not None:
                try:
                    media = json.loads(media_text)
                except ValueError:
                    media = media_text
            head = {
                "time_utc": _utc(created),
                "sender_local_time": _local(created, row[ix["s_tz"]] or _country_tz(row[ix["s_country"]])),
                "case": row[ix["case_tag"]],
                "kind": row[ix["kind"]],
                "sender": _person(row[ix["s_name"]], row[ix["s_user"]]),
                "sender_agency": row[ix["s_agency"]],
                "sender_country": row[ix["s_country"]],
                "attachment_sha256": row[ix["file_sha256"]],
                "media": media,
                "_notes": [p for p in (problem_m,) if p]
                + ([f"retracted {_utc(retracted)}"] if retracted else [])
                + ([f"edited: {row[ix['versions']]} versions"] if (row[ix["versions"]] or 1) > 1 else []),
                "_source_lang": row[ix["source_lang"]],
            }
        ver = row[VER]
        okey = ("o", ver)
        if okey not in cache:
            if row[ORIG_ENC] is not None or row[ORIG_HASH] is not None:
                cache[okey] = decryptor.text(
                    "message_versions.body_enc", row[ORIG_ENC], {"message_id": mid, "version": ver}
                )
            else:
                cache[okey] = decryptor.text("messages.body_enc", row[CUR_ENC], {"id": mid})
        original, problem_o = cache[okey]
        orig_hash = row[ORIG_HASH] if row[ORIG_HASH] is not None else row[CUR_HASH]
        orig_lang = row[ix["orig_lang"]] or head["_source_lang"]
        delivery_id, d_lang = row[DID], row[D_LANG]
        delivered, problem_d, delivered_hash = None, None, row[TEXT_HASH]
        engine, model = row[ix["engine"]], row[ix["model"]]
        op = row[ix["op"]]
        if op == "delete":
            # A retraction removes a copy: it carries no text.
            delivered_hash = engine = model = None
        elif delivery_id is not None and row[TEXT_ENC] is not None:
            tkey = ("t", ver, d_lang)
            if tkey not in cache:
                cache[tkey] = decryptor.text(
                    "message_translations.text_enc",
                    row[TEXT_ENC],
                    {"message_id": mid, "version": ver, "lang": d_lang},
                )
            delivered, problem_d = cache[tkey]
        elif delivery_id is not None and d_lang == orig_lang:
            delivered, delivered_hash, engine, model = original, orig_hash, "none", ""
        # A purged NOT NULL value holds an encrypted empty text; its recorded hash tells them apart.
        if original == "" and orig_hash and orig_hash != _EMPTY_HASH:
            original = None
        if delivered == "" and delivered_hash and delivered_hash != _EMPTY_HASH:
            delivered = None
        notes = [p for p in (problem_o, problem_d) if p]
        if original is None and orig_hash and not problem_o:
            notes.append("original text purged under the retention policy (its hash remains)")
        if delivery_id is not None and delivered is None and delivered_hash and not problem_d:
            notes.append("delivered text purged under the retention policy (its hash remains)")
        if op == "delete":
            notes.append("this operation deleted the recipient's copy")
        notes += head["_notes"]
        failure = row[ix["failure"]]
        if delivery_id is not None and failure:
            notes.append(f"translation failed: {failure}")
        status = row[ix["status"]]
        yield {
            "time_utc": head["time_utc"],
            "sender_local_time": head["sender_local_time"],
            "case": head["case"],
            "message_id": mid,
            "version": ver,
            "kind": head["kind"],
            "sender": head["sender"],
            "sender_agency": head["sender_agency"],
            "sender_country": head["sender_country"],
            "recipient": _person(row[ix["r_name"]], row[ix["r_user"]]),
            "recipient_agency": row[ix["r_agency"]],
            "recipient_country": row[ix["r_country"]],
            "original_language": orig_lang,
            "original_text": original,
            "delivered_language": d_lang,
            "delivered_text": delivered,
            "engine": engine,
            "model": model,
            "status": status,
            "delivery_id": delivery_id,
            "operation": op,
            "delivered_at_utc": _utc(_as_utc(row[ix["finished_at"]])) if status == "sent" else None,
            "telegram_message_id": row[ix["telegram_message_id"]],
            "original_sha256": orig_hash,
            "delivered_sha256": delivered_hash,
            "attachment_sha256": head["attachment_sha256"],
            "notes": "; ".join(notes) or None,
            "media": head["media"],
            "failure_reason": row[ix["reason"]],
        }


def _country_tz(country: str | None) -> str:
    from bot.models import COUNTRY_TIMEZONE

    return COUNTRY_TIMEZONE.get(country or "", "UTC")


# ---------------------------------------------------------------------------------------------------
# Making a bundle


@dataclass(frozen=True)
class ExportResult:
    """A finished bundle."""

    path: Path
    export_id: int
    manifest_sha256: str
    events: int
    rows: int
    messages: int
    first_seq: int | None
    last_seq: int | None
    fingerprint: str
    size: int
    unreadable: int
    #: hashes or links of exported events that do not check out (run `liaison audit verify`)
    chain_problems: tuple[str, ...] = ()


README = """Liaison audit export
====================

manifest.json lists every file of this bundle with its SHA-256 and size, the audit events' hashes at
both ends of the range, the chain head when the bundle was made, who made it, when, and the filter.
manifest.sig is the Ed25519 signature (base64) of manifest.json's exact bytes by the installation key
whose public key is in manifest.json ("installation"). Compare that key with the one the server
prints with `liaison keys show-public` (pin it once), then check the bundle with:

    liaison audit verify-export THIS.zip --public-key KEY

or by hand: verify the signature, compare each file's SHA-256, and for every line of events.jsonl
check hash = SHA-256(bytes.fromhex(prev_hash) + content), where content is the UTF-8 of the compact,
key-sorted JSON {"actor","at","case","data","kind","seq"} ("data" is the JSON text as stored), and
that each event's prev_hash is the hash of the event before it (gaps, where events outside the filter
were left out, are listed in the manifest).

messages.csv is UTF-8 with a byte-order mark, one row per delivery. A text cell starting with = + - @
gets a leading ' so that spreadsheet programs do not run it as a formula; messages.jsonl holds the
exact texts. original_sha256 / delivered_sha256 are the hashes by which the audit events refer to the
texts; a text purged under the retention policy is empty while its hash remains.
"""


def authorize(
    core: Core, actor: OfficerInfo | None, *, via: str = "telegram", flt: ExportFilter | None = None
) -> None:
    """Raise NotAllowed (and record the refusal) unless the actor may export; None = the server's CLI."""
    _authorize(core, actor, flt or ExportFilter(), via)


def telegram_limit(core: Core) -> int:
    """Return the largest file the bot may send: 50 MB through Telegram, 2000 MB via a self-hosted Bot API."""
    from bot.config import DEFAULT_API_URL

    return (50 if core.settings.telegram_api_url == DEFAULT_API_URL else 2000) * 1024 * 1024


def _authorize(core: Core, actor: OfficerInfo | None, flt: ExportFilter, via: str) -> None:
    """Only auditors and admins export; a refusal is itself an audit event."""
    if actor is None or (actor.active and actor.role in EXPORT_ROLES):
        return
    with core.db.transaction() as s:
        audit.record(
            s,
            "export.refused",
            actor_id=actor.id,
            case_tag=flt.case_tag,
            at=core.clock.now(),
            data={"role": actor.role, "filter": flt.describe(), "via": via},
        )
    logger.warning("export refused for officer %s (role %s)", actor.id, actor.role)
    raise NotAllowed(ERR_NOT_ALLOWED)


def _record_failure(core: Core, actor: OfficerInfo | None, flt: ExportFilter, via: str, reason: str) -> None:
    with core.db.transaction() as s:
        audit.record(
            s,
            "export.failed",
            actor_id=actor.id if actor else None,
            case_tag=flt.case_tag,
            at=core.clock.now(),
            data={"filter": flt.describe(), "via": via, "reason": reason},
        )


def export_bundle(
    core: Core,
    actor: OfficerInfo | None,
    flt: ExportFilter,
    out: Path,
    *,
    via: str = "cli",
    purpose: str | None = None,
) -> ExportResult:
    """Write a signed bundle to `out` (actor None = the server's CLI); refused unless auditor or admin."""
    _authorize(core, actor, flt, via)
    try:
        return _export(core, actor, flt, Path(out), via, purpose)
    except LiaisonError as exc:
        _record_failure(core, actor, flt, via, exc.english())
        raise
    except Exception as exc:
        logger.exception("export failed")
        _record_failure(core, actor, flt, via, type(exc).__name__)
        raise LiaisonError(ERR_FAILED) from exc


def _resolve_officer(core: Core, flt: ExportFilter) -> int | None:
    if flt.officer is None:
        return None
    with core.db.session() as s:
        return find_officer(s, flt.officer).id


def _check_case(conn: Connection, flt: ExportFilter) -> None:
    if flt.case_tag is None:
        return
    from bot.models.relay import Room

    known = (
        conn.execute(select(Room.id).where(Room.case_tag == flt.case_tag).limit(1)).first()
        or conn.execute(select(AuditEvent.seq).where(AuditEvent.case_tag == flt.case_tag).limit(1)).first()
    )
    if not known:
        raise NotFound(ERR_UNKNOWN_CASE, case=flt.case_tag)


def _exporter(actor: OfficerInfo | None, via: str) -> dict[str, Any]:
    if actor is None:
        return {"via": via, "officer": None, "os_user": _os_user()}
    return {
        "via": via,
        "officer": {
            "id": actor.id,
            "name": actor.display_name,
            "username": actor.username,
            "role": actor.role,
            "country": actor.country,
            "agency": actor.agency_name,
        },
    }


def _os_user() -> str | None:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return None


def _write_events(
    conn: Connection, flt: ExportFilter, officer_id: int | None, out: _OutFile
) -> dict[str, Any]:
    """Write events.jsonl; return the manifest's events section (ends, gaps, self-check)."""
    eflt = audit.EventFilter(case_tag=flt.case_tag, since=flt.since, until=flt.until, actor_id=officer_id)
    first: Any = None
    last: Any = None
    gaps: list[list[int]] = []
    problems: list[str] = []
    write = out.text.write
    for rows in audit.prefetched(audit.raw_event_batches(conn, eflt, batch=ROW_BATCH)):
        for row in rows:
            seq, at, kind, actor, case_tag, data, prev_hash, digest = row
            if first is None:
                first = row
            elif seq != last[0] + 1:
                gaps.append([last[0], seq])
            elif prev_hash != last[7] and len(problems) < 10:
                problems.append(f"event {seq} does not link to event {last[0]}")
            if audit.chain_hash(prev_hash, audit.raw_content(row)) != digest and len(problems) < 10:
                problems.append(f"event {seq}: stored hash does not match its content")
            write(
                _json_line(
                    {
                        "seq": seq,
                        "at": audit.at_text(at),
                        "kind": kind,
                        "actor": actor,
                        "case": case_tag,
                        "data": data,
                        "prev_hash": prev_hash,
                        "hash": digest,
                    }
                )
            )
            out.rows += 1
            last = row
    return {
        "count": out.rows,
        "first": {"seq": first[0], "prev_hash": first[6]} if first else None,
        "last": {"seq": last[0], "hash": last[7]} if last else None,
        "gaps": gaps,
        "contiguous": not gaps,
        "problems": problems,
    }


def _export(
    core: Core, actor: OfficerInfo | None, flt: ExportFilter, out: Path, via: str, purpose: str | None
) -> ExportResult:
    from bot.keys import all_encrypted_columns

    officer_id = _resolve_officer(core, flt)
    key = load_signing_key(core.settings)
    public = public_key_text(key)
    started = core.clock.now()
    scratch_root = core.settings.data_dir / "tmp"
    scratch_root.mkdir(parents=True, exist_ok=True)
    os.chmod(scratch_root, 0o700)
    scratch = Path(tempfile.mkdtemp(prefix="export-", dir=scratch_root))
    decryptor = _Decryptor(core, {c.name: c for c in all_encrypted_columns()})
    try:
        with audit.read_snapshot(core.db) as conn:
            _check_case(conn, flt)
            head = conn.execute(select(AuditHead.seq, AuditHead.hash)).first()
            files = {name: _OutFile.open(scratch, name) for name in BUNDLE_FILES}
            csv_out, jsonl_out = files["messages.csv"], files["messages.jsonl"]
            csv_out.text.write("\ufeff")
            writer = csv.writer(csv_out.text, lineterminator="\r\n")
            writer.writerow(CSV_COLUMNS)
            message_ids: set[int] = set()
            # One encoder for every line (json.dumps with options builds a new one per call).
            encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
            write_row, write_json = writer.writerow, jsonl_out.text.write
            rows = 0
            for item in message_rows(conn, core, flt, officer_id, decryptor):
                write_row(csv_cells(item))
                write_json(encode(item) + "\n")
                message_ids.add(item["message_id"])
                rows += 1
            csv_out.rows = jsonl_out.rows = rows
            events = _write_events(conn, flt, officer_id, files["events.jsonl"])
            files["README.txt"].text.write(README)
            entries = {name: f.close() for name, f in files.items()}
        chain_head = {"seq": int(head[0]), "hash": str(head[1])} if head else None
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "generator": f"liaison {__version__}",
            "installation": {
                "public_key": public,
                "fingerprint": public_key_fingerprint(public),
                "algorithm": "Ed25519",
            },
            "exported_at": audit.format_time(started),
            "exported_by": _exporter(actor, via),
            "purpose": purpose,
            "filter": flt.describe(),
            "files": entries,
            "messages": {
                "rows": entries["messages.csv"]["rows"],
                "messages": len(message_ids),
                "unreadable_values": decryptor.unreadable,
            },
            "events": events,
            "chain_head": chain_head,
            "hash_rule": "hash = SHA-256(prev_hash bytes || UTF-8 of compact key-sorted JSON "
            '{"actor","at","case","data","kind","seq"})',
        }
        manifest_bytes = (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode(
            "utf-8"
        )
        signature = sign(key, manifest_bytes)
        manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with (
            os.fdopen(fd, "wb") as raw,
            zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, compresslevel=3) as zf,
        ):
            zf.writestr("manifest.json", manifest_bytes)
            zf.writestr("manifest.sig", signature + "\n")
            for name in BUNDLE_FILES:
                zf.write(scratch / name, name)
        os.replace(partial, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    size = out.stat().st_size
    with core.db.transaction() as s:
        from bot.models.audit import AuditExport

        row = AuditExport(
            created_at=started,
            actor_id=actor.id if actor else None,
            via=via,
            filter=audit.canonical_json(flt.describe()),
            event_count=events["count"],
            message_count=len(message_ids),
            first_seq=events["first"]["seq"] if events["first"] else None,
            last_seq=events["last"]["seq"] if events["last"] else None,
            head_seq=chain_head["seq"] if chain_head else 0,
            head_hash=chain_head["hash"] if chain_head else audit.GENESIS_HASH,
            manifest_sha256=manifest_sha,
            signing_key=public_key_fingerprint(public),
        )
        s.add(row)
        s.flush()
        if purpose:
            row.purpose = core.cipher.encrypt(purpose, f"audit_exports.purpose:{row.id}".encode())
        audit.record(
            s,
            "export.created",
            actor_id=actor.id if actor else None,
            case_tag=flt.case_tag,
            at=core.clock.now(),
            data={
                "export": row.id,
                "manifest_sha256": manifest_sha,
                "filter": flt.describe(),
                "via": via,
                "events": events["count"],
                "rows": entries["messages.csv"]["rows"],
                "messages": len(message_ids),
                "first_seq": row.first_seq,
                "last_seq": row.last_seq,
                "purpose_sha256": audit.body_hash(purpose) if purpose else None,
            },
        )
        export_id = row.id
    logger.info(
        "export %s written: %s events, %s rows, %s bytes",
        export_id,
        events["count"],
        entries["messages.csv"]["rows"],
        size,
    )
    return ExportResult(
        out,
        export_id,
        manifest_sha,
        events["count"],
        entries["messages.csv"]["rows"],
        len(message_ids),
        row.first_seq,
        row.last_seq,
        public_key_fingerprint(public),
        size,
        decryptor.unreadable,
        tuple(events["problems"]),
    )


def chat_request(core: Core, actor: OfficerInfo, args: list[str]) -> ExportFilter:
    """Check `/export`'s sender and read its arguments; a refusal or unreadable request is audited too."""
    authorize(core, actor, via="telegram")
    try:
        return parse_command_args(args, actor.timezone)
    except InvalidInput as exc:
        _record_failure(core, actor, ExportFilter(), "telegram", exc.english())
        raise


def export_for_chat(core: Core, actor: OfficerInfo, flt: ExportFilter) -> ExportResult:
    """Make a bundle for `/export` in a private folder of the data directory (the caller deletes it)."""
    stamp = core.clock.now().strftime("%Y%m%d-%H%M%S")
    label = flt.case_tag or "period"
    folder = core.settings.data_dir / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return export_bundle(
        core, actor, flt, folder / f"liaison-export-{label}-{stamp}-{os.urandom(3).hex()}.zip", via="telegram"
    )


# ---------------------------------------------------------------------------------------------------
# Verifying a bundle


@dataclass
class BundleReport:
    """The outcome of `verify_bundle`: problems make it fail; notes are informative."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    pinned: bool = False
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Return whether the bundle is authentic and complete."""
        return not self.problems


def verify_bundle(
    path: Path, *, public_key: str | None = None, progress: Callable[[str], None] | None = None
) -> BundleReport:
    """Check a bundle: signature (against a pinned key if given), file hashes, event chain, text hashes."""
    report = BundleReport()
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        report.problems.append(f"not a readable ZIP file: {exc}")
        return report
    with zf:
        names = set(zf.namelist())
        if "manifest.json" not in names or "manifest.sig" not in names:
            report.problems.append("manifest.json or manifest.sig is missing")
            return report
        manifest_bytes = zf.read("manifest.json")
        signature = zf.read("manifest.sig").decode("ascii", "replace").strip()
        try:
            manifest = json.loads(manifest_bytes)
            public = manifest["installation"]["public_key"]
        except (ValueError, KeyError, TypeError):
            report.problems.append("manifest.json is not a valid manifest")
            return report
        report.manifest = manifest
        report.fingerprint = public_key_fingerprint(public)
        if not verify_signature(public, signature, manifest_bytes):
            report.problems.append(
                "the signature does not match manifest.json (the manifest was changed, or "
                "signed by another key)"
            )
        if public_key is not None:
            from bot.crypto import parse_public_key

            try:
                pinned = public_key_text(parse_public_key(public_key))
            except ValueError as exc:
                report.problems.append(f"the pinned public key cannot be read: {exc}")
                pinned = None
            if pinned is not None and pinned != public:
                report.problems.append(
                    f"signed by key {report.fingerprint}, not by the pinned key "
                    f"{public_key_fingerprint(pinned)}"
                )
            report.pinned = pinned == public
        else:
            report.notes.append(
                f"signed by key {report.fingerprint}: compare it with `liaison keys show-public` "
                "on the server (or pass --public-key)"
            )
        files = manifest.get("files", {})
        for extra in sorted(names - set(files) - {"manifest.json", "manifest.sig"}):
            report.problems.append(f"{extra} is in the ZIP but not in the manifest")
        for name, entry in files.items():
            if name not in names:
                report.problems.append(f"{name} is listed in the manifest but missing")
                continue
            sha, size = hashlib.sha256(), 0
            with zf.open(name) as fh:
                while chunk := fh.read(1 << 20):
                    sha.update(chunk)
                    size += len(chunk)
            if sha.hexdigest() != entry.get("sha256") or size != entry.get("bytes"):
                report.problems.append(f"{name} does not match its SHA-256 in the manifest (altered)")
        if progress:
            progress("files checked")
        anchors: set[str] = set()
        if "events.jsonl" in names:
            _check_events(zf, manifest.get("events", {}), report, anchors)
        if "messages.jsonl" in names:
            _check_messages(zf, report, anchors)
    return report


def _check_events(
    zf: zipfile.ZipFile, declared: dict[str, Any], report: BundleReport, anchors: set[str]
) -> None:
    """Recompute every event's hash and check the links between consecutive events."""
    count = 0
    first = last = None
    gaps: list[list[int]] = []
    with zf.open("events.jsonl") as fh:
        for line_no, line in enumerate(io.TextIOWrapper(fh, encoding="utf-8"), 1):
            try:
                ev = json.loads(line)
                content = audit.content_text(
                    ev["seq"], ev["at"], ev["kind"], ev["actor"], ev["case"], ev["data"]
                )
                computed = audit.chain_hash(ev["prev_hash"], content.encode("utf-8"))
            except (ValueError, KeyError, TypeError):
                report.problems.append(f"events.jsonl line {line_no} cannot be read")
                return
            if computed != ev["hash"]:
                report.problems.append(f"event {ev['seq']}: its hash does not match its content")
                return
            if last is not None:
                if ev["seq"] == last["seq"] + 1 and ev["prev_hash"] != last["hash"]:
                    report.problems.append(f"event {ev['seq']} does not link to event {last['seq']}")
                    return
                if ev["seq"] <= last["seq"]:
                    report.problems.append(f"event {ev['seq']} comes after event {last['seq']}: out of order")
                    return
                if ev["seq"] != last["seq"] + 1:
                    gaps.append([last["seq"], ev["seq"]])
            first = first or ev
            last = ev
            count += 1
            anchors.update(_HEX64.findall(ev["data"]))
    if count != declared.get("count"):
        report.problems.append(
            f"events.jsonl holds {count} events, the manifest says {declared.get('count')}"
        )
    if first is not None:
        if declared.get("first") != {"seq": first["seq"], "prev_hash": first["prev_hash"]}:
            report.problems.append("the first event differs from the manifest's")
        if declared.get("last") != {"seq": last["seq"], "hash": last["hash"]}:  # type: ignore[index]
            report.problems.append("the last event differs from the manifest's")
    if gaps != declared.get("gaps", []):
        report.problems.append("the gaps between events differ from the manifest's")
    if not report.problems:
        report.notes.append(
            f"{count} events chain up"
            + (f" ({len(gaps)} gap(s) where events outside the filter were left out)" if gaps else "")
        )


def _check_messages(zf: zipfile.ZipFile, report: BundleReport, anchors: set[str]) -> None:
    """Check each exported text against its SHA-256, and count texts whose hash is in the events."""
    rows = anchored = 0
    with zf.open("messages.jsonl") as fh:
        for line_no, line in enumerate(io.TextIOWrapper(fh, encoding="utf-8"), 1):
            try:
                row = json.loads(line)
            except ValueError:
                report.problems.append(f"messages.jsonl line {line_no} cannot be read")
                return
            rows += 1
            for text_key, hash_key in (
                ("original_text", "original_sha256"),
                ("delivered_text", "delivered_sha256"),
            ):
                textv, digest = row.get(text_key), row.get(hash_key)
                if textv is not None and digest and audit.body_hash(textv) != digest:
                    report.problems.append(
                        f"messages.jsonl line {line_no}: {text_key} does not match {hash_key}"
                    )
                    return
            if row.get("original_sha256") in anchors:
                anchored += 1
    report.notes.append(
        f"{rows} message rows; {anchored} of them have their original's hash in the exported events"
    )
