"""The outbox and its worker: store before send, retries, rate limits, ordering, exactly-once claims."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import delivery, vetting
from bot.core import Core
from bot.models import AuditEvent
from bot.models.relay import ChatMessage, Delivery
from bot.outbound import Button, SendError
from tests.relay.conftest import FakeOutbound, register


def _enqueue(core: Core, chats: list[int], text: str = "hello", kind: str = "notice", **kw) -> list[int]:  # type: ignore[no-untyped-def]
    with core.db.transaction() as s:
        rows = delivery.enqueue_many(s, core, [delivery.NewDelivery(kind, chat, delivery.Payload(text=f"{text} {i}", **kw),
                                                                    ref_id=7) for i, chat in enumerate(chats)])
        return [r.id for r in rows]


async def _run(core: Core, out: FakeOutbound, timeout: float = 10, **kw) -> delivery.DeliveryWorker:  # type: ignore[no-untyped-def]
    kw.setdefault("chat_interval", 0.0)
    worker = delivery.DeliveryWorker(core, out, **kw)
    await worker.start()
    try:
        await worker.wait_idle(timeout)
    finally:
        await worker.stop()
    return worker


def _rows(core: Core) -> dict[int, Delivery]:
    with core.db.session() as s:
        return {d.id: d for d in s.execute(select(Delivery)).scalars()}


async def test_rate_limits_overall_and_per_chat(core: Core) -> None:
    """Never more than `rate` calls in any window overall, and one per interval per chat (scaled down)."""
    out = FakeOutbound(clock=time.monotonic)
    _enqueue(core, [100 + i for i in range(24)] + [999] * 4)
    limiter = delivery.RateLimiter(rate=8, window=0.25, chat_interval=0.15, margin=0.0)
    await _run(core, out, limiter=limiter, concurrency=8)
    times = [t for t, _c in out.times]
    assert len(times) == 28
    assert max(sum(1 for u in times if t <= u < t + 0.25) for t in times) <= 8
    same_chat = [t for t, c in out.times if c == 999]
    assert min(b - a for a, b in zip(same_chat, same_chat[1:], strict=False)) >= 0.15
    assert [m.text for m in out.to(999, "send")] == [f"hello {i}" for i in range(24, 28)]  # in order


async def test_429_is_retried_after_retry_after_and_others_are_not_held_up(core: Core) -> None:
    """A 429 delays that copy by retry_after (audited) without losing it; other chats go on."""
    attempts: Counter[int] = Counter()

    def fail(method: str, chat: int) -> SendError | None:
        attempts[chat] += 1
        return SendError("retry", "Too Many Requests", retry_after=0.3) if chat == 1 and attempts[chat] == 1 else None

    out = FakeOutbound(fail=fail, clock=time.monotonic)
    ids = _enqueue(core, [1, 1, 2])
    start = time.monotonic()
    await _run(core, out)
    rows = _rows(core)
    assert [rows[i].status for i in ids] == ["sent"] * 3
    assert (rows[ids[0]].attempts, rows[ids[1]].attempts) == (2, 1)
    first_to_2 = [t for t, c in out.times if c == 2][0]
    to_1 = [t for t, c in out.times if c == 1]
    assert first_to_2 - start < 0.3 <= to_1[0] - start  # chat 2 was not held up; chat 1 waited
    assert [m.text for m in out.to(1, "send")] == ["hello 0", "hello 1"]  # order kept across the retry
    with core.db.session() as s:
        retry = s.execute(select(AuditEvent).where(AuditEvent.kind == "delivery.retry")).scalar_one()
    assert json.loads(retry.data)["retry_after"] == 0.3


async def test_blocked_failed_and_gave_up(core: Core) -> None:
    """Blocked and rejected copies are marked with a reason; retryable errors give up after MAX_ATTEMPTS."""
    errors = {1: SendError("blocked", "Forbidden: bot was blocked by the user"),
              2: SendError("rejected", "Bad Request: chat not found")}
    out = FakeOutbound(fail=lambda method, chat: errors.get(chat))
    ids = _enqueue(core, [1, 2, 3])
    await _run(core, out)
    rows = _rows(core)
    assert [(rows[i].status, rows[i].reason) for i in ids] == [
        ("blocked", "Forbidden: bot was blocked by the user"), ("failed", "rejected: Bad Request: chat not found"),
        ("sent", None)]
    (give_up,) = _enqueue(core, [4])
    with core.db.transaction() as s:
        s.get(Delivery, give_up).attempts = delivery.MAX_ATTEMPTS - 1  # type: ignore[union-attr]
    out.fail = lambda method, chat: SendError("retry", "TimedOut: timed out")
    await _run(core, out)
    row = _rows(core)[give_up]
    assert row.status == "failed" and row.reason.startswith("gave up after 10 attempts")  # type: ignore[union-attr]


def test_backoff_grows_and_honors_retry_after() -> None:
    """Exponential backoff with a ceiling; Telegram's retry_after wins."""
    assert 1.6 <= delivery.backoff_seconds(1) <= 2.4 and 12.8 <= delivery.backoff_seconds(4) <= 19.2
    assert delivery.backoff_seconds(30) <= delivery.MAX_BACKOFF * 1.2
    assert delivery.backoff_seconds(5, retry_after=7) == 7.25


