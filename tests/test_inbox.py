"""The inbox of fetched updates: stored encrypted before confirmation, replayed at start, given up when poisonous.

The end-to-end proof (SIGKILL with a fetched update waiting behind a slow handler) is in
tests/relay/test_e2e.py; these tests cover the pieces on the real database.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from telegram.error import NetworkError

from bot import audit, inbox, vetting
from bot.clock import FakeClock
from bot.core import Core
from bot.models import AuditEvent, InboxUpdate
from handlers.inbox import InboxRequest
from tests.support.telegram import RecordingRequest


def _update(update_id: int, text: str = "明天下午三点") -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_790_000_000, "chat": {"id": 42, "type": "private"},
        "from": {"id": 42, "is_bot": False, "first_name": "Wang"}, "text": text}}


def test_store_keeps_each_update_once_and_encrypted(core: Core) -> None:
    """Updates are stored once (a refetch of the same answer adds nothing), their text never in clear."""
    assert inbox.store(core, [_update(1), _update(2)]) == 2
    assert inbox.store(core, [_update(2), _update(3)]) == 1
    with core.db.session() as s:
        rows = s.execute(select(InboxUpdate).order_by(InboxUpdate.update_id)).scalars().all()
    assert [r.update_id for r in rows] == [1, 2, 3]
    assert all("明天".encode() not in r.payload_enc and b"update_id" not in r.payload_enc for r in rows)
    assert inbox.pending_count(core) == 3


def test_replay_returns_unhandled_updates_in_order_and_prune_removes_handled(core: Core) -> None:
    """What the gate recorded as handled is neither replayed nor kept; the rest comes back oldest first."""
    inbox.store(core, [_update(12), _update(10), _update(11)])
    assert vetting.admit(core, 11, None) == (True, None)  # the gate handled update 11
    assert [u["update_id"] for u in inbox.replay(core)] == [10, 12]
    assert inbox.replay(core)[0] == _update(10)  # the update exactly as the Bot API sent it
    assert inbox.prune(core) == 1 and inbox.pending_count(core) == 2


def test_a_poison_update_is_given_up_after_max_replays_and_audited(core: Core) -> None:
    """An update replayed MAX_REPLAYS times without being handled is dropped, with an audit event."""
    inbox.store(core, [_update(7)])
    for _ in range(inbox.MAX_REPLAYS):
        assert [u["update_id"] for u in inbox.replay(core)] == [7]
    assert inbox.replay(core) == []
    assert inbox.pending_count(core) == 0
    with core.db.session() as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.kind == "update.abandoned")).scalar_one()
    data = json.loads(event.data)
    assert (data["update"], data["replays"], data["reason"]) == (7, inbox.MAX_REPLAYS, "replayed too often")
    assert audit.verify_chain(core.db).ok


def test_an_old_update_is_not_replayed(core: Core) -> None:
    """An update stored longer ago than MAX_AGE is given up rather than acted on days late."""
    clock = FakeClock()
    core.clock = clock
    inbox.store(core, [_update(5)])
    clock.advance(inbox.MAX_AGE + timedelta(minutes=1))
    assert inbox.replay(core) == []
    with core.db.session() as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.kind == "update.abandoned")).scalar_one()
    assert json.loads(event.data)["reason"] == "too old"


async def test_the_fetching_request_stores_before_returning(core: Core) -> None:
    """A getUpdates answer is in the inbox when the request hands it on; other calls are left alone."""
    inner = RecordingRequest(updates=[_update(31), _update(32)])
    request = InboxRequest(inner)
    request.bind(lambda: core)
    code, body = await request.do_request("https://api.example/botTOKEN/getUpdates", "POST")
    assert code == 200 and [u["update_id"] for u in json.loads(body)["result"]] == [31, 32]
    assert inbox.pending_count(core) == 2
    await request.do_request("https://api.example/botTOKEN/sendMessage", "POST")  # not an update answer
    assert inbox.pending_count(core) == 2 and [c.method for c in inner.calls] == ["getUpdates", "sendMessage"]


async def test_an_answer_that_cannot_be_stored_is_not_handed_on(core: Core) -> None:
    """If the database refuses the updates, the request fails as a network error: python-telegram-bot
    does not confirm them and fetches them again after a pause, so nothing is lost."""
    request = InboxRequest(RecordingRequest(updates=[_update(41)]))
    request.bind(lambda: core)
    with core.db.transaction() as s:  # a real failure: the table is gone
        s.execute(text("DROP TABLE inbox_updates"))
    with pytest.raises(NetworkError, match="could not store fetched updates"):
        await request.do_request("https://api.example/botTOKEN/getUpdates", "POST")
