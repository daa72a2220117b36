"""The audit trail: append-only events, each hashed together with the hash of the one before.

An event's hash is `SHA-256(previous hash ‖ canonical content)`, where the canonical content is the
compact, key-sorted JSON of `{"actor", "at", "case", "data", "kind", "seq"}` (UTF-8, `data` being the
canonical JSON text of the event's data). Appends lock the single `audit_head` row, so the chain never
forks, also with several bot processes on one PostgreSQL database. `verify_chain` walks the whole chain
streaming and names the first broken link.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring as _json_str  # the C encoder json.dumps uses
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, create_engine, event, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from bot.db import SQLITE_BUSY_TIMEOUT_MS, Database
from bot.models import AuditEvent, AuditHead

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
T = TypeVar("T")
#: rows fetched per round trip when walking the chain
VERIFY_BATCH = 20_000


def canonical_json(value: Any) -> str:
    """Serialize deterministically: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    raise TypeError(f"cannot serialize {type(value).__name__} in an audit event")


def format_time(value: datetime) -> str:
    """Return a UTC timestamp in the one format the chain hashes (ISO 8601, microseconds, Z)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def body_hash(text: str | bytes) -> str:
    """Return the SHA-256 by which the chain refers to a message body (so bodies can be purged)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


# The canonical content, written out by hand: the same bytes as canonical_json() of the dict (keys in
# sorted order, json's own C string encoder), about three times faster, which `verify` needs.
_CONTENT = '{"actor":%s,"at":"%s","case":%s,"data":%s,"kind":%s,"seq":%d}'


def content_text(
    seq: int, at_text: str, kind: str, actor_id: int | None, case_tag: str | None, data: str
) -> str:
    """Return the canonical content of an event whose time is already formatted (see `format_time`)."""
    return _CONTENT % (
        "null" if actor_id is None else actor_id,
        at_text,
        "null" if case_tag is None else _json_str(case_tag),
        _json_str(data),
        _json_str(kind),
        seq,
    )


def event_content(
    seq: int, at: datetime, kind: str, actor_id: int | None, case_tag: str | None, data: str
) -> bytes:
    """Return the canonical bytes of an event, as hashed."""
    return content_text(seq, format_time(at), kind, actor_id, case_tag, data).encode("utf-8")


def chain_hash(prev_hash: str, content: bytes) -> str:
    """Return SHA-256(previous hash ‖ canonical content) as hex."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + content).hexdigest()


@dataclass(frozen=True)
class Recorded:
    """What `record` appended."""

    seq: int
    hash: str


#: where a session keeps the chain head it locked: (transaction, seq, hash)
_HEAD_KEY = "liaison.audit.head"
_EVENTS = AuditEvent.__table__
_HEAD = AuditHead.__table__
_SELECT_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_INSERT_EVENT = _EVENTS.insert()
_MOVE_HEAD = _HEAD.update().where(_HEAD.c.id == 1).values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))


@dataclass(frozen=True, slots=True)
class Head:
    """The end of the chain: the last event's number and hash."""

    seq: int
    hash: str


def _innermost(session: Session) -> Any:
    return session.get_nested_transaction() or session.get_transaction()


def lock_head(session: Session) -> Head:
    """Lock the chain head for this transaction (row lock on PostgreSQL, write lock on SQLite).

    The lock lasts until the transaction ends, so later events of the same transaction reuse the head
    read the first time. The cached head belongs to the innermost transaction (savepoint or not) that
    appended last: a rollback that undoes an append ends that transaction, so the head is read again.
    """
    transaction = _innermost(session)
    cached = session.info.get(_HEAD_KEY)
    if cached is not None and transaction is not None and cached[0] is transaction:
        head: Head = cached[1]
        return head
    row = session.connection().execute(_SELECT_HEAD).first()
    if row is None:
        session.connection().execute(_HEAD.insert().values(id=1, seq=0, hash=GENESIS_HASH))
        head = Head(0, GENESIS_HASH)
    else:
        head = Head(int(row.seq), row.hash)
    session.info[_HEAD_KEY] = (_innermost(session), head)
    return head