async def test_two_workers_never_send_the_same_delivery(core: Core, settings) -> None:  # type: ignore[no-untyped-def]
    """Two workers with their own engines (like two processes) share 60 copies without a duplicate."""
    _enqueue(core, [1000 + i % 20 for i in range(60)])
    other = Core.build(settings, translator=core.translator, catalogs=core.catalogs)
    try:
        outs = [FakeOutbound(), FakeOutbound()]
        outs[1]._ids = outs[0]._ids  # one Telegram: message ids are unique in a chat whoever sends
        workers = [delivery.DeliveryWorker(c, o, chat_interval=0.0, concurrency=4) for c, o in zip((core, other), outs,
                                                                                                     strict=True)]
        for w in workers:
            await w.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and delivery.status_counts(core, "notice", 7).get("sent", 0) < 60:
            await asyncio.sleep(0.05)
        for w in workers:
            await w.stop()
    finally:
        other.close()
    texts = [m.text for o in outs for _m, _c, m in o.calls]
    assert len(texts) == 60 and len(set(texts)) == 60
    assert all(o.calls for o in outs)  # both took part


async def test_pending_copies_survive_a_restart(core: Core, settings) -> None:  # type: ignore[no-untyped-def]
    """Copies stored by one process are sent once by the next; a copy left in flight by a dead process too."""
    ids = _enqueue(core, [1, 2, 3])
    dead = f"{socket.gethostname()[:48]}:999999:deadbeef0000"
    assert not os.path.exists("/proc/999999")
    with core.db.transaction() as s:
        row = s.get(Delivery, ids[2])
        row.status, row.claimed_by = "sending", dead  # type: ignore[union-attr]
        row.lease_until = core.clock.now() + timedelta(minutes=2)  # type: ignore[union-attr]
    restarted = Core.build(settings, translator=core.translator, catalogs=core.catalogs)
    try:
        out = FakeOutbound()
        await _run(restarted, out)
    finally:
        restarted.close()
    assert sorted(c for _m, c, _w in out.calls) == [1, 2, 3]
    assert {r.status for r in _rows(core).values()} == {"sent"}


async def test_stopping_gives_back_unstarted_jobs(core: Core) -> None:
    """A job claimed but not begun when the worker stops returns to pending, its attempt not counted."""
    ids = _enqueue(core, [5])
    jobs = delivery.claim(core, "me:1:x", 10)
    assert [j.id for j in jobs] == ids and _rows(core)[ids[0]].status == "sending"
    assert delivery.claim(core, "other:2:y", 10) == []  # claimed rows are not claimed twice
    delivery.release(core, "me:1:x", ids)
    row = _rows(core)[ids[0]]
    assert (row.status, row.attempts, row.claimed_by) == ("pending", 0, None)


async def test_long_text_is_split_and_mapped_buttons_on_the_last_part(core: Core) -> None:
    """A text over 4096 is sent as several messages (none truncated); each is mapped back to the copy."""
    long_text = "\n\n".join("Đoạn %d: " % i + "xe tải chở hàng qua cửa khẩu " * 40 for i in range(10))
    (did,) = _enqueue(core, [9], text=long_text, buttons=((Button("OK", "ack:1"),),))
    out = FakeOutbound()
    await _run(core, out)
    sent = out.to(9, "send")
    assert len(sent) >= 3 and all(len(m.text) <= 4096 for m in sent)
    assert [bool(m.buttons) for m in sent] == [False] * (len(sent) - 1) + [True]
    assert " ".join(m.text for m in sent).split() == f"{long_text} {0}".split()[:-1] + ["0"]
    with core.db.session() as s:
        parts = s.execute(select(ChatMessage).where(ChatMessage.delivery_id == did)
                          .order_by(ChatMessage.part)).scalars().all()
        assert [p.message_id for p in parts] == list(range(500, 500 + len(sent)))
    assert delivery.find_message(core, 9, 501) == delivery.MessageRef("notice", 7, did, False)


async def test_edit_with_fewer_parts_and_coalesced_edits(core: Core) -> None:
    """Editing a split copy edits its messages and deletes the surplus; queued edits of one copy coalesce."""
    (did,) = _enqueue(core, [9], text="x " * 3000)
    out = FakeOutbound()
    await _run(core, out)
    assert len(out.to(9, "send")) == 2
    with core.db.transaction() as s:
        first = delivery.enqueue_edit(s, core, did, delivery.Payload(text="progress 1/3"))
        second = delivery.enqueue_edit(s, core, did, delivery.Payload(text="progress 3/3",
                                                                      buttons=((Button("OK", "ok"),),)))
        assert first is not None and second is not None and first.id == second.id
    await _run(core, out)
    assert out.to(9, "edit") == [(500, "progress 3/3", ((Button("OK", "ok"),),))]
    assert out.to(9, "delete") == [501]


