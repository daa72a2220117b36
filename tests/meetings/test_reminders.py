"""The reminder schedule on a controllable clock: time zones, catch-up, snooze, done, escalation, digest,
revoked and blocked owners, retries — the database decides, the tick only claims."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot import meetings, reminders, vetting
from bot.clock import FakeClock
from bot.core import Core
from bot.errors import Conflict, NotAllowed
from bot.models import AuditEvent
from bot.models.meetings import ActionOwner, MeetingMessage, OwnerState
from bot.outbound import SendError
from tests.meetings.conftest import START, RecordingOutbound, Team, one_meeting

DUE = date(2026, 8, 30)


def utc(*args: int) -> datetime:
    """Return a UTC instant."""
    return datetime(*args, tzinfo=UTC)


def _events(core: Core, prefix: str = "meeting.") -> list[AuditEvent]:
    with core.db.session() as s:
        return list(
            s.execute(
                select(AuditEvent).where(AuditEvent.kind.startswith(prefix)).order_by(AuditEvent.seq)
            ).scalars()
        )


async def _run(core: Core, outbound: RecordingOutbound) -> reminders.DeliveryReport:
    return await reminders.Runner(core, outbound, pace=0).run_once()


def _reminders_to(outbound: RecordingOutbound, chat_id: int) -> list[str]:
    return [m.text for m in outbound.to(chat_id) if "#" in m.text and "📋" not in m.text]


def test_schedule_slots_in_utc_plus_7_and_plus_8() -> None:
    """7 days and 1 day before, on the due date, then every 3 days — each at 09:00 local time."""
    sched = reminders.DEFAULT_SCHEDULE
    for tz, hour_utc in (("Asia/Shanghai", 1), ("Asia/Vientiane", 2), ("Asia/Ho_Chi_Minh", 2)):
        at, seen = START, []
        for _ in range(6):
            at = sched.next_reminder(DUE, tz, 9, at)
            seen.append(at)
        assert seen == [
            utc(2026, 8, 23, hour_utc),
            utc(2026, 8, 29, hour_utc),
            utc(2026, 8, 30, hour_utc),
            utc(2026, 9, 2, hour_utc),
            utc(2026, 9, 5, hour_utc),
            utc(2026, 9, 8, hour_utc),
        ], tz
    # an item assigned two days before it is due starts at "1 day before"
    assert sched.next_reminder(DUE, "Asia/Shanghai", 9, utc(2026, 8, 28, 3)) == utc(2026, 8, 29, 1)
    # a per-officer override (Bangkok is UTC+7 too, Tokyo UTC+9) and another reminder hour
    assert sched.next_reminder(DUE, "Asia/Tokyo", 8, START) == utc(2026, 8, 22, 23)
    assert sched.next_escalation(DUE, "Asia/Shanghai", 9, START) == utc(2026, 8, 31, 1)
    assert sched.next_escalation(DUE, "Asia/Shanghai", 9, utc(2026, 8, 31, 1)) == utc(2026, 9, 7, 1)
    assert reminders.last_digest_slot("Asia/Vientiane", 9, utc(2026, 8, 10, 1)) == utc(2026, 8, 3, 2)
    assert reminders.last_digest_slot("Asia/Vientiane", 9, utc(2026, 8, 10, 2)) == utc(2026, 8, 10, 2)


async def test_reminders_follow_each_owners_time_zone(
    mcore: Core, team: Team, outbound: RecordingOutbound, clock: FakeClock
) -> None:
    """Walking the clock hour by hour, each owner is reminded at 09:00 in their own time zone."""
    one_meeting(mcore, team.coordinator, ("@chen_jing", "@khamla_s", "@nguyen_an"))
    await _run(mcore, outbound)  # the 'assigned' notices
    assert {m.chat_id for m in outbound.sent} == {
        team.cn.telegram_id,
        team.la.telegram_id,
        team.vn.telegram_id,
    }
    outbound.clear()
    seen: dict[int, list[datetime]] = {}
    clock.set(utc(2026, 8, 22, 0))
    while clock.now() <= utc(2026, 9, 6, 0):
        before = len(outbound.sent)
        await _run(mcore, outbound)
        for m in outbound.sent[before:]:
            if m.chat_id != team.coordinator.telegram_id:
                seen.setdefault(m.chat_id, []).append(clock.now())
        clock.advance(timedelta(hours=1))
    cn = [
        utc(2026, 8, 23, 1),
        utc(2026, 8, 29, 1),
        utc(2026, 8, 30, 1),
        utc(2026, 9, 2, 1),
        utc(2026, 9, 5, 1),
    ]
    plus7 = [t + timedelta(hours=1) for t in cn]
    assert seen[team.cn.telegram_id] == cn
    assert seen[team.la.telegram_id] == plus7
    assert seen[team.vn.telegram_id] == plus7
    lao = _reminders_to(outbound, team.la.telegram_id)
    lo, vi = mcore.catalogs.get("lo"), mcore.catalogs.get("vi")
    assert lao[0].startswith(lo(reminders.DUE_IN_DAYS, id=1, n=7, due="30 ສິງຫາ 2026"))
    assert "[lo] Draft the plan" in lao[0]
    assert lao[1].startswith(lo(reminders.DUE_TOMORROW, id=1, due="30 ສິງຫາ 2026"))
    assert lao[2].startswith(lo(reminders.DUE_TODAY, id=1, due="30 ສິງຫາ 2026"))
    vn = _reminders_to(outbound, team.vn.telegram_id)
    assert vn[3].startswith(vi(reminders.OVERDUE, id=1, due="30 tháng 8, 2026", n=3))
    assert "quá hạn" in vn[3] and "3 ngày" in vn[3]
    zh = _reminders_to(outbound, team.cn.telegram_id)
    assert "2026年8月30日" in zh[0] and "[zh] Draft the plan" in zh[0]
    assert all(
        m.buttons and [b.data for b in m.buttons[0]] == ["mi:done:1", "mi:snz:1", "mi:help:1"]
        for m in outbound.sent
        if m.chat_id == team.la.telegram_id
    )


async def test_catch_up_after_downtime_sends_one_reminder(
    mcore: Core, team: Team, outbound: RecordingOutbound, clock: FakeClock
) -> None:
    """Down across three slots, the bot sends ONE reminder at start (the latest state), then the schedule."""
    one_meeting(mcore, team.coordinator, ("@khamla_s",))
    await _run(mcore, outbound)
    outbound.clear()
    mcore.close()
    # "restart" after a week and a half of downtime: a new process, same database
    clock.set(utc(2026, 8, 31, 5, 17))
    restarted = Core.build(mcore.settings, translator=mcore.translator, clock=clock, catalogs=mcore.catalogs)
    try:
        for _ in range(3):  # the first tick at start, then a few more minutes
            await _run(restarted, outbound)
            clock.advance(timedelta(minutes=1))
        texts = _reminders_to(outbound, team.la.telegram_id)
        assert len(texts) == 1
        assert "ມື້ວານນີ້" in texts[0]  # "overdue: it was due yesterday"
        clock.set(utc(2026, 9, 2, 2))  # the next slot: D+3 at 09:00 in Vientiane
        await _run(restarted, outbound)
        assert len(_reminders_to(outbound, team.la.telegram_id)) == 2
    finally:
        restarted.close()


async def test_snooze_holds_reminders_for_a_day(
    mcore: Core, team: Team, outbound: RecordingOutbound, clock: FakeClock
) -> None:
    """Snooze: nothing for 24 hours, then one reminder, then the normal schedule."""
    rec = one_meeting(mcore, team.coordinator, ("@chen_jing",))
    item_id = rec.items[0].id
    clock.set(utc(2026, 8, 23, 1))
    await _run(mcore, outbound)
    assert len(_reminders_to(outbound, team.cn.telegram_id)) == 1
    clock.set(utc(2026, 8, 23, 1, 5))
    until = meetings.snooze(mcore, team.cn, item_id)
    assert until == utc(2026, 8, 24, 1, 5)
    with pytest.raises(NotAllowed):
        meetings.snooze(mcore, team.la, item_id)
    clock.set(utc(2026, 8, 24, 1, 4))
    await _run(mcore, outbound)
    assert len(_reminders_to(outbound, team.cn.telegram_id)) == 1
    clock.set(utc(2026, 8, 24, 1, 5))
    await _run(mcore, outbound)
    texts = _reminders_to(outbound, team.cn.telegram_id)
    assert len(texts) == 2 and "6" in texts[1]  # due in 6 days
    clock.set(utc(2026, 8, 29, 1))
    await _run(mcore, outbound)
    assert len(_reminders_to(outbound, team.cn.telegram_id)) == 3
    snoozed = [json.loads(e.data) for e in _events(mcore, "meeting.item.snoozed")]
    assert snoozed == [{"item_id": item_id, "owner_id": 1, "until": "2026-08-24T01:05:00.000000Z"}]


async def test_done_stops_reminders_and_tells_the_coordinator(
    mcore: Core, team: Team, outbound: RecordingOutbound, clock: FakeClock
) -> None:
    """Once an owner marks an item done, nobody is reminded and the coordinator hears of it once."""
    rec = one_meeting(mcore, team.coordinator, ("@chen_jing", "@khamla_s"), case="CN-LA-2026-0007")
    item_id = rec.items[0].id
    with pytest.raises(NotAllowed):
        meetings.complete(mcore, team.vn, item_id)  # not an owner
    view = meetings.complete(mcore, team.la, item_id)
    assert view.status == "done"
    with pytest.raises(Conflict):
        meetings.complete(mcore, team.cn, item_id)
    await _run(mcore, outbound)
    to_coord = outbound.to(team.coordinator.telegram_id)
    assert len(to_coord) == 1 and "Khamla S @khamla_s" in to_coord[0].text
    assert "✅" in to_coord[0].text
    outbound.clear()
    for day in range(20, 40):
        clock.set(START + timedelta(days=day, hours=1, minutes=30))
        await _run(mcore, outbound)
    assert [m for m in outbound.sent if "#1" in m.text and m.chat_id != team.coordinator.telegram_id] == []
    completed = _events(mcore, "meeting.item.completed")
    assert len(completed) == 1 and completed[0].case_tag == "CN-LA-2026-0007"
    assert completed[0].actor_id == team.la.id


async def test_overdue_items_are_escalated_to_the_coordinator(
    mcore: Core, team: Team, outbound: RecordingOutbound, clock: FakeClock
) -> None:
    """The day after the due date, then weekly, the coordinator is told, in their language (Chinese)."""
    one_meeting(mcore, team.coordinator, ("@khamla_s", "@nguyen_an"))
    clock.set(utc(2026, 8, 31, 0, 59))
    await _run(mcore, outbound)
    assert not [m for m in outbound.to(team.coordinator.telegram_id) if "⚠️" in m.text]
    for minute in range(0, 3):
        clock.set(utc(2026, 8, 31, 1, minute))
        await _run(mcore, outbound)
    escalations = [m.text for m in outbound.to(team.coordinator.telegram_id) if "⚠️" in m.text]
    assert len(escalations) == 1
    assert (
        "2026年8月30日" in escalations[0] and "@khamla_s" in escalations[0] and "@nguyen_an" in escalations[0]
    )
    assert "逾期" in escalations[0]
    clock.set(utc(2026, 9, 7, 1))
    await _run(mcore, outbound)
    assert len([m for m in outbound.to(team.coordinator.telegram_id) if "⚠️" in m.text]) == 2
    assert len(_events(mcore, "meeting.item.escalated")) == 2


async def test_weekly_digest_for_coordinators(
    mcore: Core,
    team: Team,
    people,
    outbound: RecordingOutbound,  # type: ignore[no-untyped-def]
    clock: FakeClock,
) -> None:
    """Monday 09:00 in the coordinator's zone: open, overdue and completed per meeting, once a week."""
    lao_coord = people.add("souk_p", "LA", "coordinator")
    d1 = meetings.MeetingDraft(
        title="Tripartite meeting",
        held_on="2026-07-30",
        language="en",
        items=(
            meetings.ItemDraft("Set up the provincial channel", ("@khamla_s",), "2026-08-05"),
            meetings.ItemDraft("Share the seizure list", ("@nguyen_an",), "2026-08-20"),
            meetings.ItemDraft("Draft the task force plan", ("@chen_jing",), "2026-09-30"),
        ),
    )
    d2 = meetings.MeetingDraft(
        title="Border post follow-up",
        held_on="2026-07-31",
        language="en",
        items=(meetings.ItemDraft("Check the permits", ("@khamla_s",), "2026-09-01"),),
    )
    first, second = meetings.record_meetings(mcore, lao_coord, [d1, d2])
    meetings.complete(mcore, team.vn, first.items[1].id)
    await _run(mcore, outbound)
    clock.set(utc(2026, 8, 3, 2, 0))  # Monday 3 August, 09:00 in Vientiane: the first digest
    await _run(mcore, outbound)
    assert len([m for m in outbound.to(lao_coord.telegram_id) if "📊" in m.text]) == 1
    outbound.clear()
    # Monday 10 August, 09:00 in Vientiane = 02:00 UTC
    clock.set(utc(2026, 8, 10, 1, 59))
    await _run(mcore, outbound)
    assert not [m for m in outbound.to(lao_coord.telegram_id) if "📊" in m.text]
    clock.set(utc(2026, 8, 10, 2, 0))
    await _run(mcore, outbound)
    clock.set(utc(2026, 8, 10, 2, 1))
    await _run(mcore, outbound)
    digests = [m.text for m in outbound.to(lao_coord.telegram_id) if "📊" in m.text]
    assert len(digests) == 1
    lo = mcore.catalogs.get("lo")
    digest = digests[0]
    assert lo(reminders.DIGEST_COUNTS, open=2, overdue=1, done=1, week=0) in digest  # done on 1 August
    assert lo(reminders.DIGEST_COUNTS, open=1, overdue=0, done=0, week=0) in digest
    assert "#1" in digest and "@khamla_s" in digest and "[lo] Set up the provincial channel" in digest
    assert digest.index("Border post") < digest.index("Tripartite")  # newest meeting first
    # the Chinese coordinator has no meeting of their own: no digest
    assert not [m for m in outbound.to(team.coordinator.telegram_id) if "📊" in m.text]
    clock.set(utc(2026, 8, 17, 2, 0))
    await _run(mcore, outbound)
    assert len([m for m in outbound.to(lao_coord.telegram_id) if "📊" in m.text]) == 2
    assert second.id and len(_events(mcore, "meeting.digest.sent")) == 3


