"""The broadcast service on a real database: scope, preview, confirm once, acks, re-sends, refusals."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot import broadcasts, delivery
from bot.clock import FakeClock
from bot.core import Core
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.models import AuditEvent
from bot.models.broadcasts import Broadcast
from bot.models.relay import Delivery, Room, RoomMember
from tests.broadcasts.conftest import People
from tests.support.translators import TagTranslator


def _kinds(core: Core) -> list[str]:
    with core.db.session() as s:
        return list(s.execute(select(AuditEvent.kind).order_by(AuditEvent.seq)).scalars())


def _copies(core: Core, kind: str = broadcasts.KIND) -> list[Delivery]:
    with core.db.session() as s:
        rows = list(s.execute(select(Delivery).where(Delivery.kind == kind).order_by(Delivery.id)).scalars())
        s.expunge_all()
        return rows


def _case(core: Core, tag: str, *officer_ids: int) -> None:
    now = core.clock.now()
    with core.db.transaction() as s:
        room = Room(case_tag=tag, kind="case", handling="H0", created_at=now)
        s.add(room)
        s.flush()
        s.add_all([RoomMember(room_id=room.id, officer_id=i, joined_at=now) for i in officer_ids])


@pytest.mark.parametrize(("text", "normal"), [
    ("all", "all"),
    ("everyone", "all"),
    ("country:VN", "country:VN"),
    ("country: la , vn", "country:LA,VN"),
    ('agency:"Customs"', "agency:Customs"),
    ("agency:“Forest Inspection”", 'agency:"Forest Inspection"'),
    ("case:#cn-vn-2026-0042", "case:CN-VN-2026-0042"),
    ("country:VN+case:CN-VN-2026-0042", "country:VN+case:CN-VN-2026-0042"),
    ("country:VN & agency:Customs + country:CN", "country:VN&agency:Customs+country:CN"),
])
def test_scope_grammar(text: str, normal: str) -> None:
    """Every documented form parses, and prints back in the normalized form."""
    assert broadcasts.parse_scope(text).text() == normal


@pytest.mark.parametrize("text", ["", "vn", "country:", "country:VN+", "agency:\"Customs", "all:VN", "nation:VN"])
def test_bad_scopes_are_refused(text: str) -> None:
    """Malformed scopes raise InvalidInput (never an empty or wrong audience)."""
    with pytest.raises(InvalidInput):
        broadcasts.parse_scope(text)


def test_scope_prefix_leaves_the_text() -> None:
    """`/broadcast country:VN+case:X Shipment at …` separates the scope from the alert's text."""
    scope, rest = broadcasts.parse_scope_prefix("country:VN + case:CN-VN-1 Truck 29C-123 heading to Lao Cai")
    assert scope.text() == "country:VN+case:CN-VN-1"
    assert rest == "Truck 29C-123 heading to Lao Cai"


def test_resolution_union_intersection_case_and_revoked(core: Core, people: People) -> None:
    """Countries, agencies, cases and their combinations pick the right active officers, never the author."""
    boss = people.add("Boss", "VN", "coordinator")
    cn = people.add("Li", "CN")
    la = people.add("Souk", "LA")
    vn_customs = people.add("Lan", "VN")
    vn_police = people.add("Minh", "VN", agency="Police")
    gone = people.add("Gone", "VN")
    _case(core, "CN-VN-2026-0042", cn.id, vn_police.id, gone.id)
    from bot import vetting
    vetting.revoke(core, None, f"id:{gone.id}")

    def ids(text: str) -> set[int]:
        with core.db.session() as s:
            return {o.id for o in broadcasts.resolve(s, broadcasts.parse_scope(text), exclude=boss.id)}

    assert ids("all") == {cn.id, la.id, vn_customs.id, vn_police.id}
    assert ids("country:VN") == {vn_customs.id, vn_police.id}
    assert ids("country:LA,CN") == {cn.id, la.id}
    assert ids('agency:"customs"') == {cn.id, vn_customs.id}
    assert ids("country:VN&agency:Customs") == {vn_customs.id}
    assert ids("case:CN-VN-2026-0042") == {cn.id, vn_police.id}
    assert ids("country:LA+case:CN-VN-2026-0042") == {la.id, cn.id, vn_police.id}
    for unknown in ("agency:Navy", "case:XX-1", "country:TH"):
        with pytest.raises(InvalidInput):
            ids(unknown)


def test_preview_translates_once_per_language(core: Core, people: People, translator: TagTranslator) -> None:
    """The preview counts recipients per country and holds the text in each language, translated once each."""
    boss = people.add("Boss", "VN", "coordinator", language="en")
    people.many(3)
    preview = broadcasts.draft(core, boss, "all", "Shipment of pangolin scales at Lao Cai")
    assert preview.total == 9 and preview.by_country == {"CN": 3, "LA": 3, "VN": 3}
    assert preview.texts == {lang: f"[{lang}] Shipment of pangolin scales at Lao Cai" for lang in ("lo", "vi", "zh")}
    assert [c[2] for c in translator.calls] == [("lo", "vi", "zh")]
    assert _copies(core) == []  # nothing is sent before the confirmation


