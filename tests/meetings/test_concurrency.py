"""Exactly once with two schedulers on one database: two processes' worth of engines ticking at once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from bot import meetings, reminders
from bot.clock import FakeClock
from bot.core import Core
from bot.models.meetings import ActionOwner, MeetingMessage
from tests.meetings.conftest import People

OWNERS = 30
ITEMS = 12


def _setup(mcore: Core, people: People) -> int:
    """A coordinator and 30 officers of the three countries; 12 items with 3-4 owners each."""
    coord = people.add("coord_ly", "VN", "coordinator")
    names = []
    for i in range(OWNERS):
        country = ("CN", "LA", "VN")[i % 3]
        names.append(people.add(f"officer_{i}", country).username)
    items = tuple(
        meetings.ItemDraft(
            f"Follow-up action {n}",
            tuple(f"@{names[(n * 3 + k) % OWNERS]}" for k in range(3 + n % 2)),
            "2026-08-30",
        )
        for n in range(ITEMS)
    )
    meetings.record_meetings(
        mcore, coord, [meetings.MeetingDraft("Joint review", "2026-07-30", language="en", items=items)]
    )
    with mcore.db.session() as s:
        return int(s.execute(select(func.count()).select_from(ActionOwner)).scalar_one())


def _race(cores: list[Core], rounds: list[datetime], clock: FakeClock) -> list[list[reminders.Outgoing]]:
    """Let every core tick (small batches, until nothing is due) at the same moment, round after round."""
    claimed: list[list[reminders.Outgoing]] = [[] for _ in cores]
    errors: list[BaseException] = []
    for when in rounds:
        clock.set(when)
        barrier = threading.Barrier(len(cores))

        def work(i: int, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait()
                while batch := reminders.tick(cores[i], limit=7):
                    claimed[i].extend(batch)
            except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(cores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
    return claimed


def test_two_schedulers_send_each_reminder_once(mcore: Core, people: People, clock: FakeClock) -> None:
    """Two schedulers with their own connections tick concurrently over a month: no message twice."""
    owners = _setup(mcore, people)
    other = Core.build(mcore.settings, translator=mcore.translator, clock=clock, catalogs=mcore.catalogs)
    try:
        rounds = [datetime(2026, 8, 1, 0, 0, tzinfo=UTC)]  # the 'assigned' notices
        rounds += [datetime(2026, 8, day, hour, tzinfo=UTC) for day in (23, 29, 30, 31) for hour in (1, 2)]
        rounds += [datetime(2026, 9, 2, 2, tzinfo=UTC)]
        first, second = _race([mcore, other], rounds, clock)
    finally:
        other.close()
    ids = [o.message_id for o in first + second]
    assert len(ids) == len(set(ids)), "a message was claimed twice"
    if mcore.db.dialect == "postgresql":
        # SKIP LOCKED lets both work side by side; SQLite serializes writers, so there one thread may
        # legitimately win every round (the no-duplicate assertions above are what matter there).
        assert first and second, "both schedulers should have claimed work"
    kinds = Counter(o.kind for o in first + second)
    # per owner: assigned + 7 days + 1 day + due date + 3 days overdue; one escalation per item
    assert kinds["assigned"] == owners and kinds["reminder"] == 4 * owners and kinds["escalation"] == ITEMS
    per_owner = Counter((o.owner_id, o.kind) for o in first + second if o.kind == "reminder")
    assert set(per_owner.values()) == {4}
    with mcore.db.session() as s:
        dupes = s.execute(
            select(MeetingMessage.dedupe, func.count())
            .group_by(MeetingMessage.dedupe)
            .having(func.count() > 1)
        ).all()
    assert dupes == []


def test_skip_locked_claims_around_rows_another_process_holds(
    mcore: Core, people: People, clock: FakeClock
) -> None:
    """On PostgreSQL a tick skips owner rows another transaction has locked instead of waiting for them."""
    if mcore.db.dialect != "postgresql":
        pytest.skip(
            "SKIP LOCKED row claims need PostgreSQL (SQLite serializes writers instead; tested above)"
        )
    owners = _setup(mcore, people)
    clock.set(datetime(2026, 8, 23, 3, tzinfo=UTC))  # every owner's "7 days before" is due
    reminders.tick(mcore, limit=1000)  # the assigned notices and the first reminders of everyone
    clock.set(datetime(2026, 8, 29, 3, tzinfo=UTC))
    with mcore.db.engine.connect() as holder:
        locked = list(
            holder.execute(text("SELECT id FROM action_owners ORDER BY id LIMIT 10 FOR UPDATE")).scalars()
        )
        result: list[list[reminders.Outgoing]] = []
        worker = threading.Thread(target=lambda: result.append(reminders.tick(mcore, limit=1000)))
        worker.start()
        worker.join(timeout=20)
        assert not worker.is_alive(), "the tick waited for locked rows instead of skipping them"
        got = {o.owner_id for o in result[0] if o.kind == "reminder"}
        assert len(got) == owners - 10 and not got & set(locked)
        holder.rollback()
    later = {o.owner_id for o in reminders.tick(mcore, limit=1000) if o.kind == "reminder"}
    assert later == set(locked)
    clock.advance(timedelta(minutes=1))
    assert [o for o in reminders.tick(mcore, limit=1000) if o.kind == "reminder"] == []
