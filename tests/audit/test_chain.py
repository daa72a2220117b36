"""The hash chain: building, canonical form, verification, and every kind of tampering detected."""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot import audit
from bot.core import Core
from bot.models import AuditEvent, AuditHead
from tests.audit.conftest import append, sql


def _events(core: Core) -> list[AuditEvent]:
    with core.db.session() as s:
        return list(s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars())


def test_chain_links_each_event_to_the_previous(core: Core) -> None:
    """Seq runs 1..n, each prev_hash is the previous hash, each hash is SHA-256(prev ‖ canonical content)."""
    at = datetime(2026, 8, 1, 3, 4, 5, 123456, tzinfo=UTC)
    with core.db.transaction() as s:
        first = audit.record(
            s,
            "message.sent",
            actor_id=7,
            case_tag="CN-VN-2026-0042",
            data={"body": audit.body_hash("ສະບາຍດີ"), "n": 1},
            at=at,
        )
        second = audit.record(s, "delivery.sent", data={"z": "中文", "a": None}, at=at + timedelta(seconds=1))
    events = _events(core)
    assert [e.seq for e in events] == [1, 2] and (first.seq, second.seq) == (1, 2)
    assert events[0].prev_hash == audit.GENESIS_HASH and events[1].prev_hash == first.hash
    content = (
        '{"actor":7,"at":"2026-08-01T03:04:05.123456Z","case":"CN-VN-2026-0042",'
        '"data":' + json.dumps(events[0].data, ensure_ascii=False) + ',"kind":"message.sent","seq":1}'
    )
    import hashlib

    assert first.hash == hashlib.sha256(bytes(32) + content.encode()).hexdigest() == events[0].hash
    assert events[1].data == '{"a":null,"z":"中文"}'
    with core.db.session() as s:
        head = s.get(AuditHead, 1)
        assert head is not None and (head.seq, head.hash) == (2, second.hash)


def test_fast_content_equals_canonical_json() -> None:
    """The hand-written canonical form is byte-identical to canonical_json() for awkward values."""
    rng = random.Random(5)
    alphabet = [
        '"',
        "\\",
        "\n",
        "\t",
        "\x00",
        "\x1f",
        "\u2028",
        "é",
        "中",
        "ລ",
        "ệ",
        "😀",
        "/",
        "<",
        " ",
        "a",
        "{",
    ]
    for _ in range(2000):

        def word() -> str:
            return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))

        data = audit.canonical_json({word(): word(), "n": rng.randint(-5, 10**12)})
        actor = rng.choice([None, 0, 1, 2**40])
        case = rng.choice([None, word()])
        at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randint(0, 10**14))
        kind = word()
        seq = rng.randint(1, 10**12)
        expected = audit.canonical_json(
            {
                "seq": seq,
                "at": audit.format_time(at),
                "kind": kind,
                "actor": actor,
                "case": case,
                "data": data,
            }
        ).encode("utf-8")
        assert audit.event_content(seq, at, kind, actor, case, data) == expected


def test_verify_intact_chain(core: Core) -> None:
    """An untouched chain verifies: 'intact, N events, head hash …'."""
    append(core, 25)
    result = audit.verify_chain(core.db, batch=7)
    assert result.ok and result.events == 25 and result.last_seq == 25
    assert result.summary() == f"intact, 25 events, head hash {audit.chain_head(core.db).hash}"
    empty_ok = result.head_seq == 25
    assert empty_ok


def test_verify_empty_chain(core: Core) -> None:
    """A fresh installation's chain is intact with 0 events and the genesis hash."""
    result = audit.verify_chain(core.db)
    assert result.ok and result.events == 0 and result.last_hash == audit.GENESIS_HASH


def test_edited_content_is_detected(core: Core) -> None:
    """Changing an event's data in the database: hash mismatch at that event, content named as changed."""
    append(core, 10)
    sql(core, "UPDATE audit_events SET data = :d WHERE seq = 4", d='{"i":999}')
    result = audit.verify_chain(core.db)
    assert not result.ok
    brk = result.breaks[0]
    assert (brk.seq, brk.problem) == (4, "hash-mismatch")
    assert "content" in brk.detail and "changed after it was recorded" in brk.detail
    assert result.events == 3  # stopped at the first break


