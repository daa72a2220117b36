"""The inbox: every fetched Telegram update is stored (encrypted) before it is confirmed to Telegram.

python-telegram-bot confirms the updates of one `getUpdates` answer at its next poll, moments later and
long before slow handlers are done with them; a process killed in between would lose those updates
for good. So the answer is stored here first (`store`, called by the request that fetches updates),
and at start every stored update the gate has not recorded as handled is put back in the queue
(`replay`). The gate's redelivery check (`processed_updates`) keeps a replayed update from being
handled twice. An update that keeps failing is replayed at most `MAX_REPLAYS` times, then given up
(audited). Handled updates leave the inbox at the next `prune`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select

from bot import audit
from bot.core import Core
from bot.db import insert_new
from bot.models import InboxUpdate, ProcessedUpdate
from bot.models.relay import column_aad

logger = logging.getLogger(__name__)

#: replays of one update after restarts before it is given up (a poison update must not loop forever)
MAX_REPLAYS = 3
#: unhandled updates older than this are not replayed (Telegram itself keeps updates 24 hours)
MAX_AGE = timedelta(days=2)
_AAD = column_aad("inbox_updates", "payload_enc")
_INBOX = InboxUpdate.__table__
_PROCESSED = ProcessedUpdate.__table__
#: insert, skipping updates stored already (a refetched answer), in one statement per dialect
_INSERT_NEW = insert_new(_INBOX, "update_id")


def store(core: Core, updates: Sequence[dict[str, Any]]) -> int:
    """Store fetched updates (raw Bot API dicts) not stored yet; return how many were new. Blocking."""
    if not updates:
        return 0
    now = core.clock.now()
    rows = [{"update_id": u["update_id"], "received_at": now, "replays": 0,
             "payload_enc": core.cipher.encrypt(json.dumps(u, ensure_ascii=False, separators=(",", ":")), _AAD)}
            for u in updates]
    with core.db.transaction() as s:
        conn = s.connection()
        return len(conn.execute(_INSERT_NEW[conn.dialect.name], rows[0] if len(rows) == 1 else rows).all())


def replay(core: Core) -> list[dict[str, Any]]:
    """Return the stored updates not handled yet, oldest first, counting this replay. Blocking.

    Updates replayed `MAX_REPLAYS` times already, or older than `MAX_AGE`, are given up: removed from
    the inbox, each with an "update.abandoned" audit event.
    """
    now = core.clock.now()
    out: list[dict[str, Any]] = []
    with core.db.transaction() as s:
        rows = s.execute(select(InboxUpdate).outerjoin(ProcessedUpdate, ProcessedUpdate.update_id == InboxUpdate.update_id)
                         .where(ProcessedUpdate.update_id.is_(None)).order_by(InboxUpdate.update_id)).scalars().all()
        for row in rows:
            if row.replays >= MAX_REPLAYS or row.received_at < now - MAX_AGE:
                reason = "replayed too often" if row.replays >= MAX_REPLAYS else "too old"
                logger.error("giving up update %s (%s); it was never handled", row.update_id, reason)
                audit.record(s, "update.abandoned", at=now, data={
                    "update": row.update_id, "replays": row.replays, "reason": reason,
                    "received_at": row.received_at})
                s.delete(row)
                continue
            text = core.cipher.decrypt(row.payload_enc, _AAD)
            if not text:  # purged by retention: nothing left to replay
                s.delete(row)
                continue
            row.replays += 1
            out.append(json.loads(text))
    return out


def prune(core: Core) -> int:
    """Remove handled updates from the inbox; return how many. Blocking."""
    with core.db.transaction() as s:
        handled = select(_PROCESSED.c.update_id).where(_PROCESSED.c.update_id == _INBOX.c.update_id).exists()
        return int(s.execute(delete(_INBOX).where(handled)).rowcount or 0)


def clear(core: Core) -> int:
    """Forget every stored update (the sandbox, whose new emulator numbers updates from 1 again)."""
    with core.db.transaction() as s:
        return int(s.execute(delete(_INBOX)).rowcount or 0)


def pending_count(core: Core) -> int:
    """Return how many stored updates are not handled yet."""
    handled = select(_PROCESSED.c.update_id).where(_PROCESSED.c.update_id == _INBOX.c.update_id).exists()
    with core.db.session() as s:
        return int(s.execute(select(func.count()).select_from(_INBOX).where(~handled)).scalar_one())