@dataclass(frozen=True, slots=True)
class Event:
    """One event to append with `record_many`."""

    kind: str
    actor_id: int | None = None
    case_tag: str | None = None
    data: dict[str, Any] | None = None
    at: datetime | None = None


def record(
    session: Session,
    kind: str,
    *,
    actor_id: int | None = None,
    case_tag: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> Recorded:
    """Append one event inside the caller's transaction; it commits or rolls back with the action."""
    return record_many(session, [Event(kind, actor_id, case_tag, data, at)])[0]


def record_many(session: Session, events: Sequence[Event]) -> list[Recorded]:
    """Append events, in order, inside the caller's transaction (one insert and one head update).

    Written with plain statements on the session's connection, not through the ORM's unit of work:
    the relay appends several events per message, and this is its hottest path. (The chain tables
    have no foreign keys, so nothing the session has pending must be flushed first.)
    """
    if not events:
        return []
    head = lock_head(session)
    seq, prev = head.seq, head.hash
    rows: list[dict[str, Any]] = []
    recorded: list[Recorded] = []
    for event in events:
        at = (event.at or datetime.now(UTC)).astimezone(UTC)
        payload = canonical_json(event.data or {})
        seq += 1
        digest = chain_hash(prev, event_content(seq, at, event.kind, event.actor_id, event.case_tag, payload))
        rows.append({"seq": seq, "at": at, "kind": event.kind, "actor_id": event.actor_id,
                     "case_tag": event.case_tag, "data": payload, "prev_hash": prev, "hash": digest})
        recorded.append(Recorded(seq, digest))
        prev = digest
    connection = session.connection()
    connection.execute(_INSERT_EVENT, rows[0] if len(rows) == 1 else rows)
    connection.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev})
    session.info[_HEAD_KEY] = (_innermost(session), Head(seq, prev))
    return recorded


# ---------------------------------------------------------------------------------------------------
# Consistent reads that do not block writers