@pytest.mark.parametrize(
    "column,value", [("kind", "invite.cancelled"), ("actor_id", 99), ("case_tag", "X-1"), ("at", None)]
)
def test_each_field_is_covered_by_the_hash(core: Core, column: str, value: object) -> None:
    """Time, kind, actor and case are all hashed: editing any of them breaks the chain there."""
    append(core, 5)
    if column == "at":
        with core.db.transaction() as s:
            s.get(AuditEvent, 3).at += timedelta(microseconds=1)  # type: ignore[union-attr]
    else:
        sql(core, f"UPDATE audit_events SET {column} = :v WHERE seq = 3", v=value)
    brk = audit.verify_chain(core.db).breaks[0]
    assert (brk.seq, brk.problem) == (3, "hash-mismatch")


def test_rewritten_event_with_fresh_hash_breaks_the_next_link(core: Core) -> None:
    """An event edited and re-hashed consistently: the next event's link gives it away."""
    append(core, 6)
    ev = _events(core)[2]
    data = '{"i":-1}'
    new_hash = audit.chain_hash(
        ev.prev_hash, audit.event_content(3, ev.at, ev.kind, ev.actor_id, ev.case_tag, data)
    )
    sql(core, "UPDATE audit_events SET data = :d, hash = :h WHERE seq = 3", d=data, h=new_hash)
    brk = audit.verify_chain(core.db).breaks[0]
    assert (brk.seq, brk.problem) == (4, "prev-link")
    assert new_hash in brk.detail


def test_deleted_event_is_a_gap(core: Core) -> None:
    """Deleting a row in the middle: a gap naming the missing event."""
    append(core, 8)
    sql(core, "DELETE FROM audit_events WHERE seq = 5")
    brk = audit.verify_chain(core.db).breaks[0]
    assert (brk.seq, brk.problem) == (5, "gap")
    assert "event 5 missing" in brk.detail


def test_deleted_and_renumbered_is_a_broken_link(core: Core) -> None:
    """Deleting a row and renumbering the rest to hide the gap: the link at that point is broken."""
    append(core, 8)
    sql(core, "DELETE FROM audit_events WHERE seq = 5")
    for seq in range(6, 9):
        sql(core, "UPDATE audit_events SET seq = :new WHERE seq = :old", new=seq - 1, old=seq)
    sql(core, "UPDATE audit_head SET seq = 7")
    brk = audit.verify_chain(core.db).breaks[0]
    assert brk.seq == 5 and brk.problem == "prev-link"


def test_reordered_events_are_detected(core: Core) -> None:
    """Swapping two events' places: reported as reordered, with the seq the content was recorded as."""
    append(core, 8)
    sql(core, "UPDATE audit_events SET seq = -1 WHERE seq = 4")
    sql(core, "UPDATE audit_events SET seq = 4 WHERE seq = 5")
    sql(core, "UPDATE audit_events SET seq = 5 WHERE seq = -1")
    brk = audit.verify_chain(core.db).breaks[0]
    assert (brk.seq, brk.problem) == (4, "reordered")
    assert "recorded as event 5" in brk.detail


def test_deleted_tail_is_noticed_through_the_head_row(core: Core) -> None:
    """Deleting the newest events leaves a consistent chain, but the head row disagrees."""
    append(core, 6)
    sql(core, "DELETE FROM audit_events WHERE seq > 4")
    result = audit.verify_chain(core.db)
    brk = result.breaks[0]
    assert brk.problem == "head-mismatch" and "5..6 were deleted" in brk.detail
    assert result.events == 4


def test_head_row_edited_is_noticed(core: Core) -> None:
    """The head row's hash disagreeing with the last event is reported."""
    append(core, 3)
    sql(core, "UPDATE audit_head SET hash = :h", h="ab" * 32)
    brk = audit.verify_chain(core.db).breaks[0]
    assert brk.problem == "head-mismatch" and "ab" * 32 in brk.detail


def test_anchor_catches_a_wholesale_rewrite(core: Core) -> None:
    """A chain rebuilt from scratch is self-consistent; a hash pinned earlier reveals it."""
    append(core, 4)
    pinned = {2: _events(core)[1].hash}
    rows = _events(core)
    prev = audit.GENESIS_HASH
    for ev in rows:  # rewrite every event with fresh, valid hashes
        data = ev.data.replace("999", "0") if ev.seq != 2 else '{"forged":true}'
        h = audit.chain_hash(
            prev, audit.event_content(ev.seq, ev.at, ev.kind, ev.actor_id, ev.case_tag, data)
        )
        sql(
            core,
            "UPDATE audit_events SET data = :d, prev_hash = :p, hash = :h WHERE seq = :s",
            d=data,
            p=prev,
            h=h,
            s=ev.seq,
        )
        prev = h
    sql(core, "UPDATE audit_head SET hash = :h", h=prev)
    assert audit.verify_chain(core.db).ok
    brk = audit.verify_chain(core.db, anchors=pinned).breaks[0]
    assert (brk.seq, brk.problem) == (2, "anchor")