async def test_revoked_owner_stops_receiving_and_coordinator_is_told(
    mcore: Core, team: Team, outbound: RecordingOutbound, clock: FakeClock
) -> None:
    """A revoked owner gets nothing more; the coordinator learns who is left, then that nobody is."""
    rec = one_meeting(mcore, team.coordinator, ("@khamla_s", "@nguyen_an"))
    item_id = rec.items[0].id
    await _run(mcore, outbound)
    outbound.clear()
    vetting.revoke(mcore, None, "@khamla_s")
    clock.set(utc(2026, 8, 23, 2))
    await _run(mcore, outbound)
    assert _reminders_to(outbound, team.la.telegram_id) == []
    assert len(_reminders_to(outbound, team.vn.telegram_id)) == 1
    to_coord = [m.text for m in outbound.to(team.coordinator.telegram_id) if "📊" not in m.text]
    assert len(to_coord) == 1 and "@khamla_s" in to_coord[0] and "@nguyen_an" in to_coord[0]
    vetting.revoke(mcore, None, "@nguyen_an")
    clock.set(utc(2026, 8, 23, 2, 1))
    await _run(mcore, outbound)
    to_coord = [m.text for m in outbound.to(team.coordinator.telegram_id) if "📊" not in m.text]
    assert len(to_coord) == 2 and "/item 1 owners" in to_coord[1]
    zh = mcore.catalogs.get("zh")
    assert to_coord[1] == zh(
        reminders.NO_OWNER,
        id=item_id,
        meeting="[zh] Tripartite meeting on wildlife trafficking",
        name="Nguyen An @nguyen_an",
    )
    with mcore.db.session() as s:
        states = set(s.execute(select(ActionOwner.state)).scalars())
    assert states == {OwnerState.INACTIVE}
    # the coordinator reassigns: the new owner is told and reminded
    meetings.change_item(mcore, team.coordinator, item_id, owners=["@chen_jing"])
    await _run(mcore, outbound)
    assert "📋" in outbound.to(team.cn.telegram_id)[-1].text