async def test_subscribers_hear_every_final_status_and_failing_ones_are_contained(core: Core) -> None:
    """Subscribers (sync or async) get each event after commit; one raising does not stop delivery."""
    seen: list[tuple[int, str]] = []

    async def listener(event: delivery.DeliveryEvent) -> None:
        seen.append((event.chat_id, event.status))

    def broken(event: delivery.DeliveryEvent) -> None:
        raise RuntimeError("subscriber bug")

    delivery.outbox(core).subscribe("notice", listener)
    delivery.outbox(core).subscribe("*", broken)
    out = FakeOutbound(fail=lambda m, chat: SendError("blocked", "Forbidden") if chat == 2 else None)
    _enqueue(core, [1, 2, 3])
    await _run(core, out)
    assert sorted(seen) == [(1, "sent"), (2, "blocked"), (3, "sent")]


async def test_revoked_recipient_is_cancelled_not_sent(core: Core) -> None:
    """A copy for an officer revoked before it went out is cancelled at claim time."""
    officer = register(core, 77, "officer", "LA")
    with core.db.transaction() as s:
        delivery.enqueue(s, core, kind="notice", chat_id=77, recipient_id=officer.id, payload=delivery.Payload(text="x"))
    vetting.revoke(core, None, "77")
    out = FakeOutbound()
    await _run(core, out)
    assert out.calls == [] and [r.status for r in _rows(core).values()] == ["cancelled"]


async def test_reply_ref_resolves_to_the_copy_in_each_chat(core: Core) -> None:
    """`reply_ref` points each recipient's copy at their own copy of the referenced record."""
    with core.db.transaction() as s:
        delivery.enqueue_many(s, core, [delivery.NewDelivery("relay", chat, delivery.Payload(text="first"), ref_id=1)
                                        for chat in (1, 2)])
        delivery.record_origin(s, core, chat_id=3, message_id=42, kind="relay", ref_id=1)
        delivery.enqueue_many(s, core, [delivery.NewDelivery("relay", chat, delivery.Payload(
            text="reply", reply_ref=("relay", 1)), ref_id=2) for chat in (1, 2, 3)])
    out = FakeOutbound()
    await _run(core, out)
    assert [m.reply_to for chat in (1, 2, 3) for m in out.to(chat, "send") if m.text == "reply"] == [500, 500, 42]


def test_enqueue_many_returns_the_copies_in_the_order_given(core: Core) -> None:
    """One INSERT ... RETURNING stores all copies; each returned id is the row of the item at its place."""
    chats = [907, 901, 905, 903, 909, 902]
    with core.db.transaction() as s:
        queued = delivery.enqueue_many(s, core, [
            delivery.NewDelivery("notice", chat, delivery.Payload(text=f"to {chat}"), ref_id=chat, lang="vi")
            for chat in chats], case_tag="CN-VN-2026-0042")
    assert [q.chat_id for q in queued] == chats
    rows = _rows(core)
    for q in queued:
        row = rows[q.id]
        assert (row.chat_id, row.ref_id, row.status, row.case_tag) == (q.chat_id, q.chat_id, "pending", "CN-VN-2026-0042")
        assert delivery._decode(core, row.payload_enc)["parts"] == [f"to {q.chat_id}"]


def test_a_429_pauses_its_chat_and_only_repeated_ones_pause_everyone() -> None:
    """One chat refused: only that chat waits; two chats refused within a second: the overall limit waits."""
    now = [100.0]
    limiter = delivery.RateLimiter(rate=30, chat_interval=0.0, margin=0.0, clock=lambda: now[0])
    limiter.pause(1, 5.0)
    assert limiter.wait_time(1) == 5.0 and limiter.wait_time(2) == 0.0 and limiter.cooling_chats() == {1}
    now[0] += 0.5
    limiter.pause(2, 3.0)
    assert limiter.wait_time(3) == 3.0


def test_a_call_counts_from_its_completion() -> None:
    """Telegram counts a call when it arrives: a slow call keeps its slot (overall and in its chat) until it ends."""
    now = [0.0]
    limiter = delivery.RateLimiter(rate=1, window=1.0, chat_interval=1.0, margin=0.0, clock=lambda: now[0])
    stamp = asyncio.run(limiter.acquire(5))
    now[0] = 0.5
    limiter.finished(5, stamp)
    now[0] = 1.2
    assert limiter.wait_time(6) == pytest.approx(0.3) and limiter.wait_time(5) == pytest.approx(0.3)
    now[0] = 1.5
    assert limiter.wait_time(6) == 0.0 and limiter.wait_time(5) == 0.0