def test_all_breaks_are_listed_when_asked(core: Core) -> None:
    """With max_breaks > 1 verification goes on past the first break."""
    append(core, 10)
    sql(core, "UPDATE audit_events SET data = '{}' WHERE seq IN (3, 8)")
    result = audit.verify_chain(core.db, max_breaks=10)
    assert [(b.seq, b.problem) for b in result.breaks] == [(3, "hash-mismatch"), (8, "hash-mismatch")]
    assert result.events == 10


def test_record_rolls_back_with_the_action(core: Core) -> None:
    """An event belongs to its transaction: a failed action leaves no event and the head unchanged."""
    append(core, 2)
    with pytest.raises(RuntimeError), core.db.transaction() as s:
        audit.record(s, "x.y")
        raise RuntimeError("action failed")
    assert audit.chain_head(core.db).seq == 2
    assert audit.verify_chain(core.db).ok


def test_appends_in_one_transaction_and_a_rolled_back_savepoint(core: Core) -> None:
    """The head read once per transaction is not trusted past a savepoint rollback that undid appends."""
    with core.db.transaction() as s:
        audit.record(s, "t.one")
        audit.record(s, "t.two")  # reuses the head the first append locked
        with pytest.raises(RuntimeError), s.begin_nested():
            audit.record(s, "t.undone")
            audit.record(s, "t.undone")
            raise RuntimeError("inner step failed")
        third = audit.record(s, "t.three")
        with s.begin_nested():
            audit.record(s, "t.kept")
        fifth = audit.record(s, "t.five")
    assert (third.seq, fifth.seq) == (3, 5)
    assert [(e.seq, e.kind) for e in _events(core)] == [(1, "t.one"), (2, "t.two"), (3, "t.three"),
                                                        (4, "t.kept"), (5, "t.five")]
    assert audit.verify_chain(core.db).ok
    with core.db.transaction() as s:  # a new transaction reads the committed head again
        assert audit.record(s, "t.six").seq == 6
    assert audit.chain_head(core.db).seq == 6 and audit.verify_chain(core.db).ok


def test_two_threads_append_without_fork_or_gap(core: Core) -> None:
    """Concurrent appends from two threads (SQLite: serialized writers; PostgreSQL: head row lock)."""
    errors: list[BaseException] = []

    def worker(tag: str) -> None:
        try:
            for i in range(60):
                with core.db.transaction() as s:
                    audit.record(s, "test.thread", data={"t": tag, "i": i})
        except BaseException as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = audit.verify_chain(core.db)
    assert result.ok and result.events == 120
    seqs = [e.seq for e in _events(core)]
    assert seqs == list(range(1, 121))


def test_database_builds_the_same_canonical_form(core: Core) -> None:
    """The database builds the same canonical bytes as Python for verification, awkward text included."""
    awkward = [
        '"quoted" \\ back',
        "tab\tnew\nline\r\x00\x01\x1f",
        "\u2028 \u2029 / < > &",
        "ສະບາຍດີ 你好 Việt 😀",
        "",
        "\x7f\x80 é",
    ]
    with core.db.transaction() as s:
        for i, text in enumerate(awkward):
            plain = text.replace("\x00", "")  # PostgreSQL text cannot hold NUL (inside data it is \u0000)
            audit.record(
                s, f"k.{plain[:3]}", actor_id=i or None, case_tag=plain or None, data={"t": text, text: i}
            )
    with audit.read_snapshot(core.db) as conn:
        built = [r for rows in audit.content_batches(conn) for r in rows]
        raw = [r for rows in audit.raw_event_batches(conn) for r in rows]
    assert len(built) == len(awkward)
    for (seq, content, _prev, _hash), row in zip(built, raw, strict=True):
        assert content.encode() == audit.raw_content(row), seq
    assert audit.verify_chain(core.db).ok


def test_python_has_the_last_word(
    core: Core, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Were the database's canonical form ever different, events are rechecked in Python, not reported."""
    append(core, 5)
    monkeypatch.setattr(audit, "_SQLITE_CONTENT", "'x' || seq")
    monkeypatch.setattr(audit, "_PG_CONTENT", "'x' || seq::text")
    result = audit.verify_chain(core.db)
    assert result.ok and result.events == 5
    assert "differs from Python's" in caplog.text
    sql(core, "UPDATE audit_events SET data = '{}' WHERE seq = 3")
    assert audit.verify_chain(core.db).breaks[0].seq == 3