async def test_blocked_owner_and_retry_after_rate_limit(
    mcore: Core, team: Team, outbound: RecordingOutbound, clock: FakeClock
) -> None:
    """403 stops the owner's reminders and tells the coordinator; 429 releases the claim, sent once later."""
    one_meeting(mcore, team.coordinator, ("@khamla_s", "@nguyen_an"))
    outbound.failures[team.la.telegram_id] = [SendError("blocked", "Forbidden: bot was blocked by the user")]
    outbound.failures[team.vn.telegram_id] = [
        SendError("retry", "rate limited (429)", retry_after=30),
        SendError("retry", "unused"),
    ]
    report = await _run(mcore, outbound)
    assert (report.blocked, report.released) == (1, 1)
    outbound.failures.pop(team.vn.telegram_id)
    await _run(mcore, outbound)  # not before retry_after
    assert outbound.to(team.vn.telegram_id) == []
    clock.advance(timedelta(seconds=30))
    await _run(mcore, outbound)
    await _run(mcore, outbound)
    assert len(outbound.to(team.vn.telegram_id)) == 1
    blocked = [m.text for m in outbound.to(team.coordinator.telegram_id)]
    assert len(blocked) == 1 and "@khamla_s" in blocked[0]
    clock.set(utc(2026, 8, 23, 2))
    outbound.failures.clear()
    await _run(mcore, outbound)
    assert outbound.to(team.la.telegram_id) == []  # blocked: no more reminders
    assert len(outbound.to(team.vn.telegram_id)) == 2


