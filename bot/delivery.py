"""The outbox: every copy the bot sends is stored first, then delivered with retries within Telegram's limits.

Any area enqueues deliveries inside its own transaction (so a copy exists exactly when the record it
belongs to exists), then calls `wake(core)`; the `DeliveryWorker` (one per bot process, started as a
lifecycle service) claims them, sends them and records the outcome:

    with core.db.transaction() as s:
        b = Broadcast(...); s.add(b); s.flush()
        delivery.enqueue_many(s, core, [
            delivery.NewDelivery(kind="broadcast", ref_id=b.id, chat_id=o.telegram_id, recipient_id=o.id,
                                 lang=o.language, payload=delivery.Payload(text=html_by_lang[o.language],
                                 buttons=((Button(label, f"ack:{b.id}"),),)), priority=5)
            for o in officers], actor_id=actor.id, case_tag=None)
    delivery.wake(core)
    delivery.outbox(core).subscribe("broadcast", on_status)   # async def on_status(event: DeliveryEvent)

Statuses: pending → sending → sent | failed (with a reason) | blocked (the user blocked the bot) |
cancelled (retracted, recipient removed or revoked). Telegram's 429 (honoring retry_after), 5xx,
timeouts and network errors are retried with exponential backoff up to `MAX_ATTEMPTS`.

Guarantees and their limits:
- Per chat, operations run in order (first in, first out), one at a time, at most one Telegram call
  per `chat_interval` (1 s); overall at most `rate` calls per sliding second (30).
- A claim is a row update (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serializes writers), so two
  processes never send the same delivery. The rate limits are per process: with several processes,
  give each a share of the overall rate.
- Pending deliveries survive a crash and are sent after restart. A crash *during* a Telegram call
  leaves the delivery "sending"; it is sent again after its lease expires (or at once when the same
  host sees its process gone) — that one window is at-least-once, as with any outbox over an API
  without idempotency keys.
"""

from __future__ import annotations

import asyncio
import bisect
import inspect
import json
import logging
import os
import random
import socket
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from bot import audit
from bot.audit import body_hash as hash_body
from bot.core import Core
from bot.models import Officer, OfficerStatus
from bot.models.relay import ChatMessage, Delivery, column_aad
from bot.outbound import Button, OutFile, Outbound, OutMessage, SendError
from bot.render import CAPTION_LIMIT, TEXT_LIMIT, split_html

logger = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED, BLOCKED, CANCELLED = "pending", "sending", "sent", "failed", "blocked", "cancelled"
FINAL_STATUSES = frozenset({SENT, FAILED, BLOCKED, CANCELLED})
#: attempts before a delivery that keeps failing with retryable errors is marked failed
MAX_ATTEMPTS = 10
#: how long a claim is held before another worker may take the delivery over (crashed process)
LEASE = timedelta(seconds=120)
#: first retry delay; doubled per attempt up to MAX_BACKOFF
BASE_BACKOFF = 2.0
MAX_BACKOFF = 600.0
_PAYLOAD_AAD = column_aad("deliveries", "payload_enc")
OUTBOX_KEY = "delivery"


# --- what to send -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FileSpec:
    """A file Telegram already has (by file_id) to send again: photo, document, voice, video or audio."""

    kind: str
    file_id: str


@dataclass(frozen=True, slots=True)
class Payload:
    """What one delivery sends; `text` is Telegram HTML of any length (split into several messages).

    For a file, the first piece of `text` is its caption (1024 units) and the rest follow as messages.
    For a location or contact, the text goes first and the pin after it. Buttons go on the last
    message. `reply_ref=(kind, ref_id)` replies to this chat's copy (or original) of that record,
    resolved when sending, so a reply to a copy still pending works.
    """

    text: str = ""
    buttons: tuple[tuple[Button, ...], ...] = ()
    protect: bool = False
    silent: bool = False
    reply_to: int | None = None
    reply_ref: tuple[str, int] | None = None
    file: FileSpec | None = None
    location: tuple[float, float] | None = None
    #: (phone number, first name, last name)
    contact: tuple[str, str, str | None] | None = None
    #: for a delete: shown instead of the message where Telegram no longer allows deleting it
    fallback_text: str | None = None


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """One copy to enqueue with `enqueue_many`."""

    kind: str
    chat_id: int
    payload: Payload
    ref_id: int | None = None
    recipient_id: int | None = None
    lang: str | None = None
    priority: int = 0
    body_hash: str | None = None
    case_tag: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """A delivery reached a status; given to subscribers after it is committed."""

    id: int
    kind: str
    ref_id: int | None
    op: str
    status: str
    reason: str | None
    recipient_id: int | None
    chat_id: int
    lang: str | None
    attempts: int
    telegram_message_id: int | None
    target_id: int | None = None
    #: when a retry is scheduled (status stays pending)
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryInfo:
    """A delivery as the areas read it back."""

    id: int
    kind: str
    ref_id: int | None
    op: str
    status: str
    reason: str | None
    recipient_id: int | None
    chat_id: int
    lang: str | None
    attempts: int
    telegram_message_id: int | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class MessageRef:
    """What a Telegram message in a chat is: a copy (delivery) or an officer's original of a record."""

    kind: str
    ref_id: int | None
    delivery_id: int | None
    origin: bool


Subscriber = Callable[[DeliveryEvent], Awaitable[None] | None]


class Outbox:
    """Per-process delivery state shared by the areas: status subscribers and the worker's wake-up."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def subscribe(self, kind: str, callback: Subscriber) -> None:
        """Call `callback(event)` (sync or async) whenever a delivery of this kind changes status ('*' = all)."""
        self._subscribers.setdefault(kind, []).append(callback)

    def unsubscribe(self, kind: str, callback: Subscriber) -> None:
        """Stop calling a callback (a service stopping)."""
        if callback in self._subscribers.get(kind, []):
            self._subscribers[kind].remove(callback)

    def subscribers(self, kind: str) -> list[Subscriber]:
        """Return the callbacks for a kind (its own, then the catch-all ones)."""
        return [*self._subscribers.get(kind, []), *self._subscribers.get("*", [])]

    def bind(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        """Attach the running worker's loop and wake-up event."""
        self._loop, self._event = loop, event

    def unbind(self) -> None:
        """Detach the worker (stopped)."""
        self._loop = self._event = None

    def wake(self) -> None:
        """Tell the worker new deliveries are waiting; safe from any thread, a no-op without a worker."""
        loop, event = self._loop, self._event
        if loop is None or event is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)


def outbox(core: Core) -> Outbox:
    """Return this process's outbox (created on first use, kept in `core.extras`)."""
    box = core.extras.get(OUTBOX_KEY)
    if box is None:
        box = core.extras[OUTBOX_KEY] = Outbox()
    return box  # type: ignore[no-any-return]


def wake(core: Core) -> None:
    """Tell the worker new deliveries are waiting (call after the enqueuing transaction committed)."""
    outbox(core).wake()


# --- payload encoding -------------------------------------------------------------------------------

