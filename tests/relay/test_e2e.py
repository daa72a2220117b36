"""End to end through the Bot API emulator: three officers (CN/zh, VN/vi, LA/lo) in one case room.

The bot is the real application polling the emulator over HTTP, with Telegram's flood limits enforced;
the restart test runs `liaison run` as a process and kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import delivery, inbox, rooms, vetting
from bot.core import Core
from bot.models import AuditEvent, InboxUpdate, ProcessedUpdate
from bot.models.relay import Delivery, Message
from bot.officers import OfficerInfo
from bot.sandbox.emulator import BotApiEmulator
from bot.sandbox.emulator_limits import RateLimits
from bot.sandbox.emulator_records import MessageRecord, User
from tests.support.e2e import running_bot

pytestmark = pytest.mark.e2e
CASE = "CN-VN-2026-0042"
LIAISON = str(Path(sys.executable).with_name("liaison"))


@dataclass
class People:
    """The emulator users and their officer records."""

    cn: User
    vn: User
    la: User
    officers: dict[int, OfficerInfo]


async def _people(core: Core, emu: BotApiEmulator) -> People:
    """Create three users in the emulator and register them (VN is also the room's coordinator)."""
    cn = await emu.create_user("王伟", username="wang_police", language_code="zh")
    vn = await emu.create_user("Nguyễn An", username="an_customs", language_code="vi")
    la = await emu.create_user("ສົມພອນ", username="somphone_forest", language_code="lo")
    officers = {}
    for user, role, country, agency in ((cn, "officer", "CN", "Police"), (vn, "coordinator", "VN", "Customs"),
                                        (la, "officer", "LA", "Forest Inspection")):
        code = vetting.create_invite(core, None, role=role, country=country, agency=agency).code
        await emu.send_text(user.id, f"/start {code}")  # registering is also what lets the bot write to them
    for user in (cn, vn, la):
        await emu.wait_for_messages(user.id, 1, timeout=60)
        officers[user.id] = vetting.active_officer(core, user.id)
    await asyncio.sleep(1.0)  # people read the welcome before typing on
    return People(cn, vn, la, officers)  # type: ignore[arg-type]


def _copies(emu: BotApiEmulator, chat_id: int, needle: str) -> list[MessageRecord]:
    return [m for m in emu.messages(chat_id) if needle in m.body]


async def _wait_copy(emu: BotApiEmulator, chat_id: int, needle: str, n: int = 1, timeout: float = 30) -> list[MessageRecord]:
    return await emu.wait_for(lambda: (found := _copies(emu, chat_id, needle)) and len(found) >= n and found,
                              timeout, f"chat {chat_id}: no copy containing {needle!r}")


async def _wait_db(predicate, timeout: float = 30):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        await asyncio.sleep(0.1)
    raise TimeoutError("condition not met in the database")


async def _command(emu: BotApiEmulator, user_id: int, text: str) -> MessageRecord:
    """Send a command and wait for its answer, then a second, as a person typing the next one would."""
    before = len(emu.messages(user_id))
    await emu.send_text(user_id, text)
    answer = (await emu.wait_for_messages(user_id, before + 1, timeout=30))[-1]
    await asyncio.sleep(1.0)
    return answer


def _png() -> bytes:
    """Return a tiny valid PNG."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes([200, 30, 30] * 4) for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


async def test_three_officers_talk_across_languages(core: Core) -> None:
    """Relay, reply threading, edits, a captioned photo with its hash, and removal — within Telegram's limits."""
    async with running_bot(core, limits=RateLimits.telegram()) as run:
        emu = run.emulator
        p = await _people(core, emu)
        await _command(emu, p.vn.id, f"/newcase {CASE} Pangolin scales via Lao Cai")
        await _command(emu, p.vn.id, "/add @wang_police")
        await _command(emu, p.vn.id, f"/add {p.la.id}")
        await _wait_copy(emu, p.la.id, CASE)  # the Lao officer was told, in Lao
        await _wait_copy(emu, p.cn.id, "ສົມພອນ")  # the Chinese officer saw the Lao officer join

        # 1. each message reaches the two others in their language, with the original
        original = await emu.send_text(p.cn.id, "穿山甲鳞片明天经过老街")
        (to_vn,) = await _wait_copy(emu, p.vn.id, "[vi] 穿山甲鳞片明天经过老街")
        (to_la,) = await _wait_copy(emu, p.la.id, "[lo] 穿山甲鳞片明天经过老街")
        for copy in (to_vn, to_la):
            assert "<blockquote expandable>" in (copy.raw_text or "") and copy.body.count("穿山甲鳞片明天经过老街") == 2
            assert "王伟" in copy.body and "Police" in copy.body and CASE in copy.body
        assert _copies(emu, p.cn.id, "穿山甲鳞片明天经过老街") == []

        # 2. a Telegram reply on a copy lands in the room as a reply to each reader's own copy
        rooms.create_case(core, p.officers[p.vn.id], "LA-VN-2026-0007", "Another case")
        rooms.add_member(core, p.officers[p.vn.id], f"@{p.la.username}", "LA-VN-2026-0007")
        rooms.choose_room(core, p.officers[p.la.id], "LA-VN-2026-0007")  # writing elsewhere now
        await emu.send_text(p.la.id, "ຂອບໃຈ, ພວກເຮົາຈະກວດລົດ", reply_to=to_la.message_id)
        (reply_cn,) = await _wait_copy(emu, p.cn.id, "[zh] ຂອບໃຈ")
        (reply_vn,) = await _wait_copy(emu, p.vn.id, "[vi] ຂອບໃຈ")
        assert reply_cn.reply_to_message_id == original.message_id
        assert reply_vn.reply_to_message_id == to_vn.message_id and CASE in reply_vn.body

        # 3. an edit updates every copy; both versions are kept
        await emu.edit_text(p.cn.id, original.message_id, "穿山甲鳞片后天经过老街")
        for chat, lang, first in ((p.vn.id, "vi", to_vn), (p.la.id, "lo", to_la)):
            edited = await emu.wait_for(lambda c=chat, m=first: (r := emu.message(c, m.message_id)).edited and r,
                                        30, f"copy in chat {chat} not edited")
            assert f"[{lang}] 穿山甲鳞片后天经过老街" in edited.body and "明天" in edited.history[0]["text"]

        # 4. a photo with a caption arrives with the caption translated, and its SHA-256 is recorded
        data = _png()
        await emu.send_photo(p.vn.id, data, caption="Ảnh kho hàng ở Lào Cai")
        (photo,) = await _wait_copy(emu, p.la.id, "[lo] Ảnh kho hàng ở Lào Cai")
        assert photo.kind == "photo" and photo.file is not None and photo.file.data == data

        def hashed() -> str | None:
            with core.db.session() as s:
                return s.execute(select(Message.file_sha256).where(Message.kind == "photo")).scalar_one_or_none()

        assert await _wait_db(hashed) == hashlib.sha256(data).hexdigest()

        # 5. an officer removed from the room stops receiving
        await _command(emu, p.vn.id, f"/remove @somphone_forest {CASE}")  # VN now writes to the other case
        await _wait_copy(emu, p.la.id, f"ຖືກເອົາອອກຈາກຫ້ອງຄະດີ {CASE}")  # told, in Lao
        await _wait_db(lambda: delivery.outstanding(core) == 0)
        before = len(emu.messages(p.la.id))
        await emu.send_text(p.cn.id, "行动取消")
        await _wait_copy(emu, p.vn.id, "[vi] 行动取消")
        await asyncio.sleep(1.2)
        assert len(emu.messages(p.la.id)) == before and _copies(emu, p.la.id, "行动取消") == [], [m.body[:90] for m in emu.messages(p.la.id)]

        # the bot stayed within Telegram's limits throughout: no 429, at most one message a second per chat
        assert emu.meter.count_429 == 0, emu.stats()
        assert emu.meter.max_per_second_chat() <= 1 and emu.meter.max_per_second_overall() <= 30
    with core.db.session() as s:
        kinds = set(s.execute(select(AuditEvent.kind)).scalars())
    assert {"message.sent", "message.translated", "message.edited", "message.file_hashed", "delivery.sent",
            "delivery.edit.sent", "room.member_removed"} <= kinds


async def test_a_429_delays_but_does_not_lose_a_copy(core: Core) -> None:
    """Telegram answering 429 (retry after 2 s) to one member: that copy comes later, exactly once."""
    async with running_bot(core, limits=RateLimits.telegram()) as run:
        emu = run.emulator
        p = await _people(core, emu)
        room = rooms.create_case(core, p.officers[p.vn.id], CASE, "Case")
        for user in (p.cn, p.la):
            rooms.add_member(core, p.officers[p.vn.id], str(user.id), room.case_tag)
        await _wait_copy(emu, p.la.id, CASE)
        await _wait_copy(emu, p.cn.id, CASE)
        emu.inject_fault("sendMessage", chat_id=p.la.id, retry_after=2)
        sent_at = time.monotonic()
        await emu.send_text(p.vn.id, "Xe tải đã qua cửa khẩu")
        await _wait_copy(emu, p.cn.id, "[zh] Xe tải")
        (late,) = await _wait_copy(emu, p.la.id, "[lo] Xe tải", timeout=20)
        assert time.monotonic() - sent_at >= 2.0
        await asyncio.sleep(0.5)
        assert len(_copies(emu, p.la.id, "[lo] Xe tải")) == 1 and late.body
    with core.db.session() as s:
        la_copy = s.execute(select(Delivery).where(Delivery.kind == "relay", Delivery.chat_id == p.la.id)).scalar_one()
        assert (la_copy.status, la_copy.attempts) == ("sent", 2)
        assert s.execute(select(AuditEvent).where(AuditEvent.kind == "delivery.retry")).scalars().first() is not None


def _env(core: Core, url: str) -> dict[str, str]:
    settings = core.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env.update({"LIAISON_TELEGRAM_TOKEN": settings.telegram_token.get(),  # type: ignore[union-attr]
                "LIAISON_TELEGRAM_API_URL": url, "LIAISON_DATABASE_URL": settings.database_url,
                "LIAISON_DATA_DIR": str(settings.data_dir), "LIAISON_DATA_KEY": settings.data_key.get(),  # type: ignore[union-attr]
                "LIAISON_LOG_LEVEL": "INFO"})
    return env


async def _start(core: Core, url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(LIAISON, "run", env=_env(core, url), stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)


async def _room_of_three(core: Core, emu: BotApiEmulator) -> People:
    """Register the three officers and put them in one case room opened by VN; wait for the join notices."""
    p = await _people(core, emu)
    room = rooms.create_case(core, p.officers[p.vn.id], CASE, "Case")
    for user in (p.cn, p.la):
        rooms.add_member(core, p.officers[p.vn.id], str(user.id), room.case_tag)
    await _wait_db(lambda: delivery.outstanding(core) == 0, timeout=60)
    return p


async def _kill(proc: asyncio.subprocess.Process, emu: BotApiEmulator) -> None:
    """SIGKILL a bot process, then let the emulator behave again (as Telegram would after an outage)."""
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    emu.clear_faults()


async def _terminate(*procs: asyncio.subprocess.Process | None) -> None:
    """Stop bot processes still running (SIGTERM: the graceful stop)."""
    for proc in procs:
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)


async def test_killed_between_store_and_delivery_delivers_exactly_once(core: Core) -> None:
    """`liaison run` is SIGKILLed after storing a message: one copy waits out a 429, the other is stuck in
    a call Telegram never carried out. The restarted process delivers each copy exactly once."""
    token = core.settings.telegram_token.get()  # type: ignore[union-attr]
    async with BotApiEmulator(token, rate_limits=RateLimits.telegram()) as emu:
        first = await _start(core, emu.base_url)
        second = None
        try:
            p = await _room_of_three(core, emu)
            emu.inject_fault("sendMessage", chat_id=p.cn.id, retry_after=4)
            emu.inject_fault("sendMessage", chat_id=p.la.id, delay=60, error_code=502)  # hangs, never sent
            await emu.send_text(p.vn.id, "Hàng sẽ qua cửa khẩu lúc 5 giờ")

            def stored_not_delivered() -> bool:
                with core.db.session() as s:
                    rows = s.execute(select(Delivery).where(Delivery.kind == "relay")).scalars().all()
                    by_chat = {r.chat_id: r for r in rows}
                    return (len(rows) == 2 and by_chat[p.cn.id].status == "pending" and by_chat[p.cn.id].attempts == 1
                            and by_chat[p.la.id].status == "sending")

            await _wait_db(stored_not_delivered, timeout=15)
            await _kill(first, emu)
            assert _copies(emu, p.cn.id, "Hàng sẽ qua") == [] and _copies(emu, p.la.id, "Hàng sẽ qua") == []
            second = await _start(core, emu.base_url)
            await _wait_copy(emu, p.cn.id, "Hàng sẽ qua", timeout=60)
            await _wait_copy(emu, p.la.id, "Hàng sẽ qua", timeout=60)
            await asyncio.sleep(2.0)
            assert len(_copies(emu, p.cn.id, "Hàng sẽ qua")) == 1 and len(_copies(emu, p.la.id, "Hàng sẽ qua")) == 1
        finally:
            await _terminate(first, second)
    assert first.returncode == -signal.SIGKILL
    counts = {}
    with core.db.session() as s:
        for row in s.execute(select(Delivery).where(Delivery.kind == "relay")).scalars():
            counts[row.chat_id] = (row.status, row.attempts)
    assert counts == {p.cn.id: ("sent", 2), p.la.id: ("sent", 2)}
    assert delivery.outstanding(core) == 0


async def test_killed_with_fetched_updates_unhandled_handles_them_after_restart(core: Core) -> None:
    """An update fetched (and so confirmed to Telegram) but still waiting behind a slow handler when
    `liaison run` is SIGKILLed is not lost: it was stored in the inbox and is handled after the restart."""
    token = core.settings.telegram_token.get()  # type: ignore[union-attr]
    async with BotApiEmulator(token, rate_limits=RateLimits.telegram()) as emu:
        first = await _start(core, emu.base_url)
        second = None
        try:
            p = await _room_of_three(core, emu)
            # The coordinator's /rooms is answered directly; its answer hangs, so that handler holds the line.
            emu.inject_fault("sendMessage", chat_id=p.vn.id, delay=60, error_code=502)
            await emu.send_text(p.vn.id, "/rooms")
            await asyncio.sleep(1.0)
            await emu.send_text(p.cn.id, "明天下午三点货车到达河口口岸")

            def waiting_in_inbox() -> bool:
                with core.db.session() as s:
                    return s.execute(select(InboxUpdate.update_id).outerjoin(
                        ProcessedUpdate, ProcessedUpdate.update_id == InboxUpdate.update_id).where(
                        ProcessedUpdate.update_id.is_(None))).first() is not None

            await _wait_db(waiting_in_inbox, timeout=15)
            await asyncio.sleep(2.0)  # the next poll has confirmed it to the emulator
            assert emu.pending_updates() == []  # Telegram's side forgot it: only the inbox has it
            await _kill(first, emu)
            assert _copies(emu, p.la.id, "货车到达河口") == []
            second = await _start(core, emu.base_url)
            await _wait_copy(emu, p.la.id, "货车到达河口", timeout=60)
            await _wait_copy(emu, p.vn.id, "货车到达河口", timeout=60)
            await asyncio.sleep(1.0)
            assert len(_copies(emu, p.la.id, "货车到达河口")) == 1 and len(_copies(emu, p.vn.id, "货车到达河口")) == 1
        finally:
            await _terminate(first, second)
    assert first.returncode == -signal.SIGKILL
    assert inbox.pending_count(core) == 0
