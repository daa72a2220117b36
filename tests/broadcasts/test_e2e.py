"""End to end through the Bot API emulator with Telegram's limits: fan-out, languages, pacing, acks,
urgent re-sends and a restart in the middle of a fan-out."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot import broadcasts
from bot.app import build_application, start_application, stop_application
from bot.core import Core
from bot.models.broadcasts import Broadcast, BroadcastRecipient
from bot.models.relay import Delivery
from bot.officers import OfficerInfo
from bot.sandbox.emulator import BotApiEmulator
from bot.sandbox.emulator_limits import RateLimits
from tests.broadcasts.conftest import People
from tests.support.e2e import running_bot

pytestmark = pytest.mark.e2e
TEXT = "Truck 29C-12345 with pangolin scales is heading to the Lao Cai border crossing."


async def _officers(emu: BotApiEmulator, people: People, n: int) -> list[OfficerInfo]:
    """Create n Telegram users in the emulator and register them as officers of CN, LA and VN in turn."""
    users = [await emu.create_user(f"U{i}", language_code="en", started=True) for i in range(n)]

    def register() -> list[OfficerInfo]:
        return [people.add(f"Officer {i}", ("CN", "LA", "VN")[i % 3], telegram_id=u.id) for i, u in enumerate(users)]

    return await asyncio.to_thread(register)


async def _coordinator(emu: BotApiEmulator, people: People) -> OfficerInfo:
    user = await emu.create_user("Boss", language_code="en", started=True)
    return await asyncio.to_thread(people.add, "Boss", "VN", "coordinator", language="en", telegram_id=user.id)


def _button_message(emu: BotApiEmulator, chat_id: int, data: str) -> int:
    """Return the id of the latest bot message in a chat that carries a button with this callback data."""
    for record in reversed(emu.messages(chat_id)):
        if any(b.get("callback_data") == data for b in record.buttons):
            return record.message_id
    raise AssertionError(f"no message with button {data} in chat {chat_id}: {[m.body[:60] for m in emu.messages(chat_id)]}")


@pytest.mark.slow
async def test_broadcast_to_200_officers_in_their_languages_within_limits(core: Core, people: People) -> None:
    """/broadcast → priority → preview → Send twice: 200 copies once each, in each officer's language,
    never above Telegram's limits, no 429; acks recorded; progress edited into the final report."""
    # The guided dialogue runs without limits: its replies come in short bursts (an edit and a reply to one
    # press), which Telegram tolerates but the emulator's strict one-per-second window would refuse. The
    # limits are switched on for the fan-out, which is what is measured (at the default 30/s budget).
    emu = BotApiEmulator(core.settings.telegram_token.get(), username="liaison_test_bot",  # type: ignore[union-attr]
                         rate_limits=RateLimits.unlimited())
    await emu.start()
    try:
        boss = await _coordinator(emu, people)
        officers = await _officers(emu, people, 200)
        async with running_bot(core, emulator=emu):
            broadcasts.tracker(core).every = 0.5
            await emu.send_text(boss.telegram_id, f"/broadcast all {TEXT}")
            await emu.wait_for(lambda: _has_button(emu, boss.telegram_id, "bc:prio:normal"), 15)
            await emu.press_button(boss.telegram_id, _button_message(emu, boss.telegram_id, "bc:prio:normal"),
                                   "bc:prio:normal")
            preview_id = await emu.wait_for(lambda: _latest_id(core), 20)
            await emu.wait_for(lambda: _has_button(emu, boss.telegram_id, f"bc:ok:{preview_id}"), 15)
            preview = "\n".join(m.body for m in emu.messages(boss.telegram_id))
            assert "200 officers" in preview and f"[zh] {TEXT}" in preview and f"[lo] {TEXT}" in preview
            ok_message = _button_message(emu, boss.telegram_id, f"bc:ok:{preview_id}")
            emu.set_rate_limits(RateLimits.telegram())
            emu.meter.reset()
            first = await emu.press_button(boss.telegram_id, ok_message, f"bc:ok:{preview_id}")
            second = await emu.press_button(boss.telegram_id, ok_message, f"bc:ok:{preview_id}")
            started = time.monotonic()
            everyone = [o.telegram_id for o in officers]
            await emu.wait_for(lambda: all(emu.messages(c) for c in everyone), 40, "not every officer got the alert")
            elapsed = time.monotonic() - started
            assert (await emu.wait_for_callback_answer(first)).answered
            assert "is being sent to 200 officers" in (await emu.wait_for_callback_answer(first)).text  # type: ignore[operator]
            assert "already been sent" in (await emu.wait_for_callback_answer(second)).text  # type: ignore[operator]

            for o in officers:
                (copy,) = emu.messages(o.telegram_id)
                texts = core.catalogs.get(o.language)
                assert f"[{o.language}] {TEXT}" in copy.body
                assert copy.buttons[0]["text"] == texts.plain(broadcasts.ACK_BUTTON) != "✅ Acknowledge"
                assert copy.buttons[0]["callback_data"] == f"bc:ack:{preview_id}"
            meter = emu.meter
            assert meter.count_429 == 0, meter.summary()
            assert meter.max_per_second_overall() <= 30 and meter.max_per_second_chat() <= 1, meter.summary()
            assert elapsed > 200 / 30 - 1  # it really was paced (not sent in one burst)

            ackers = officers[:5]
            presses = [await emu.press_button(o.telegram_id, emu.messages(o.telegram_id)[0].message_id,
                                              f"bc:ack:{preview_id}") for o in ackers]
            for press in presses:
                assert (await emu.wait_for_callback_answer(press)).text
            report = await emu.wait_for(lambda: _report(emu, boss.telegram_id), 20, "no final report")
            assert "200 of 200 delivered, 0 failed, 0 blocked" in report
            await asyncio.sleep(1.1)  # a person reads the report before pressing its button
            await emu.press_button(boss.telegram_id, _button_message(emu, boss.telegram_id,
                                                                     f"bc:acks:{preview_id}"), f"bc:acks:{preview_id}")
            acks = await emu.wait_for(lambda: _acks(emu, boss.telegram_id), 10)
            assert "5 of 200 acknowledged" in acks
            assert emu.meter.count_429 == 0
    finally:
        await emu.stop()
    with core.db.session() as s:
        acked = set(s.execute(select(BroadcastRecipient.officer_id).where(
            BroadcastRecipient.acked_at.is_not(None))).scalars())
        copies = s.execute(select(Delivery.recipient_id).where(Delivery.kind == broadcasts.KIND)).scalars().all()
    assert acked == {o.id for o in ackers}
    assert len(copies) == len(set(copies)) == 200