@contextmanager
def read_snapshot(db: Database) -> Iterator[Connection]:
    """Yield a connection inside one read-only transaction that sees a single consistent snapshot.

    On SQLite the bot's own engine takes the write lock at BEGIN; a long export or verification must not
    stop the bot, so this uses a separate engine whose transactions begin DEFERRED (a WAL snapshot).
    On PostgreSQL the transaction is REPEATABLE READ, READ ONLY.
    """
    if db.dialect == "sqlite":
        engine = create_engine(
            db.engine.url,
            poolclass=NullPool,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            dbapi_conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN DEFERRED")

        try:
            with engine.connect() as conn, conn.begin() as tx:
                try:
                    yield conn
                finally:
                    tx.rollback()
        finally:
            engine.dispose()
        return
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin() as tx:
            # Long streaming reads gain nothing from JIT compilation, which costs up to a second per query.
            conn.exec_driver_sql("SET LOCAL jit = off")
            try:
                yield conn
            finally:
                tx.rollback()


_COLUMNS = "seq, {at}, kind, actor_id, case_tag, data, prev_hash, hash"
# The database writes the time in the hashed form itself (SQLite in its C code, without the GIL, in the
# prefetching thread; PostgreSQL in its own process), which saves the verification loop a step.
_PG_AT = """to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
_SQLITE_AT = "substr(at, 1, 10) || 'T' || substr(at, 12) || 'Z'"

#: one raw event row: (seq, time "YYYY-MM-DDTHH:MM:SS.ffffffZ", kind, actor, case, data, prev hash, hash)
RawEvent = tuple[int, str, str, int | None, str | None, str, str, str]


@dataclass(frozen=True)
class EventFilter:
    """Which events to read (all when empty); times are UTC, `until` exclusive."""

    case_tag: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    actor_id: int | None = None
    first_seq: int | None = None
    last_seq: int | None = None


def _where(flt: EventFilter, pg: bool) -> tuple[str, dict[str, Any]]:
    """Return the SQL condition and parameters of a filter in the driver's own parameter style."""
    conds: list[str] = []
    params: dict[str, Any] = {}

    def add(cond: str, name: str, value: Any) -> None:
        conds.append(cond.format(p=f"%({name})s" if pg else f":{name}"))
        params[name] = value

    def when(value: datetime) -> Any:
        # SQLite holds times as text in this format (see UtcDateTime); PostgreSQL compares timestamptz.
        return value if pg else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    if flt.case_tag is not None:
        add("case_tag = {p}", "case_tag", flt.case_tag)
    if flt.since is not None:
        add("at >= {p}", "since", when(flt.since))
    if flt.until is not None:
        add("at < {p}", "until", when(flt.until))
    if flt.actor_id is not None:
        add("actor_id = {p}", "actor_id", flt.actor_id)
    if flt.first_seq is not None:
        add("seq >= {p}", "first_seq", flt.first_seq)
    if flt.last_seq is not None:
        add("seq <= {p}", "last_seq", flt.last_seq)
    return (" WHERE " + " AND ".join(conds) if conds else ""), params


def raw_event_batches(
    conn: Connection, flt: EventFilter | None = None, *, batch: int = VERIFY_BATCH
) -> Iterator[list[RawEvent]]:
    """Yield the events in seq order as raw tuples, `batch` at a time (a server-side cursor on PostgreSQL)."""
    pg = conn.dialect.name == "postgresql"
    where, params = _where(flt or EventFilter(), pg)
    sql = f"SELECT {_COLUMNS.format(at=_PG_AT if pg else _SQLITE_AT)} FROM audit_events{where} ORDER BY seq"
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    if pg:
        # Binary results: the driver parses them in C without text conversions (about 1.5x faster).
        cur = dbapi.cursor(name=f"liaison_events_{id(conn):x}", binary=True)
        cur.itersize = batch
        try:
            cur.execute(sql, params)
            while rows := cur.fetchmany(batch):
                yield rows
        finally:
            cur.close()
        return
    cur = dbapi.cursor()
    try:
        cur.execute(sql, params)
        while rows := cur.fetchmany(batch):
            yield rows
    finally:
        cur.close()


class _Failure:
    """An exception raised while prefetching, handed to the consumer."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_DONE = object()


def prefetched(batches: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield the batches of another iterator, fetched ahead in a thread.

    The database (or SQLite's C code, which releases the GIL) prepares the next batch while this thread
    hashes the current one. The source iterator is consumed and closed in the fetching thread only.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in batches:
                if not put(item):
                    break
        except BaseException as exc:  # handed over to the consumer, which raises it
            put(_Failure(exc))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
            put(_DONE)

    worker = threading.Thread(target=run, name="audit-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        worker.join()


def at_text(stored: str) -> str:
    """Return a time in the hashed form 'YYYY-MM-DDTHH:MM:SS.ffffffZ' (from it or SQLite's stored form)."""
    if len(stored) == 27 and stored[10] == "T" and stored[26] == "Z":
        return stored
    if len(stored) == 26 and stored[10] == " ":
        return f"{stored[:10]}T{stored[11:]}Z"
    # Anything else (no microseconds, an offset): parse it properly.
    value = datetime.fromisoformat(stored)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return format_time(value)


def raw_content(row: RawEvent) -> bytes:
    """Return the canonical content of a raw event row."""
    seq, at, kind, actor, case, data = row[:6]
    return content_text(seq, at_text(at), kind, actor, case, data).encode("utf-8")


# ---------------------------------------------------------------------------------------------------
# Verification


@dataclass(frozen=True)
class ChainBreak:
    """Where and how the chain is broken; `detail` says what differs, in English (for auditors and logs)."""

    seq: int
    #: "hash-mismatch" (content or hash edited), "prev-link" (the link to the previous event is broken),
    #: "gap" (events missing), "reordered" (an event follows another than its predecessor),
    #: "head-mismatch" (the audit_head row disagrees with the last event), "anchor" (a pinned hash differs)
    problem: str
    detail: str


@dataclass
class VerifyResult:
    """The outcome of walking the chain."""

    events: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    head_seq: int | None = None
    head_hash: str | None = None
    breaks: list[ChainBreak] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Return whether the chain is intact."""
        return not self.breaks

    @property
    def rate(self) -> float:
        """Return events verified per second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """Return the one-line verdict `liaison audit verify` prints."""
        if self.ok:
            return f"intact, {self.events} events, head hash {self.last_hash}"
        first = self.breaks[0]
        return f"BROKEN at event {first.seq} ({first.problem}): {first.detail}"


# The canonical content, built by the database itself (PostgreSQL in its own process, SQLite in its C code
# while the prefetching thread has released the GIL), so that the verification loop only hashes. Their JSON
# string escaping (to_json / json_quote) is the same as Python's, and any event whose hash does not match is
# recomputed in Python from its fields before it is reported, so Python's canonical form has the last word.
_PG_CONTENT = (
    """'{"actor":' || coalesce(actor_id::text, 'null') || ',"at":"' || """
    + _PG_AT
    + """ || '","case":' || """
    """coalesce(to_json(case_tag)::text, 'null') || ',"data":' || to_json(data)::text || ',"kind":' || """
    """to_json(kind)::text || ',"seq":' || seq::text || '}'"""
)
_SQLITE_CONTENT = (
    """'{"actor":' || coalesce(actor_id, 'null') || ',"at":"' || """ + _SQLITE_AT + """ || '","case":' || """
    """json_quote(case_tag) || ',"data":' || json_quote(data) || ',"kind":' || json_quote(kind) || """
    """',"seq":' || seq || '}'"""
)


def content_batches(
    conn: Connection, *, batch: int = VERIFY_BATCH
) -> Iterator[list[tuple[int, str, str, str]]]:
    """Yield (seq, canonical content as built by the database, prev_hash, hash) in seq order, in batches."""
    pg = conn.dialect.name == "postgresql"
    content = _PG_CONTENT if pg else _SQLITE_CONTENT
    sql = f"SELECT seq, {content}, prev_hash, hash FROM audit_events ORDER BY seq"
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    cur = dbapi.cursor(name=f"liaison_verify_{id(conn):x}", binary=True) if pg else dbapi.cursor()
    if pg:
        cur.itersize = batch
    try:
        cur.execute(sql)
        while rows := cur.fetchmany(batch):
            yield rows
    finally:
        cur.close()


def event_row(db: Database, seq: int) -> RawEvent | None:
    """Return one event's raw row, read on a short connection of its own (for diagnoses)."""
    with db.engine.connect() as conn:
        for rows in raw_event_batches(conn, EventFilter(first_seq=seq, last_seq=seq), batch=1):
            return rows[0]
    return None


def verify_chain(
    db: Database,
    *,
    batch: int = VERIFY_BATCH,
    max_breaks: int = 1,
    anchors: Mapping[int, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyResult:
    """Walk the whole chain in seq order, streaming; report the first `max_breaks` broken links.

    `anchors` maps seq → hash noted down earlier (e.g. from a signed export); a chain rewritten from some
    point on with fresh hashes is internally consistent, and only such an outside anchor reveals it.
    """
    started = time.perf_counter()
    result = VerifyResult()
    anchors = dict(anchors or {})
    sha256 = hashlib.sha256
    breaks = result.breaks
    with read_snapshot(db) as conn:
        head = conn.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).first()
        prev_raw = bytes(32)
        prev_hex = GENESIS_HASH
        expected = 1
        for rows in prefetched(content_batches(conn, batch=batch)):
            for seq, content, prev_hash, stored in rows:
                if seq != expected or prev_hash != prev_hex:
                    row = event_row(db, seq)
                    breaks.append(
                        _diagnose_link(db, row, expected, prev_hex)
                        if row
                        else ChainBreak(seq, "gap", f"event {seq} vanished while the chain was walked")
                    )
                    if len(breaks) >= max_breaks:
                        break
                    # Carry on from this event as it stands, to find later breaks too.
                    prev_raw, prev_hex = _resync(stored)
                    expected = seq + 1
                    continue
                digest = sha256(prev_raw + content.encode())
                computed = digest.hexdigest()
                if computed == stored:
                    prev_raw, prev_hex = digest.digest(), computed
                else:
                    problem = _recheck(db, seq, prev_hex, stored)
                    if problem is not None:
                        breaks.append(problem)
                        if len(breaks) >= max_breaks:
                            break
                    prev_raw, prev_hex = _resync(stored)
                expected = seq + 1
                if anchors and seq in anchors and anchors.pop(seq) != stored:
                    breaks.append(
                        ChainBreak(
                            seq,
                            "anchor",
                            f"event {seq} has hash {stored}, but the pinned hash for it is a different one",
                        )
                    )
                    if len(breaks) >= max_breaks:
                        break
            else:
                if progress is not None:
                    progress(expected - 1)
                continue
            break
        result.last_seq = expected - 1
        result.events = result.last_seq
        result.last_hash = prev_hex
        if head is not None:
            result.head_seq, result.head_hash = int(head[0]), str(head[1])
        if len(breaks) < max_breaks:
            breaks.extend(_check_head(result, head))
        for seq in sorted(anchors):
            if len(breaks) < max_breaks and seq > result.last_seq:
                breaks.append(
                    ChainBreak(
                        seq,
                        "anchor",
                        f"pinned event {seq} is no longer in the chain (it ends at {result.last_seq})",
                    )
                )
    result.seconds = time.perf_counter() - started
    logger.info(
        "audit chain verified: %s events in %.2f s, %s",
        result.events,
        result.seconds,
        "intact" if result.ok else f"{len(breaks)} break(s)",
    )
    return result


def _recheck(db: Database, seq: int, prev_hex: str, stored: str) -> ChainBreak | None:
    """Recompute a mismatching event in Python from its fields; return the break, or None if it holds."""
    row = event_row(db, seq)
    if row is None:
        return ChainBreak(seq, "gap", f"event {seq} vanished while the chain was walked")
    computed = chain_hash(prev_hex, _slow_content(row).encode("utf-8", "surrogatepass"))
    if computed == stored:
        logger.warning(
            "event %s: the database's canonical form differs from Python's; checked with Python's", seq
        )
        return None
    return _diagnose_hash(db, row, computed)


def _slow_content(row: RawEvent) -> str:
    """Return the canonical content of an unusual row; a time that cannot be read hashes as itself."""
    seq, at, kind, actor, case, data = row[:6]
    try:
        at = at_text(str(at))
    except ValueError:
        at = str(at)
    return content_text(seq, at, kind, actor, case, data)


def _resync(stored: Any) -> tuple[bytes, str]:
    """Return the running hash after a broken event: its stored hash (when that is readable hex)."""
    try:
        return bytes.fromhex(stored), str(stored)
    except (TypeError, ValueError):
        return bytes(32), str(stored)


def _check_head(result: VerifyResult, head: Any) -> list[ChainBreak]:
    if head is None:
        return [ChainBreak(result.last_seq, "head-mismatch", "the audit_head row is missing")]
    head_seq, head_hash = int(head[0]), str(head[1])
    if head_seq == result.last_seq and head_hash == result.last_hash:
        return []
    if head_seq > result.last_seq:
        what = (
            f"the head row says the chain ends at event {head_seq} (hash {head_hash}) but the last event "
            f"is {result.last_seq}: events {result.last_seq + 1}..{head_seq} were deleted from the end"
        )
    elif head_seq < result.last_seq:
        what = (
            f"the head row says the chain ends at event {head_seq} but events continue to {result.last_seq}:"
            " the head row was edited or events were inserted"
        )
    else:
        what = (
            f"the head row's hash {head_hash} differs from the last event's hash {result.last_hash}:"
            " the last event or the head row was edited"
        )
    return [
        ChainBreak(
            result.last_seq if head_seq <= result.last_seq else result.last_seq + 1, "head-mismatch", what
        )
    ]


def _seq_of_hash(db: Database, digest: str) -> int | None:
    with db.engine.connect() as conn:
        found = conn.execute(select(AuditEvent.seq).where(AuditEvent.hash == digest)).first()
    return int(found[0]) if found else None


def _recorded_as(row: RawEvent, candidates: list[int]) -> int | None:
    """Return the seq this row's content was originally hashed with, if one of the candidates fits."""
    seq, at, kind, actor, case, data, prev_hash, stored = row
    for cand in candidates:
        try:
            content = _slow_content((cand, at, kind, actor, case, data, prev_hash, stored))
            if cand > 0 and chain_hash(prev_hash, content.encode("utf-8", "surrogatepass")) == stored:
                return cand
        except (TypeError, ValueError):
            return None
    return None


def _diagnose_link(db: Database, row: RawEvent, expected: int, prev_hex: str) -> ChainBreak:
    """Explain why an event does not follow the one before it (runs once, at the break)."""
    seq, prev_hash = row[0], row[6]
    if seq != expected and prev_hash == prev_hex:
        return ChainBreak(
            expected,
            "gap",
            f"the chain goes from event {expected - 1} to event {seq}, yet event "
            f"{seq} links to event {expected - 1}: it was renumbered",
        )
    if seq != expected:
        missing = f"event {expected}" if seq == expected + 1 else f"events {expected}..{seq - 1}"
        return ChainBreak(
            expected, "gap", f"{missing} missing: the chain jumps from event {expected - 1} to {seq}"
        )
    owner = _seq_of_hash(db, prev_hash)
    if owner is not None and owner != seq - 1:
        original = _recorded_as(row, [owner + 1, seq + 1, seq - 1])
        origin = f"; its content was recorded as event {original}" if original is not None else ""
        return ChainBreak(
            seq,
            "reordered",
            f"event {seq} links to event {owner} (its previous hash is event "
            f"{owner}'s hash), not to event {seq - 1}: events were reordered{origin}",
        )
    return ChainBreak(
        seq,
        "prev-link",
        f"event {seq} says the previous hash is {prev_hash} but event {seq - 1}'s "
        f"hash is {prev_hex}: an event before it was rewritten, or events were deleted and the rest "
        "renumbered",
    )


def _diagnose_hash(db: Database, row: RawEvent, computed: str) -> ChainBreak:
    """Explain a stored hash that does not match the event's content."""
    seq, stored = row[0], row[7]
    original = _recorded_as(row, [seq - 1, seq + 1])
    if original is not None:
        return ChainBreak(
            seq,
            "reordered",
            f"event {seq}'s content was recorded as event {original}: events were renumbered or reordered",
        )
    with db.engine.connect() as conn:
        nxt = conn.execute(select(AuditEvent.prev_hash).where(AuditEvent.seq == seq + 1)).first()
    if nxt is not None and nxt[0] == stored:
        why = "its content (time, kind, actor, case or data) was changed after it was recorded"
    else:
        why = "its content or its stored hash was changed after it was recorded"
    return ChainBreak(
        seq, "hash-mismatch", f"event {seq}: stored hash {stored}, content hashes to {computed}: {why}"
    )


def chain_head(db: Database) -> Recorded:
    """Return the chain head as it stands (seq 0 and the genesis hash for an empty chain)."""
    with db.session() as s:
        row = s.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).first()
    return Recorded(int(row[0]), str(row[1])) if row else Recorded(0, GENESIS_HASH)
