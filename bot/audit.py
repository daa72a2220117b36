"""The audit trail: append-only events, each hashed together with the hash of the one before."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64


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


def event_content(
    seq: int, at: datetime, kind: str, actor_id: int | None, case_tag: str | None, data: str
) -> bytes:
    """Return the canonical bytes of an event, as hashed."""
    return canonical_json(
        {"seq": seq, "at": format_time(at), "kind": kind, "actor": actor_id, "case": case_tag, "data": data}
    ).encode("utf-8")


def chain_hash(prev_hash: str, content: bytes) -> str:
    """Return SHA-256(previous hash ‖ canonical content) as hex."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + content).hexdigest()


@dataclass(frozen=True)
class Recorded:
    """What `record` appended."""

    seq: int
    hash: str


def lock_head(session: Session) -> AuditHead:
    """Lock the chain head for this transaction (row lock on PostgreSQL, write lock on SQLite)."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    return head


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
    head = lock_head(session)
    at = (at or datetime.now(UTC)).astimezone(UTC)
    # Round to microseconds the way every database stores them, so the hash is reproducible.
    at = at.replace(microsecond=at.microsecond)
    payload = canonical_json(data or {})
    seq = head.seq + 1
    digest = chain_hash(head.hash, event_content(seq, at, kind, actor_id, case_tag, payload))
    session.add(
        AuditEvent(
            seq=seq,
            at=at,
            kind=kind,
            actor_id=actor_id,
            case_tag=case_tag,
            data=payload,
            prev_hash=head.hash,
            hash=digest,
        )
    )
    head.seq, head.hash = seq, digest
    session.flush()
    return Recorded(seq, digest)