def _split(payload: Payload) -> list[str]:
    """Split a payload's text into the messages it will take (the first piece a caption for files)."""
    if payload.file is not None:
        if not payload.text.strip():
            return [""]
        return split_html(payload.text, TEXT_LIMIT, first_limit=CAPTION_LIMIT)
    if not payload.text.strip():
        if payload.location is not None or payload.contact is not None:
            return []
        raise ValueError("a delivery needs a text, a file, a location or a contact")
    return split_html(payload.text, TEXT_LIMIT)


def _encode(payload: Payload, parts: list[str]) -> str:
    """Return the payload as the JSON stored (encrypted) with the delivery."""
    doc: dict[str, Any] = {"parts": parts}
    if payload.buttons:
        doc["buttons"] = [[[b.text, b.data] for b in row] for row in payload.buttons]
    if payload.protect:
        doc["protect"] = True
    if payload.silent:
        doc["silent"] = True
    if payload.reply_to is not None:
        doc["reply_to"] = payload.reply_to
    if payload.reply_ref is not None:
        doc["reply_ref"] = list(payload.reply_ref)
    if payload.file is not None:
        doc["file"] = [payload.file.kind, payload.file.file_id]
    if payload.location is not None:
        doc["location"] = list(payload.location)
    if payload.contact is not None:
        doc["contact"] = list(payload.contact)
    if payload.fallback_text is not None:
        doc["fallback"] = payload.fallback_text
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _buttons(doc: dict[str, Any]) -> tuple[tuple[Button, ...], ...]:
    """Return the stored buttons as `Button` rows."""
    return tuple(tuple(Button(t, d) for t, d in row) for row in doc.get("buttons", ()))


def _decode(core: Core, blob: bytes) -> dict[str, Any]:
    """Decrypt and parse a stored payload."""
    text = core.cipher.decrypt(blob, _PAYLOAD_AAD)
    return json.loads(text) if text else {}  # an empty text: purged by retention


# --- enqueueing (inside the caller's transaction) ---------------------------------------------------

@dataclass(frozen=True, slots=True)
class Queued:
    """A copy `enqueue_many` stored (its id and what the audit trail lists of it)."""

    id: int
    kind: str
    ref_id: int | None
    recipient_id: int | None
    chat_id: int
    lang: str | None
    body_hash: str | None
    case_tag: str | None
    target_id: int | None = None


_DELIVERIES = Delivery.__table__
_CHAT_MESSAGES = ChatMessage.__table__
_INSERT_CHAT_MESSAGE = _CHAT_MESSAGES.insert()
_INSERT_DELIVERIES = _DELIVERIES.insert().returning(_DELIVERIES.c.id, sort_by_parameter_order=True)


def enqueue_many(
    session: Session,
    core: Core,
    items: Sequence[NewDelivery],
    *,
    actor_id: int | None = None,
    case_tag: str | None = None,
    not_before: datetime | None = None,
    audit_event: bool = True,
) -> list[Queued]:
    """Store several copies as pending, in one statement; return them (ids set), in the order given.

    One "delivery.queued" audit event lists them all, unless `audit_event` is False: then the caller
    puts `queued_summary(rows)` into its own event of the same transaction.
    """
    if not items:
        return []
    now = core.clock.now()
    encoded: dict[int, tuple[str, str | None]] = {}
    params: list[dict[str, Any]] = []
    for item in items:
        key = id(item.payload)
        if key not in encoded:
            parts = _split(item.payload)
            encoded[key] = (_encode(item.payload, parts), hash_body(item.payload.text) if item.payload.text else None)
        doc, text_hash = encoded[key]
        params.append({
            "kind": item.kind, "ref_id": item.ref_id, "op": "send", "target_id": None,
            "recipient_id": item.recipient_id, "chat_id": item.chat_id, "lang": item.lang,
            "case_tag": item.case_tag or case_tag, "payload_enc": core.cipher.encrypt(doc, _PAYLOAD_AAD),
            "body_hash": item.body_hash or text_hash, "priority": item.priority, "status": PENDING,
            "reason": None, "attempts": 0, "created_at": now, "next_attempt_at": not_before or now,
            "finished_at": None, "claimed_by": None, "lease_until": None, "telegram_message_id": None,
        })
    # A plain insert on the session's connection (no unit of work): the relay queues copies for every
    # message. Pending ORM objects (e.g. a new recipient) are flushed first, for the foreign keys.
    session.flush()
    ids = session.connection().execute(_INSERT_DELIVERIES, params).scalars().all()
    rows = [Queued(i, p["kind"], p["ref_id"], p["recipient_id"], p["chat_id"], p["lang"], p["body_hash"],
                   p["case_tag"]) for i, p in zip(ids, params, strict=True)]
    if audit_event:
        _audit_queued(session, rows, "send", actor_id, case_tag or rows[0].case_tag, now)
    return rows


def queued_summary(rows: Sequence[Delivery | Queued]) -> list[list[Any]]:
    """Return how the audit trail lists queued copies: [id, recipient, chat, language, text hash, target]."""
    return [[r.id, r.recipient_id, r.chat_id, r.lang, r.body_hash, r.target_id] for r in rows]


def enqueue(session: Session, core: Core, *, kind: str, chat_id: int, payload: Payload,
            ref_id: int | None = None, recipient_id: int | None = None, lang: str | None = None,
            priority: int = 0, actor_id: int | None = None, case_tag: str | None = None,
            not_before: datetime | None = None) -> Queued:
    """Store one copy as pending; see `enqueue_many`."""
    return enqueue_many(session, core, [NewDelivery(kind, chat_id, payload, ref_id, recipient_id, lang, priority,
                                                    case_tag=case_tag)],
                        actor_id=actor_id, case_tag=case_tag, not_before=not_before)[0]


def _audit_queued(session: Session, rows: Sequence[Delivery | Queued], op: str, actor_id: int | None,
                  case_tag: str | None, now: datetime) -> None:
    """Append one "delivery.queued" event listing the queued rows."""
    first = rows[0]
    audit.record(session, "delivery.queued", actor_id=actor_id, case_tag=case_tag, at=now, data={
        "kind": first.kind, "op": op, "ref": first.ref_id, "deliveries": queued_summary(rows),
    })