def _has_button(emu: BotApiEmulator, chat_id: int, data: str) -> bool:
    return any(any(b.get("callback_data") == data for b in m.buttons) for m in emu.messages(chat_id))


def _latest_id(core: Core) -> int | None:
    with core.db.session() as s:
        return s.execute(select(Broadcast.id).order_by(Broadcast.id.desc()).limit(1)).scalar_one_or_none()


def _report(emu: BotApiEmulator, chat_id: int) -> str | None:
    for m in emu.messages(chat_id):
        if "finished:" in m.body:
            return m.body
    return None


def _acks(emu: BotApiEmulator, chat_id: int) -> str | None:
    for m in emu.messages(chat_id):
        if "acknowledged." in m.body and "Broadcast #" in m.body:
            return m.body
    return None


class JumpClock:
    """Real time plus an offset the test jumps forward (the outbox's retries still see time pass)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        """Return the shifted current time (UTC)."""
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        """Jump forward."""
        self.offset += delta


def _emulator(core: Core, limits: RateLimits) -> BotApiEmulator:
    return BotApiEmulator(core.settings.telegram_token.get(), username="liaison_test_bot",  # type: ignore[union-attr]
                          rate_limits=limits)


async def test_urgent_resend_reaches_exactly_the_non_acknowledgers(core: Core, people: People) -> None:
    """Acks recorded by button; after the delay (fake clock, tick run directly) only non-acknowledgers
    get a reminder in their language, with the button again; at most twice."""
    clock = JumpClock()
    core.clock = clock
    emu = _emulator(core, RateLimits.telegram())
    await emu.start()
    try:
        boss = await _coordinator(emu, people)
        officers = await _officers(emu, people, 30)
        async with running_bot(core, emulator=emu):
            preview = await asyncio.to_thread(broadcasts.draft, core, boss, "all", TEXT, priority="urgent",
                                              status_chat_id=boss.telegram_id)
            await asyncio.to_thread(broadcasts.confirm, core, boss, preview.id)
            chats = [o.telegram_id for o in officers]
            await emu.wait_for(lambda: all(emu.messages(c) for c in chats), 20)
            ackers, others = officers[::3], [o for o in officers if o not in officers[::3]]
            for o in ackers:
                press = await emu.press_button(o.telegram_id, emu.messages(o.telegram_id)[0].message_id,
                                               f"bc:ack:{preview.id}")
                assert "✅" in ((await emu.wait_for_callback_answer(press)).text or "")
            await asyncio.sleep(1.1)  # (real time: the copies' one-second chat windows close, as 30 minutes would)
            clock.advance(timedelta(minutes=31))
            (round1,) = await asyncio.to_thread(broadcasts.tick, core)
            assert set(round1.officer_ids) == {o.id for o in others}
            await emu.wait_for(lambda: all(len(emu.messages(o.telegram_id)) == 2 for o in others), 20)
            await asyncio.sleep(1.2)
            assert all(len(emu.messages(o.telegram_id)) == 1 for o in ackers)
            for o in others:
                reminder = emu.messages(o.telegram_id)[1]
                texts = core.catalogs.get(o.language)
                assert texts.plain("🔁 <b>Reminder {n} of {total}:</b> you have not yet acknowledged this urgent "
                                   "alert.", n=1, total=2).replace("<b>", "").replace("</b>", "") in reminder.body
                assert f"[{o.language}] {TEXT}" in reminder.body
                assert reminder.buttons[0]["callback_data"] == f"bc:ack:{preview.id}"
            late = others[0]
            press = await emu.press_button(late.telegram_id, emu.messages(late.telegram_id)[1].message_id,
                                           f"bc:ack:{preview.id}")
            await emu.wait_for_callback_answer(press)
            clock.advance(timedelta(minutes=31))
            (round2,) = await asyncio.to_thread(broadcasts.tick, core)
            assert set(round2.officer_ids) == {o.id for o in others[1:]}
            clock.advance(timedelta(minutes=31))
            assert await asyncio.to_thread(broadcasts.tick, core) == []
            await emu.wait_for(lambda: all(len(emu.messages(o.telegram_id)) == 3 for o in others[1:]), 20)
            assert emu.meter.count_429 == 0
    finally:
        await emu.stop()
    rep = broadcasts.report(core, boss, preview.id)
    assert {r.officer.id for r in rep.acked} == {o.id for o in ackers} | {late.id}


async def test_restart_mid_fanout_neither_loses_nor_duplicates(core: Core, people: People) -> None:
    """Stop the bot part-way through a fan-out, start a new process on the same database and emulator:
    every officer ends up with exactly one copy, and the report is finished by the new process."""
    emu = _emulator(core, RateLimits.telegram())
    await emu.start()
    second: Core | None = None
    try:
        boss = await _coordinator(emu, people)
        officers = await _officers(emu, people, 90)
        chats = [o.telegram_id for o in officers]
        async with running_bot(core, emulator=emu):
            preview = await asyncio.to_thread(broadcasts.draft, core, boss, "all", TEXT,
                                              status_chat_id=boss.telegram_id)
            await asyncio.to_thread(broadcasts.confirm, core, boss, preview.id)
            await emu.wait_for(lambda: sum(1 for c in chats if emu.messages(c)) >= 30, 20)
        before = sum(1 for c in chats if emu.messages(c))
        assert 30 <= before < 90, before  # really stopped in the middle
        await asyncio.sleep(1.0)
        assert sum(1 for c in chats if emu.messages(c)) == before  # the stopped process sends nothing more
        second = Core.build(core.settings, translator=core.translator, catalogs=core.catalogs)
        async with running_bot(second, emulator=emu):
            broadcasts.tracker(second).every = 0.3
            await emu.wait_for(lambda: all(emu.messages(c) for c in chats), 30)
            report = await emu.wait_for(lambda: _report(emu, boss.telegram_id), 20, "no final report")
            await asyncio.sleep(1.2)
        assert [len(emu.messages(c)) for c in chats] == [1] * 90
        assert "90 of 90 delivered" in report
        assert len(emu.messages(boss.telegram_id)) == 1  # one progress message, edited into the report
        assert emu.meter.count_429 == 0
    finally:
        await emu.stop()
        if second is not None:
            second.close()
    assert broadcasts.stats(core, preview.id) == {"sent": 90}


async def test_long_alert_is_split_with_the_button_on_the_last_part(core: Core, people: People) -> None:
    """An alert longer than one Telegram message after translation arrives in clean parts, button last."""
    emu = _emulator(core, RateLimits.unlimited())
    await emu.start()
    try:
        boss = await _coordinator(emu, people)
        (officer,) = await _officers(emu, people, 1)
        paragraph = "Convoy of three trucks, plates 29C-123, 29C-456 and 29C-789, seen near the crossing. "
        long_text = "\n\n".join([paragraph * 6] * 10)
        assert len(long_text) > 4096
        async with running_bot(core, emulator=emu):
            preview = await asyncio.to_thread(broadcasts.draft, core, boss, "all", long_text)
            await asyncio.to_thread(broadcasts.confirm, core, boss, preview.id)
            parts = await emu.wait_for_messages(officer.telegram_id, 2, 10)
            await asyncio.sleep(0.3)
        parts = emu.messages(officer.telegram_id)
        assert len(parts) == 2
        assert not parts[0].buttons and parts[-1].buttons[0]["callback_data"] == f"bc:ack:{preview.id}"
        assert all(len(p.body) <= 4096 for p in parts)
        joined = "".join(p.body for p in parts)
        assert joined.count("29C-789") == 60  # nothing lost at the cut
    finally:
        await emu.stop()