async def test_a_claim_of_a_dead_process_is_never_resent(
    mcore: Core, team: Team, outbound: RecordingOutbound, clock: FakeClock
) -> None:
    """A process that claimed and died may or may not have sent: the claim expires, nothing is resent."""
    one_meeting(mcore, team.coordinator, ("@khamla_s",))
    claimed = reminders.tick(mcore)
    assert [o.kind for o in claimed] == ["assigned"]
    clock.advance(reminders.CLAIM_LEASE + timedelta(seconds=1))
    await _run(mcore, outbound)
    assert outbound.sent == []
    with mcore.db.session() as s:
        assert s.execute(select(MeetingMessage.status)).scalar_one() == "unknown"


async def test_reminders_are_audited_and_texts_encrypted(
    mcore: Core, team: Team, outbound: RecordingOutbound, clock: FakeClock
) -> None:
    """Each sent reminder is an audit event (body by hash); no item text is stored in clear."""
    secret = "Intercept the shipment of pangolin scales at Mong Cai"
    one_meeting(mcore, team.coordinator, ("@nguyen_an",), text=secret, case="CN-VN-2026-0042")
    clock.set(utc(2026, 8, 23, 2))
    await _run(mcore, outbound)
    sent = [e for e in _events(mcore) if e.kind == "meeting.reminder.sent"]
    assert len(sent) == 1 and sent[0].case_tag == "CN-VN-2026-0042"
    data = json.loads(sent[0].data)
    reminder = next(m for m in outbound.to(team.vn.telegram_id) if m.text.startswith("⏰"))
    assert data["body_sha256"] == reminders.audit.body_hash(reminder.text)
    kinds = [e.kind for e in _events(mcore)]
    assert kinds[:2] == ["meeting.created", "meeting.item.created"]
    with mcore.db.session() as s:
        dump = b"".join(bytes(str(r), "utf-8") for r in s.execute(select(AuditEvent.data)).scalars())
    assert b"pangolin" not in dump
    raw = mcore.db.engine.raw_connection()
    try:
        cur = raw.cursor()
        for table in ("meetings", "action_items", "meeting_texts"):
            cur.execute(f"SELECT * FROM {table}")
            for row in cur.fetchall():
                assert not any(isinstance(v, (bytes, memoryview)) and b"pangolin" in bytes(v) for v in row)
                assert not any(isinstance(v, str) and "pangolin" in v for v in row)
    finally:
        raw.close()


async def test_a_message_that_keeps_hitting_429_is_given_up(
    mcore: Core, team: Team, outbound: RecordingOutbound, clock: FakeClock
) -> None:
    """Only the message that was tried counts attempts; after MAX_ATTEMPTS it fails, the others go out once."""
    one_meeting(mcore, team.coordinator, ("@khamla_s", "@nguyen_an"))
    outbound.failures[team.la.telegram_id] = [SendError("retry", "Too Many Requests", retry_after=5)]
    for _ in range(reminders.MAX_ATTEMPTS + 2):
        await _run(mcore, outbound)
        clock.advance(timedelta(seconds=5))
    assert len(outbound.to(team.vn.telegram_id)) == 1 and outbound.to(team.la.telegram_id) == []
    with mcore.db.session() as s:
        rows = dict(s.execute(select(MeetingMessage.officer_id, MeetingMessage.status)).all())
        attempts = s.execute(
            select(MeetingMessage.attempts).where(MeetingMessage.officer_id == team.la.id)
        ).scalar()
    assert rows == {team.la.id: "failed", team.vn.id: "sent"} and attempts == reminders.MAX_ATTEMPTS