def _locked(session: Session, delivery_id: int) -> Delivery | None:
    """Return a delivery row, locked for this transaction on PostgreSQL."""
    query = select(Delivery).where(Delivery.id == delivery_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def enqueue_edit(session: Session, core: Core, target_id: int, payload: Payload, *,
                 actor_id: int | None = None, coalesce: bool = True, body_hash: str | None = None) -> Delivery | None:
    """Change the text (and buttons) of a copy: rewrite it if still pending, else queue an edit.

    Only `text` and `buttons` of `payload` are used. With `coalesce`, an edit still waiting for the
    same copy is replaced (a progress message edited often sends only its latest state). `body_hash`
    is how the audit trail refers to the new text (default: the hash of `payload.text`; the relay gives
    the translation's, as when the copy was queued, so exports tell which version a copy carried).
    Returns the delivery that will carry the change, or None when the copy was never delivered.
    """
    now = core.clock.now()
    target = _locked(session, target_id)
    if target is None or target.op != "send":
        raise ValueError(f"delivery {target_id} is not a sent copy")
    old = _decode(core, target.payload_enc)
    has_file = "file" in old
    new = Payload(text=payload.text, buttons=payload.buttons,
                  file=FileSpec(*old["file"]) if has_file else None,
                  location=tuple(old["location"]) if "location" in old else None,  # type: ignore[arg-type]
                  contact=tuple(old["contact"]) if "contact" in old else None)  # type: ignore[arg-type]
    parts = _split(new)
    text_hash = body_hash or (hash_body(payload.text) if payload.text else None)
    if target.status == PENDING:
        doc = dict(old, parts=parts)
        doc.pop("buttons", None)
        if payload.buttons:
            doc["buttons"] = [[[b.text, b.data] for b in row] for row in payload.buttons]
        target.payload_enc = core.cipher.encrypt(json.dumps(doc, ensure_ascii=False, separators=(",", ":")),
                                                 _PAYLOAD_AAD)
        target.body_hash = text_hash
        audit.record(session, "delivery.rewritten", actor_id=actor_id, case_tag=target.case_tag, at=now,
                     data={"delivery": target.id, "kind": target.kind, "ref": target.ref_id, "hash": text_hash})
        return target
    if target.status in (FAILED, BLOCKED, CANCELLED) and not _has_parts(session, target.id):
        return None
    doc_text = _encode(Payload(text=payload.text, buttons=payload.buttons), parts)
    if coalesce:
        waiting = session.execute(select(Delivery).where(
            Delivery.target_id == target.id, Delivery.op == "edit", Delivery.status == PENDING)).scalars().first()
        if waiting is not None:
            waiting.payload_enc = core.cipher.encrypt(doc_text, _PAYLOAD_AAD)
            waiting.body_hash = text_hash
            return waiting
    row = Delivery(kind=target.kind, ref_id=target.ref_id, op="edit", target_id=target.id,
                   recipient_id=target.recipient_id, chat_id=target.chat_id, lang=target.lang,
                   case_tag=target.case_tag, payload_enc=core.cipher.encrypt(doc_text, _PAYLOAD_AAD),
                   body_hash=text_hash, priority=target.priority, status=PENDING, attempts=0,
                   created_at=now, next_attempt_at=now)
    session.add(row)
    session.flush()
    _audit_queued(session, [row], "edit", actor_id, target.case_tag, now)
    return row


def _has_parts(session: Session, delivery_id: int) -> bool:
    """Tell whether any Telegram message of a delivery was sent."""
    return session.execute(select(ChatMessage.message_id).where(ChatMessage.delivery_id == delivery_id)
                           .limit(1)).first() is not None


def enqueue_delete(session: Session, core: Core, target_id: int, *, fallback_text: str | None = None,
                   actor_id: int | None = None, reason: str = "retracted") -> Delivery | None:
    """Remove a copy: cancel it if not yet sent, else queue deleting its Telegram messages.

    Where Telegram refuses (messages older than 48 hours), `fallback_text` replaces the text.
    Waiting edits of the copy are cancelled. Returns the delete delivery, or None when nothing was sent.
    """
    now = core.clock.now()
    target = _locked(session, target_id)
    if target is None or target.op != "send":
        raise ValueError(f"delivery {target_id} is not a sent copy")
    for edit in session.execute(select(Delivery).where(
            Delivery.target_id == target.id, Delivery.op == "edit", Delivery.status == PENDING)).scalars():
        _set_final(session, edit, CANCELLED, reason, actor_id, now)
    if target.status == PENDING:
        _set_final(session, target, CANCELLED, reason, actor_id, now)
        return None
    if target.status != SENDING and not _has_parts(session, target.id):
        return None
    doc = _encode(Payload(text="-", fallback_text=fallback_text), [])
    row = Delivery(kind=target.kind, ref_id=target.ref_id, op="delete", target_id=target.id,
                   recipient_id=target.recipient_id, chat_id=target.chat_id, lang=target.lang,
                   case_tag=target.case_tag, payload_enc=core.cipher.encrypt(doc, _PAYLOAD_AAD), body_hash=None,
                   priority=target.priority, status=PENDING, attempts=0, created_at=now, next_attempt_at=now)
    session.add(row)
    session.flush()
    _audit_queued(session, [row], "delete", actor_id, target.case_tag, now)
    return row


def cancel_pending(session: Session, core: Core, *, kind: str, ref_ids: Iterable[int] | None = None,
                   recipient_id: int | None = None, reason: str, actor_id: int | None = None) -> list[int]:
    """Cancel copies not yet sent (e.g. to an officer removed from a room); return their ids."""
    query = select(Delivery).where(Delivery.kind == kind, Delivery.status == PENDING)
    if ref_ids is not None:
        query = query.where(Delivery.ref_id.in_(list(ref_ids)))
    if recipient_id is not None:
        query = query.where(Delivery.recipient_id == recipient_id)
    now = core.clock.now()
    cancelled = []
    for row in session.execute(query).scalars():
        _set_final(session, row, CANCELLED, reason, actor_id, now)
        cancelled.append(row.id)
    return cancelled


def _event_kind(op: str, status: str) -> str:
    """Return the audit event kind for an operation reaching a status."""
    return f"delivery.{status}" if op == "send" else f"delivery.{op}.{status}"


def _set_final(session: Session, row: Delivery | Claimed, status: str, reason: str | None, actor_id: int | None,
               now: datetime, writes: _Writes | None = None) -> None:
    """Give a delivery its final status and audit it (with `writes`: gathered there, stored later)."""
    row.status, row.reason, row.finished_at = status, reason, now
    row.claimed_by = row.lease_until = None
    event = audit.Event(_event_kind(row.op, status), actor_id, row.case_tag, _event_data(row), now)
    if writes is not None and isinstance(row, Claimed):
        writes.rows.append(row.changes())
        writes.events.append(event)
        return
    if isinstance(row, Claimed):
        row.write_back(session)
    audit.record_many(session, [event])


def _event_data(row: Delivery | Claimed, **extra: Any) -> dict[str, Any]:
    """Return the audit data of a delivery event (the text only by its hash)."""
    data = {"delivery": row.id, "kind": row.kind, "ref": row.ref_id, "op": row.op, "to": row.recipient_id,
            "chat": row.chat_id, "lang": row.lang, "hash": row.body_hash, "attempt": row.attempts,
            "reason": row.reason, "telegram_message_id": row.telegram_message_id}
    if row.target_id is not None:
        data["target"] = row.target_id
    data.update(extra)
    return data


# --- reading back -----------------------------------------------------------------------------------

def _info(row: Delivery) -> DeliveryInfo:
    """Snapshot a delivery row."""
    return DeliveryInfo(row.id, row.kind, row.ref_id, row.op, row.status, row.reason, row.recipient_id, row.chat_id,
                        row.lang, row.attempts, row.telegram_message_id, row.created_at, row.finished_at)


def deliveries_for(core: Core, kind: str, ref_id: int, *, op: str = "send") -> list[DeliveryInfo]:
    """Return the copies of one record (e.g. every copy of a broadcast), oldest first."""
    with core.db.session() as s:
        rows = s.execute(select(Delivery).where(Delivery.kind == kind, Delivery.ref_id == ref_id, Delivery.op == op)
                         .order_by(Delivery.id)).scalars()
        return [_info(r) for r in rows]


def outstanding(core: Core) -> int:
    """Return how many deliveries are pending or in flight (all areas)."""
    with core.db.session() as s:
        return int(s.execute(select(func.count()).where(Delivery.status.in_((PENDING, SENDING)))).scalar_one())


def status_counts(core: Core, kind: str, ref_id: int) -> dict[str, int]:
    """Return how many copies of a record are in each status (sends only)."""
    with core.db.session() as s:
        rows = s.execute(select(Delivery.status, func.count()).where(
            Delivery.kind == kind, Delivery.ref_id == ref_id, Delivery.op == "send").group_by(Delivery.status))
        return {status: int(n) for status, n in rows}


def lookup(session: Session, chat_id: int, message_id: int) -> MessageRef | None:
    """Return what a Telegram message in a chat is (a copy or an original), or None if unknown."""
    row = session.get(ChatMessage, (chat_id, message_id))
    if row is None:
        return None
    return MessageRef(row.kind, row.ref_id, row.delivery_id, row.origin)


def find_message(core: Core, chat_id: int, message_id: int) -> MessageRef | None:
    """Return what a Telegram message in a chat is, in its own read (for handlers of button presses)."""
    with core.db.session() as s:
        return lookup(s, chat_id, message_id)


def record_origin(session: Session, core: Core, *, chat_id: int, message_id: int, kind: str, ref_id: int) -> None:
    """Remember that an officer's own message in their chat is the original of a record (for replies)."""
    session.connection().execute(_INSERT_CHAT_MESSAGE, {
        "chat_id": chat_id, "message_id": message_id, "kind": kind, "ref_id": ref_id, "delivery_id": None,
        "part": 0, "part_kind": "text", "origin": True, "at": core.clock.now()})


# --- claiming and finishing (run in a worker thread) ------------------------------------------------

@dataclass
class Job:
    """A claimed delivery with everything needed to carry it out."""

    id: int
    kind: str
    ref_id: int | None
    op: str
    chat_id: int
    recipient_id: int | None
    lang: str | None
    attempts: int
    doc: dict[str, Any]
    target_id: int | None = None
    reply_to: int | None = None
    #: Telegram messages already sent for this delivery (a multi-part send resumed), or the target's
    target_parts: list[tuple[int, str]] = field(default_factory=list)
    done_parts: list[tuple[int, str]] = field(default_factory=list)
    #: set just before the first Telegram call (a job stopped before that is given back untouched)
    started: bool = False


@dataclass
class Outcome:
    """What happened when a job was carried out."""

    status: str  # sent, retry, failed, blocked
    reason: str | None = None
    retry_after: float | None = None
    #: new Telegram messages: (message id, part kind)
    sent: list[tuple[int, str]] = field(default_factory=list)
    #: Telegram messages of the target that no longer exist (deleted)
    removed: list[int] = field(default_factory=list)


def worker_identity() -> str:
    """Return a claim owner id unique to this worker: host, process id and a random token."""
    return f"{socket.gethostname()[:48]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


@dataclass(slots=True)
class Claimed:
    """A deliveries row read with a plain statement (the worker's hot path, no unit of work).

    The session does not track it: after changing its status fields, `write_back` stores them.
    """

    id: int
    kind: str
    ref_id: int | None
    op: str
    target_id: int | None
    recipient_id: int | None
    chat_id: int
    lang: str | None
    case_tag: str | None
    payload_enc: bytes
    body_hash: str | None
    priority: int
    status: str
    reason: str | None
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    finished_at: datetime | None
    claimed_by: str | None
    lease_until: datetime | None
    telegram_message_id: int | None

    def changes(self) -> dict[str, Any]:
        """Return the parameters of `_WRITE_BACK`: the fields a claim or an outcome changes."""
        return {f"b_{name}": getattr(self, name) for name in _CHANGING}

    def write_back(self, session: Session) -> None:
        """Store the fields a claim or an outcome changes."""
        session.connection().execute(_WRITE_BACK, self.changes())


@dataclass
class _Writes:
    """What one worker transaction writes, gathered so that each kind goes out in one statement."""

    parts: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[audit.Event] = field(default_factory=list)

    def store(self, session: Session) -> None:
        """Insert the sent parts, write the rows back, append the audit events (in that order)."""
        connection = session.connection()
        for statement, params in ((_INSERT_CHAT_MESSAGE, self.parts), (_WRITE_BACK, self.rows)):
            if params:
                connection.execute(statement, params[0] if len(params) == 1 else params)
        audit.record_many(session, self.events)


_COLUMNS = tuple(c.name for c in _DELIVERIES.c)
assert set(_COLUMNS) == set(Claimed.__dataclass_fields__), "Claimed must mirror the deliveries table"
_CHANGING = ("id", "status", "reason", "attempts", "next_attempt_at", "finished_at", "claimed_by", "lease_until",
             "telegram_message_id")
_WRITE_BACK = _DELIVERIES.update().where(_DELIVERIES.c.id == bindparam("b_id")).values(
    {name: bindparam(f"b_{name}") for name in _CHANGING if name != "id"})
_SELECT_CLAIMED = select(*_DELIVERIES.c).where(_DELIVERIES.c.id.in_(bindparam("ids", expanding=True)))
_SELECT_CLAIMED_LOCKED = _SELECT_CLAIMED.with_for_update()


def _due_query(locking: bool) -> Any:
    """Return the claim query: each chat's oldest open delivery (its head) when due, best first."""
    d, officers = _DELIVERIES, Officer.__table__
    now = bindparam("now", type_=d.c.next_attempt_at.type)
    heads = select(func.min(d.c.id)).where(d.c.status.in_((PENDING, SENDING))).group_by(d.c.chat_id)
    query = (select(*d.c, officers.c.status.label("officer_status"))
             .outerjoin(officers, officers.c.id == d.c.recipient_id)
             .where(d.c.id.in_(heads),
                    or_(and_(d.c.status == PENDING, d.c.next_attempt_at <= now),
                        and_(d.c.status == SENDING, d.c.lease_until < now)),
                    d.c.chat_id.not_in(bindparam("excluded", expanding=True)))
             .order_by(d.c.priority.desc(), d.c.id).limit(bindparam("limit")))
    # PostgreSQL: two workers never claim the same row (SQLite serializes writers anyway).
    return query.with_for_update(skip_locked=True, of=d) if locking else query


_DUE = _due_query(locking=False)
_DUE_LOCKED = _due_query(locking=True)


def _claimed(row: Any) -> Claimed:
    mapping = row._mapping
    return Claimed(**{name: mapping[name] for name in _COLUMNS})


def claim(core: Core, worker_id: str, limit: int, exclude_chats: Iterable[int] = (),
          now: datetime | None = None) -> list[Job]:
    """Take up to `limit` due deliveries (oldest per chat first, none of a chat with one in flight)."""
    with core.db.transaction() as s:
        return _claim(s, core, worker_id, limit, exclude_chats, now or core.clock.now())


def _claim(s: Session, core: Core, worker_id: str, limit: int, exclude_chats: Iterable[int],
           now: datetime) -> list[Job]:
    """Claim inside the caller's transaction (see `claim`)."""
    jobs: list[Job] = []
    if limit <= 0:
        return jobs
    postgres = s.get_bind().dialect.name == "postgresql"
    rows = s.connection().execute(_DUE_LOCKED if postgres else _DUE,
                                  {"now": now, "excluded": list(exclude_chats), "limit": limit}).all()
    claims: list[dict[str, Any]] = []
    for found in rows:
        row = _claimed(found)
        if found.officer_status is not None and found.officer_status != OfficerStatus.ACTIVE:
            _set_final(s, row, CANCELLED, "recipient revoked", None, now)
            continue
        job = _prepare(s, core, row)
        if job is None:
            continue
        row.status, row.claimed_by, row.lease_until = SENDING, worker_id, now + LEASE
        row.attempts += 1
        claims.append(row.changes())
        job.attempts = row.attempts
        jobs.append(job)
    if claims:
        s.connection().execute(_WRITE_BACK, claims[0] if len(claims) == 1 else claims)
    return jobs


def _prepare(s: Session, core: Core, row: Claimed) -> Job | None:
    """Turn a claimed row into a job: decrypted payload, reply target, the parts to edit or delete."""
    doc = _decode(core, row.payload_enc)
    job = Job(row.id, row.kind, row.ref_id, row.op, row.chat_id, row.recipient_id, row.lang, row.attempts, doc,
              target_id=row.target_id, reply_to=doc.get("reply_to"))
    if row.op == "send":
        if row.attempts:
            job.done_parts = [(m.message_id, m.part_kind) for m in s.execute(
                select(ChatMessage).where(ChatMessage.delivery_id == row.id).order_by(ChatMessage.part)).scalars()]
        if job.reply_to is None and doc.get("reply_ref"):
            ref_kind, ref_id = doc["reply_ref"]
            job.reply_to = s.execute(select(ChatMessage.message_id).where(
                ChatMessage.chat_id == row.chat_id, ChatMessage.kind == ref_kind, ChatMessage.ref_id == ref_id)
                .order_by(ChatMessage.part, ChatMessage.message_id).limit(1)).scalar_one_or_none()
        return job
    job.target_parts = [(m.message_id, m.part_kind) for m in s.execute(
        select(ChatMessage).where(ChatMessage.delivery_id == row.target_id).order_by(ChatMessage.part)).scalars()]
    if not job.target_parts:
        _set_final(s, row, CANCELLED, "the copy was never delivered", None, core.clock.now())
        return None
    return job


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Return the delay before retry number `attempt` (Telegram's retry_after wins when given)."""
    if retry_after is not None and retry_after > 0:
        return retry_after + 0.25
    delay = min(MAX_BACKOFF, BASE_BACKOFF * 2 ** max(0, attempt - 1))
    return delay * random.uniform(0.8, 1.2)


def finish(core: Core, worker_id: str, job: Job, outcome: Outcome) -> DeliveryEvent | None:
    """Record a job's outcome (status, new Telegram messages, audit event); None if the claim was lost."""
    events = finish_many(core, worker_id, [(job, outcome)])
    return events[0] if events else None


def finish_many(core: Core, worker_id: str, results: Sequence[tuple[Job, Outcome]]) -> list[DeliveryEvent]:
    """Record several outcomes in one transaction (the worker's group commit); return their events."""
    return finish_and_claim(core, worker_id, results)[0]


def finish_and_claim(core: Core, worker_id: str, results: Sequence[tuple[Job, Outcome]], claim_limit: int = 0,
                     exclude_chats: Iterable[int] = ()) -> tuple[list[DeliveryEvent], list[Job]]:
    """Record outcomes and, in the same transaction, claim up to `claim_limit` next due deliveries."""
    now = core.clock.now()
    events: list[DeliveryEvent] = []
    writes = _Writes()
    with core.db.transaction() as s:
        query = _SELECT_CLAIMED_LOCKED if s.get_bind().dialect.name == "postgresql" else _SELECT_CLAIMED
        rows = {row.id: row for row in map(_claimed, s.connection().execute(
            query, {"ids": [job.id for job, _o in results]}))}
        for job, outcome in results:
            row = rows.get(job.id)
            if row is None or row.status != SENDING or row.claimed_by != worker_id:
                logger.warning("delivery %s was taken over before it finished; not recording twice", job.id)
                continue
            events.append(_record_outcome(s, row, job, outcome, now, writes))
        writes.store(s)
        s.flush()
        jobs = _claim(s, core, worker_id, claim_limit, exclude_chats, now)
    return events, jobs


def _record_outcome(s: Session, row: Claimed, job: Job, outcome: Outcome, now: datetime,
                    writes: _Writes) -> DeliveryEvent:
    """Apply one outcome to its claimed row: map new Telegram messages, set the status, audit it.

    The new parts, the row's status and the audit event are gathered in `writes` (stored together).
    """
    if outcome.sent:
        if job.op == "send":
            start = len(job.done_parts)
            writes.parts.extend(
                {"chat_id": job.chat_id, "message_id": message_id, "kind": job.kind, "ref_id": job.ref_id,
                 "delivery_id": job.id, "part": start + offset, "part_kind": part_kind, "origin": False, "at": now}
                for offset, (message_id, part_kind) in enumerate(outcome.sent))
            if row.telegram_message_id is None:
                row.telegram_message_id = outcome.sent[0][0]
        else:
            start = s.execute(select(func.coalesce(func.max(ChatMessage.part), -1)).where(
                ChatMessage.delivery_id == job.target_id)).scalar_one() + 1
            for offset, (message_id, part_kind) in enumerate(outcome.sent):
                s.merge(ChatMessage(chat_id=job.chat_id, message_id=message_id, kind=job.kind, ref_id=job.ref_id,
                                    delivery_id=job.target_id, part=start + offset, part_kind=part_kind, at=now))
    if outcome.removed and job.op == "edit":
        s.execute(update(ChatMessage).where(ChatMessage.chat_id == job.chat_id,
                                            ChatMessage.message_id.in_(outcome.removed)).values(delivery_id=None))
    retry_at = None
    status, reason = outcome.status, outcome.reason
    if status == "retry" and row.attempts >= MAX_ATTEMPTS:
        status, reason = FAILED, f"gave up after {row.attempts} attempts: {reason}"
    if status == "retry":
        retry_at = now + timedelta(seconds=backoff_seconds(row.attempts, outcome.retry_after))
        row.status, row.reason, row.next_attempt_at = PENDING, reason, retry_at
        row.claimed_by = row.lease_until = None
        writes.rows.append(row.changes())
        writes.events.append(audit.Event(_event_kind(row.op, "retry"), None, row.case_tag,
                                         _event_data(row, retry_at=retry_at, retry_after=outcome.retry_after), now))
    else:
        _set_final(s, row, status, reason, None, now, writes)
    return DeliveryEvent(row.id, row.kind, row.ref_id, row.op, row.status, row.reason, row.recipient_id,
                         row.chat_id, row.lang, row.attempts, row.telegram_message_id, row.target_id, retry_at)


def release(core: Core, worker_id: str, job_ids: Sequence[int]) -> None:
    """Give back claimed jobs that were never started (worker stopping)."""
    if not job_ids:
        return
    with core.db.transaction() as s:
        s.execute(update(Delivery).where(Delivery.id.in_(list(job_ids)), Delivery.claimed_by == worker_id,
                                         Delivery.status == SENDING)
                  .values(status=PENDING, claimed_by=None, lease_until=None, attempts=Delivery.attempts - 1))


#: ids of the workers running in this process. A fact about the process (like its pid), needed to tell a
#: stopped worker's leftovers from a live sibling's when both carry this process's pid.
_LIVE_WORKERS: set[str] = set()


def release_stale_claims(core: Core, worker_id: str) -> int:
    """Release deliveries left 'sending' by a stopped worker on this host (a crashed process, a restart)."""
    host, pid, _token = worker_id.rsplit(":", 2)
    released = 0
    with core.db.transaction() as s:
        rows = s.execute(select(Delivery).where(Delivery.status == SENDING,
                                                Delivery.claimed_by.like(f"{host}:%"))).scalars()
        for row in rows:
            _h, other_pid, _t = (row.claimed_by or "::").rsplit(":", 2)
            alive = row.claimed_by in _LIVE_WORKERS if other_pid == pid else _pid_alive(other_pid)
            if row.claimed_by == worker_id or alive:
                continue
            logger.warning("delivery %s was in flight when its process stopped; sending it again", row.id)
            row.status, row.claimed_by, row.lease_until = PENDING, None, None
            released += 1
    return released


def _pid_alive(pid_text: str) -> bool:
    """Tell whether a process id is alive on this host."""
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


# --- rate limits ------------------------------------------------------------------------------------

#: set inside the worker's tasks: their Bot API calls were already counted by the worker's limiter
_IN_WORKER: ContextVar[bool] = ContextVar("liaison_delivery_worker_call", default=False)


def counted_call() -> bool:
    """Tell whether the current Bot API call comes from the delivery worker (already rate limited)."""
    return _IN_WORKER.get()


class RateLimiter:
    """Telegram's limits for one process: `rate` calls per sliding `window`, one per `chat_interval` per chat.

    The worker's calls go through `acquire`; the handlers' direct replies through `acquire_reply`,
    which waits only for a worker call just made to the same chat (a reply right after a user's
    command is not held back by the previous reply) and is counted, so the worker spaces its next
    copy to that chat after it. A small margin is added to both windows so that network jitter never
    makes Telegram count more calls in its own window than we did in ours.
    """

    def __init__(self, rate: int = 30, window: float = 1.0, chat_interval: float = 1.0, margin: float = 0.05,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.window, self.chat_interval = rate, window + margin, chat_interval + margin if chat_interval else 0.0
        self._clock = clock
        #: when each call in the window was counted (sorted); moved to its completion when it completes
        self._stamps: list[float] = []
        self._last: dict[int, float] = {}
        self._paused_until = 0.0
        self._chat_paused: dict[int, float] = {}
        self._refused: deque[tuple[float, int]] = deque()
        self._reply_last: dict[int, float] = {}

    def _chat_free_at(self, chat_id: int, *, reply: bool = False) -> float:
        """Return when the next call to a chat may go (replies ignore earlier replies)."""
        free = max(self._last.get(chat_id, -1e9) + self.chat_interval, self._chat_paused.get(chat_id, 0.0))
        if not reply:
            free = max(free, self._reply_last.get(chat_id, -1e9) + self.chat_interval)
        return free

    def _chats(self) -> set[int]:
        """Return every chat the limiter tracks."""
        return set(self._last) | set(self._chat_paused) | set(self._reply_last)

    def cooling_chats(self) -> set[int]:
        """Return the chats the worker may not send to right now."""
        now = self._clock()
        for stamps in (self._last, self._reply_last):
            for chat in [c for c, t in stamps.items() if t + self.chat_interval <= now]:
                del stamps[chat]
        for chat in [c for c, t in self._chat_paused.items() if t <= now]:
            del self._chat_paused[chat]
        return {c for c in self._chats() if self._chat_free_at(c) > now}

    def next_free(self) -> float | None:
        """Return seconds until the earliest cooling chat is free again (None when none is cooling)."""
        now = self._clock()
        times = [t for t in (self._chat_free_at(c) - now for c in self._chats()) if t > 0]
        return min(times) if times else None

    def wait_time(self, chat_id: int, *, reply: bool = False) -> float:
        """Return how long a call to this chat must wait now."""
        now = self._clock()
        expired = bisect.bisect_right(self._stamps, now - self.window)
        if expired:
            del self._stamps[:expired]
        wait = max(0.0, self._paused_until - now, self._chat_free_at(chat_id, reply=reply) - now)
        if self.rate and len(self._stamps) >= self.rate:
            wait = max(wait, self._stamps[0] + self.window - now)
        return wait

    async def acquire_reply(self, chat_id: int) -> float:
        """Wait until a handler's reply to this chat is allowed, then count it; return its stamp."""
        while True:
            wait = self.wait_time(chat_id, reply=True)
            if wait <= 0:
                now = self._clock()
                bisect.insort(self._stamps, now)
                self._reply_last[chat_id] = now
                return now
            await asyncio.sleep(wait)

    async def acquire(self, chat_id: int) -> float:
        """Wait until a call to this chat is allowed, then count it; return its stamp (for `finished`)."""
        while True:
            wait = self.wait_time(chat_id)
            if wait <= 0:
                now = self._clock()
                bisect.insort(self._stamps, now)
                self._last[chat_id] = now
                return now
            await asyncio.sleep(wait)

    def finished(self, chat_id: int, stamp: float | None = None, *, reply: bool = False) -> None:
        """Note that a call has completed: it counts from now on, in the chat and overall, since Telegram
        counts a call when it arrives, which under load can be well after we let it go."""
        now = self._clock()
        stamps = self._reply_last if reply else self._last
        stamps[chat_id] = max(stamps.get(chat_id, -1e9), now)
        if stamp is not None:
            index = bisect.bisect_left(self._stamps, stamp)
            if index < len(self._stamps) and self._stamps[index] == stamp:
                del self._stamps[index]
                bisect.insort(self._stamps, now)

    def pause(self, chat_id: int, seconds: float) -> None:
        """Honor a 429: nothing to this chat for `seconds`; when a second chat is refused within a second,
        the limit hit is the overall one, so everyone waits."""
        now = self._clock()
        self._chat_paused[chat_id] = max(self._chat_paused.get(chat_id, 0.0), now + seconds)
        while self._refused and self._refused[0][0] <= now - 1.0:
            self._refused.popleft()
        if any(chat != chat_id for _t, chat in self._refused):
            self._paused_until = max(self._paused_until, now + seconds)
        self._refused.append((now, chat_id))


# --- carrying out one job ---------------------------------------------------------------------------

@asynccontextmanager
async def _slot(limiter: RateLimiter, job: Job) -> AsyncIterator[None]:
    """Hold one rate-limited call to the job's chat: wait for it, mark the job started, note its end."""
    stamp = await limiter.acquire(job.chat_id)
    job.started = True
    try:
        yield
    finally:
        limiter.finished(job.chat_id, stamp)


async def perform(outbound: Outbound, limiter: RateLimiter, job: Job) -> Outcome:
    """Carry out a job against Telegram; never raises for Telegram errors (they become the outcome)."""
    sent: list[tuple[int, str]] = []
    removed: list[int] = []
    try:
        if job.op == "send":
            await _perform_send(outbound, limiter, job, sent)
        elif job.op == "edit":
            await _perform_edit(outbound, limiter, job, sent, removed)
        elif job.op == "delete":
            reason = await _perform_delete(outbound, limiter, job)
            return Outcome(SENT, reason)
        else:
            return Outcome(FAILED, f"unknown operation {job.op}")
    except SendError as exc:
        if exc.kind == "retry":
            if exc.retry_after:
                limiter.pause(job.chat_id, exc.retry_after)
            return Outcome("retry", exc.reason, exc.retry_after, sent, removed)
        if exc.kind == "blocked":
            return Outcome(BLOCKED, exc.reason, None, sent, removed)
        return Outcome(FAILED, f"{exc.kind}: {exc.reason}", None, sent, removed)
    return Outcome(SENT, None, None, sent, removed)


def _steps(doc: dict[str, Any]) -> list[tuple[str, str | None]]:
    """Return the Telegram messages a send consists of: (part kind, text) in order."""
    parts: list[str] = doc.get("parts", [])
    if "file" in doc:
        return [("caption", parts[0] if parts else None)] + [("text", p) for p in parts[1:]]
    steps: list[tuple[str, str | None]] = [("text", p) for p in parts]
    if "location" in doc or "contact" in doc:
        steps.append(("pin", None))
    return steps


async def _perform_send(outbound: Outbound, limiter: RateLimiter, job: Job, sent: list[tuple[int, str]]) -> None:
    """Send a copy's messages in order (continuing after those already sent)."""
    doc = job.doc
    steps = _steps(doc)
    buttons = _buttons(doc)
    protect, silent = bool(doc.get("protect")), bool(doc.get("silent"))
    last_with_buttons = max((i for i, (k, _t) in enumerate(steps) if k != "pin"), default=len(steps) - 1)
    for index in range(len(job.done_parts), len(steps)):
        kind, text = steps[index]
        reply = job.reply_to if index == 0 else None
        row_buttons = buttons if index == last_with_buttons else ()
        async with _slot(limiter, job):
            if kind == "caption":
                file_kind, file_id = doc["file"]
                message_id = await outbound.send_file(OutFile(
                    job.chat_id, file_kind, file_id=file_id, caption=text or None, buttons=row_buttons,
                    reply_to=reply, protect=protect))
            elif kind == "pin":
                message_id = await _send_pin(outbound, job.chat_id, doc, reply, protect)
            else:
                message_id = await outbound.send(OutMessage(job.chat_id, text or "", buttons=row_buttons,
                                                            reply_to=reply, protect=protect, silent=silent))
        sent.append((message_id, kind))


async def _send_pin(outbound: Outbound, chat_id: int, doc: dict[str, Any], reply: int | None,
                    protect: bool) -> int:
    """Send a location or contact pin."""
    if "location" in doc:
        latitude, longitude = doc["location"]
        return await outbound.send_location(chat_id, latitude, longitude, reply_to=reply, protect=protect)
    phone, first_name, last_name = doc["contact"]
    return await outbound.send_contact(chat_id, phone, first_name, last_name, reply_to=reply, protect=protect)


async def _perform_edit(outbound: Outbound, limiter: RateLimiter, job: Job, sent: list[tuple[int, str]],
                        removed: list[int]) -> None:
    """Edit a copy's messages; send extra parts, delete surplus ones."""
    parts: list[str] = job.doc.get("parts", [])
    buttons = _buttons(job.doc)
    editable = [(mid, kind) for mid, kind in job.target_parts if kind != "pin"]
    for index, (message_id, kind) in enumerate(editable):
        last = index == len(parts) - 1
        try:
            async with _slot(limiter, job):
                if index >= len(parts):
                    await outbound.delete(job.chat_id, message_id)
                elif kind == "caption":
                    await outbound.edit_caption(job.chat_id, message_id, parts[index] or None,
                                                buttons if last else None)
                else:
                    await outbound.edit(job.chat_id, message_id, parts[index], buttons if last else None)
        except SendError as exc:
            surplus_gone = index >= len(parts) and exc.kind in ("gone", "rejected")
            if exc.kind != "unchanged" and not surplus_gone:
                raise
        if index >= len(parts):
            removed.append(message_id)
    for extra in parts[len(editable):]:
        last = extra is parts[-1]
        async with _slot(limiter, job):
            message_id = await outbound.send(OutMessage(job.chat_id, extra, buttons=buttons if last else (),
                                                        protect=bool(job.doc.get("protect"))))
        sent.append((message_id, "text"))


async def _perform_delete(outbound: Outbound, limiter: RateLimiter, job: Job) -> str | None:
    """Delete a copy's messages, replacing those Telegram keeps with the fallback text."""
    fallback = job.doc.get("fallback")
    kept = 0
    for message_id, kind in job.target_parts:
        try:
            async with _slot(limiter, job):
                await outbound.delete(job.chat_id, message_id)
        except SendError as exc:
            if exc.kind not in ("gone", "rejected"):
                raise
            if "not found" in exc.reason.lower():
                continue
            kept += 1
            if fallback and kind != "pin":
                try:
                    async with _slot(limiter, job):
                        if kind == "caption":
                            await outbound.edit_caption(job.chat_id, message_id, fallback, None)
                        else:
                            await outbound.edit(job.chat_id, message_id, fallback, None)
                except SendError as inner:
                    if inner.kind not in ("gone", "rejected", "unchanged"):
                        raise
    if kept:
        return f"Telegram kept {kept} of {len(job.target_parts)} messages" + (" (text replaced)" if fallback else "")
    return None


# --- the worker ------------------------------------------------------------------------------------

class DeliveryWorker:
    """Claims due deliveries and carries them out concurrently within the rate limits, until stopped."""

    def __init__(self, core: Core, outbound: Outbound, *, rate: int = 30, chat_interval: float = 1.0,
                 concurrency: int = 8, poll_interval: float = 1.0, limiter: RateLimiter | None = None) -> None:
        self.core = core
        self.outbound = outbound
        self.limiter = limiter or RateLimiter(rate=rate, chat_interval=chat_interval)
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.worker_id = worker_identity()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        #: outcomes waiting to be recorded; one transaction records all that completed meanwhile
        self._outcomes: list[tuple[Job, Outcome, asyncio.Future[None]]] = []
        self._outcome_ready = asyncio.Event()
        self._recorder: asyncio.Task[None] | None = None
        #: True while the recorder commits a batch (stop waits for it)
        self._recording = False

    async def start(self) -> None:
        """Release this host's dead claims, then run the loop in the background."""
        _LIVE_WORKERS.add(self.worker_id)
        released = await asyncio.to_thread(release_stale_claims, self.core, self.worker_id)
        if released:
            logger.info("released %d deliveries left in flight by a stopped process", released)
        outbox(self.core).bind(asyncio.get_running_loop(), self._wake)
        self._recorder = asyncio.create_task(self._record_loop(), name="delivery-recorder")
        self._runner = asyncio.create_task(self._run(), name="delivery-worker")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming, let in-flight jobs finish for `grace` seconds, then cancel the rest.

        Jobs claimed while stopping are released, never started, and the recorder is cancelled only
        once every outcome of a call Telegram answered is committed: a copy is never sent by this
        process and then sent again by the next one because its outcome was lost.
        """
        self._stopping = True
        outbox(self.core).unbind()
        self._wake.set()
        if self._runner is not None:
            await asyncio.gather(self._runner, return_exceptions=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._tasks:
            remaining = deadline - loop.time()
            if remaining <= 0:
                pending = set(self._tasks)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                break
            await asyncio.wait(set(self._tasks), timeout=remaining)
        if self._recorder is not None:
            # outcomes of calls Telegram answered are recorded before stopping
            while (self._outcomes or self._recording) and not self._recorder.done():
                self._outcome_ready.set()
                await asyncio.sleep(0.01)
            self._recorder.cancel()
            await asyncio.gather(self._recorder, return_exceptions=True)
        _LIVE_WORKERS.discard(self.worker_id)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no delivery is pending or in flight (tests, benchmarks); TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._tasks and await asyncio.to_thread(outstanding, self.core) == 0:
                return
            self._wake.set()
            await asyncio.sleep(0.02)
        raise TimeoutError("deliveries still pending or in flight")

    async def _run(self) -> None:
        """Claim due deliveries whenever there is room, until stopped."""
        while not self._stopping:
            self._wake.clear()
            claimed = 0
            free = self.concurrency - len(self._tasks)
            if free > 0:
                try:
                    jobs = await asyncio.to_thread(claim, self.core, self.worker_id, free,
                                                   self.limiter.cooling_chats())
                except Exception:
                    logger.exception("could not claim deliveries; retrying shortly")
                    jobs = []
                    await asyncio.sleep(self.poll_interval)
                await self._launch(jobs)
                claimed = len(jobs)
            if claimed and len(self._tasks) < self.concurrency:
                continue
            timeout = self.poll_interval
            cooling = self.limiter.next_free()
            if cooling is not None:
                timeout = min(timeout, cooling)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            except TimeoutError:
                pass

    def _done(self, task: asyncio.Task[None]) -> None:
        """Forget a finished task and look for more work."""
        self._tasks.discard(task)
        if not self._stopping:
            self._wake.set()

    async def _carry_out(self, job: Job) -> None:
        """Carry out one job and hand its outcome to the recorder."""
        _IN_WORKER.set(True)  # this task's own context: the shared limiter lets its calls through
        try:
            outcome = await perform(self.outbound, self.limiter, job)
        except asyncio.CancelledError:
            if not job.started:
                await asyncio.to_thread(release, self.core, self.worker_id, [job.id])
            raise
        except Exception as exc:
            logger.exception("delivery %s failed unexpectedly", job.id)
            outcome = Outcome(FAILED, f"internal error: {type(exc).__name__}")
        recorded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outcomes.append((job, outcome, recorded))
        self._outcome_ready.set()
        await recorded  # the chat's next delivery may go once this one's status is committed

    async def _record_loop(self) -> None:
        """Record outcomes as they come: whatever completed while the last commit ran goes in the next."""
        while True:
            await self._outcome_ready.wait()
            self._outcome_ready.clear()
            while self._outcomes:
                self._recording = True
                batch, self._outcomes = self._outcomes[:200], self._outcomes[200:]
                # The chats of these outcomes become free: claim their next copies in the same commit.
                free = 0 if self._stopping else self.concurrency - len(self._tasks) + len(batch)
                events, jobs = await self._record([(job, outcome) for job, outcome, _f in batch], free)
                for _job, _outcome, recorded in batch:
                    if not recorded.done():
                        recorded.set_result(None)
                await self._launch(jobs)
                for event in events:
                    await notify(self.core, event)
            self._recording = False

    async def _record(self, batch: list[tuple[Job, Outcome]], free: int) -> tuple[list[DeliveryEvent], list[Job]]:
        """Commit a batch of outcomes; if that fails, one by one, so one bad outcome cannot hold the rest."""
        try:
            return await asyncio.to_thread(finish_and_claim, self.core, self.worker_id, batch, free,
                                           self.limiter.cooling_chats())
        except Exception:
            logger.exception("could not record %d delivery outcomes together; recording them one by one", len(batch))
        events: list[DeliveryEvent] = []
        for job, outcome in batch:
            try:
                events += await asyncio.to_thread(finish_many, self.core, self.worker_id, [(job, outcome)])
            except Exception:
                logger.exception("could not record the outcome of delivery %s; it will be retried", job.id)
        return events, []

    async def _launch(self, jobs: list[Job]) -> None:
        """Start carrying out claimed jobs (or give them back when stopping)."""
        if jobs and self._stopping:
            await asyncio.to_thread(release, self.core, self.worker_id, [job.id for job in jobs])
            return
        for job in jobs:
            task = asyncio.create_task(self._carry_out(job), name=f"delivery-{job.id}")
            self._tasks.add(task)
            task.add_done_callback(self._done)


async def notify(core: Core, event: DeliveryEvent) -> None:
    """Give an event to the subscribers of its kind; a failing subscriber is logged, never raised."""
    for callback in outbox(core).subscribers(event.kind):
        try:
            result = callback(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("a delivery status subscriber failed for delivery %s", event.id)


def with_reply(payload: Payload, *, reply_to: int | None = None, reply_ref: tuple[str, int] | None = None) -> Payload:
    """Return a payload that replies to a Telegram message or to this chat's copy of a record."""
    return replace(payload, reply_to=reply_to, reply_ref=reply_ref)