def test_confirm_sends_exactly_once(core: Core, people: People) -> None:
    """Confirm queues one copy per recipient with an Acknowledge button; a second confirm does nothing."""
    boss = people.add("Boss", "LA", "coordinator")
    officers = people.many(2)
    preview = broadcasts.draft(core, boss, "all", "Check trucks", status_chat_id=boss.telegram_id)
    first = broadcasts.confirm(core, boss, preview.id)
    second = broadcasts.confirm(core, boss, preview.id)
    assert (first.queued, first.already) == (6, False)
    assert second.already and second.queued == 0
    copies = _copies(core)
    assert sorted(c.recipient_id for c in copies) == sorted(o.id for o in officers)
    assert {c.lang for c in copies} == {"zh", "lo", "vi"}
    assert len(_copies(core, broadcasts.STATUS_KIND)) == 1
    assert not broadcasts.cancel(core, boss, preview.id)
    kinds = _kinds(core)
    assert kinds.count("broadcast.confirmed") == 1 and kinds.count("broadcast.drafted") == 1


def test_concurrent_confirms_send_once(core: Core, people: People) -> None:
    """Two presses arriving together (two threads, two transactions) still queue every copy once."""
    boss = people.add("Boss", "CN", "coordinator")
    people.many(2)
    preview = broadcasts.draft(core, boss, "all", "Two presses")
    results: list[broadcasts.Confirmation] = []
    threads = [threading.Thread(target=lambda: results.append(broadcasts.confirm(core, boss, preview.id)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.already for r in results) == [False, True]
    assert len(_copies(core)) == 6


def test_cancelled_draft_cannot_be_sent(core: Core, people: People) -> None:
    """A cancelled preview stays unsent."""
    boss = people.add("Boss", "CN", "coordinator")
    people.many(1)
    preview = broadcasts.draft(core, boss, "all", "Never mind")
    assert broadcasts.cancel(core, boss, preview.id)
    assert broadcasts.confirm(core, boss, preview.id).already
    assert _copies(core) == []


def test_bad_input(core: Core, people: People) -> None:
    """Empty text, nobody in scope, a bad priority and an unknown broadcast are refused with clear errors."""
    boss = people.add("Boss", "VN", "coordinator")
    people.add("Lan", "VN")
    for text, scope, priority, msgid in [("   ", "all", "normal", broadcasts.NO_TEXT),
                                         ("Hi", "country:CN", "normal", broadcasts.NOBODY),
                                         ("Hi", "all", "panic", broadcasts.BAD_PRIORITY),
                                         ("x" * (broadcasts.MAX_TEXT + 1), "all", "normal", broadcasts.TOO_LONG)]:
        with pytest.raises(InvalidInput) as caught:
            broadcasts.draft(core, boss, scope, text, priority=priority)
        assert caught.value.message == msgid
    with pytest.raises(NotFound):
        broadcasts.confirm(core, boss, 999)


def test_non_coordinator_is_refused_and_audited(core: Core, people: People) -> None:
    """An officer cannot draft, confirm or read reports; each refusal is an audit event."""
    boss = people.add("Boss", "VN", "coordinator")
    officer = people.add("Lan", "VN")
    people.add("Minh", "VN")
    with pytest.raises(NotAllowed):
        broadcasts.draft(core, officer, "all", "I am not allowed")
    preview = broadcasts.draft(core, boss, "all", "Real alert")
    with pytest.raises(NotAllowed):
        broadcasts.confirm(core, officer, preview.id)
    with pytest.raises(NotAllowed):
        broadcasts.report(core, officer, preview.id)
    assert _kinds(core).count("broadcast.refused") == 3
    assert _copies(core) == []


def test_revoked_after_preview_never_receives(core: Core, people: People) -> None:
    """An officer revoked between preview and confirm gets no copy."""
    from bot import vetting

    boss = people.add("Boss", "VN", "coordinator")
    keep, gone = people.add("Lan", "VN"), people.add("Minh", "VN")
    preview = broadcasts.draft(core, boss, "country:VN", "Check")
    vetting.revoke(core, None, f"id:{gone.id}")
    result = broadcasts.confirm(core, boss, preview.id)
    assert result.queued == 1
    assert [c.recipient_id for c in _copies(core)] == [keep.id]


def test_acknowledgments_are_recorded_once(core: Core, people: People) -> None:
    """An ack is stored with its time and audited once; the report lists who did and who did not."""
    boss = people.add("Boss", "VN", "coordinator")
    lan, minh = people.add("Lan", "VN"), people.add("Minh", "VN")
    preview = broadcasts.draft(core, boss, "all", "Ack me")
    broadcasts.confirm(core, boss, preview.id)
    ack = broadcasts.acknowledge(core, lan, preview.id)
    again = broadcasts.acknowledge(core, lan, preview.id)
    assert not ack.already and again.already and again.at == ack.at
    with pytest.raises(NotFound):
        broadcasts.acknowledge(core, boss, preview.id)  # the author is not a recipient
    rep = broadcasts.report(core, boss, preview.id)
    assert [r.officer.id for r in rep.acked] == [lan.id]
    assert [r.officer.id for r in rep.not_acked] == [minh.id]
    assert _kinds(core).count("broadcast.acknowledged") == 1


@pytest.fixture
def fake_clock(core: Core) -> FakeClock:
    """Put the core on a clock the test moves."""
    clock = FakeClock(core.clock.now())
    core.clock = clock
    return clock


def test_urgent_resend_reaches_exactly_the_non_acknowledgers(core: Core, people: People,
                                                             fake_clock: FakeClock) -> None:
    """After the delay, non-acknowledgers get a reminder; at most twice; acks and revocations stop it."""
    from bot import vetting

    boss = people.add("Boss", "VN", "coordinator")
    a, b, c, d = (people.add(n, "VN") for n in ("A", "B", "C", "D"))
    normal = broadcasts.draft(core, boss, "all", "Normal one")
    broadcasts.confirm(core, boss, normal.id)
    preview = broadcasts.draft(core, boss, "all", "Urgent one", priority="urgent")
    broadcasts.confirm(core, boss, preview.id)
    _finish_all(core)
    broadcasts.acknowledge(core, a, preview.id)
    fake_clock.advance(timedelta(minutes=29))
    assert broadcasts.tick(core) == []
    fake_clock.advance(timedelta(minutes=2))
    (first,) = broadcasts.tick(core)
    assert first.broadcast_id == preview.id and set(first.officer_ids) == {b.id, c.id, d.id}
    assert broadcasts.tick(core) == []  # not twice for the same round
    _finish_all(core)
    broadcasts.acknowledge(core, b, preview.id)
    vetting.revoke(core, None, f"id:{d.id}")
    fake_clock.advance(timedelta(minutes=31))
    (second,) = broadcasts.tick(core)
    assert second.round == 2 and second.officer_ids == (c.id,)
    fake_clock.advance(timedelta(hours=5))
    assert broadcasts.tick(core) == []  # at most twice
    resends = _copies(core, broadcasts.RESEND_KIND)
    assert sorted(r.recipient_id for r in resends) == sorted([b.id, c.id, d.id, c.id])
    assert _kinds(core).count("broadcast.resent") == 2


def test_two_processes_resend_once(core: Core, people: People, fake_clock: FakeClock) -> None:
    """Ticks running at the same time in several threads (as two processes would) re-send once."""
    boss = people.add("Boss", "VN", "coordinator")
    people.many(2)
    preview = broadcasts.draft(core, boss, "all", "Race", priority="urgent")
    broadcasts.confirm(core, boss, preview.id)
    _finish_all(core)
    fake_clock.advance(timedelta(minutes=31))
    results: list[list[broadcasts.Resent]] = []
    threads = [threading.Thread(target=lambda: results.append(broadcasts.resend_due(core))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(r) for r in results) == 1
    assert len(_copies(core, broadcasts.RESEND_KIND)) == 6


def test_finish_turns_progress_into_the_report(core: Core, people: People) -> None:
    """When no copy is pending the broadcast is done once, with its counts, and the report is queued."""
    boss = people.add("Boss", "VN", "coordinator")
    people.many(1)
    preview = broadcasts.draft(core, boss, "all", "Done?", status_chat_id=boss.telegram_id)
    broadcasts.confirm(core, boss, preview.id)
    assert not broadcasts.update_progress(core, preview.id)
    _finish_all(core, kinds=(broadcasts.KIND,))
    assert broadcasts.finish_stale(core) == [preview.id]
    assert broadcasts.finish_stale(core) == []
    with core.db.session() as s:
        assert s.get(Broadcast, preview.id).status == "done"  # type: ignore[union-attr]
        n = s.execute(select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == "broadcast.finished"))
        assert n.scalar_one() == 1


def _finish_all(core: Core, kinds: tuple[str, ...] = (broadcasts.KIND, broadcasts.RESEND_KIND)) -> None:
    """Mark every pending copy of these kinds sent (as the worker would) without Telegram."""
    now = core.clock.now()
    with core.db.transaction() as s:
        for row in s.execute(select(Delivery).where(Delivery.kind.in_(kinds),
                                                    Delivery.status == delivery.PENDING)).scalars():
            row.status, row.finished_at = delivery.SENT, now
