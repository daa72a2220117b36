"""End to end through the Bot API emulator: a Lao officer receives a reminder in Lao and presses "Done".

The bot is the real application polling the emulator over HTTP; only the clock is ours.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot import meetings, reminders, vetting
from bot.clock import FakeClock
from bot.core import Core
from bot.sandbox.emulator import BotApiEmulator
from bot.sandbox.emulator_limits import RateLimits
from handlers import meetings as h
from tests.support.e2e import running_bot

pytestmark = pytest.mark.e2e


async def test_lao_officer_gets_a_reminder_in_lao_and_presses_done(mcore: Core, clock: FakeClock) -> None:
    """Assigned notice, then the 7-days reminder at 09:00 Vientiane time, in Lao, with buttons; Done closes
    the item, the coordinator (Vietnamese) is told, and no reminder follows."""
    token = mcore.settings.telegram_token.get()  # type: ignore[union-attr]
    emu = BotApiEmulator(token, username="liaison_test_bot", rate_limits=RateLimits.unlimited())
    await emu.start()
    try:
        la = await emu.create_user("ສົມພອນ", last_name="ພົມມະວົງ", username="somphone_p", language_code="lo")
        vn = await emu.create_user("Nguyễn Thị Lan", username="lan_coordinator", language_code="vi")
        lo, vi = mcore.catalogs.get("lo"), mcore.catalogs.get("vi")
        async with running_bot(mcore, emulator=emu):
            # both register the way officers do: /start with an invite code (Telegram lets a bot write
            # only to users who have started it)
            for user, role, country in ((la, "officer", "LA"), (vn, "coordinator", "VN")):
                code = vetting.create_invite(mcore, None, role=role, country=country).code
                await emu.send_text(user.id, f"/start {code}")
                await emu.wait_for(
                    lambda u=user: vetting.active_officer(mcore, u.id), 15, "registration failed"
                )
            coordinator = vetting.active_officer(mcore, vn.id)
            await asyncio.to_thread(
                meetings.record_meetings,
                mcore,
                coordinator,
                [
                    meetings.MeetingDraft(
                        "Tripartite follow-up",
                        "2026-07-30",
                        language="en",
                        items=(
                            meetings.ItemDraft(
                                "Draft the plan for a joint task force",
                                ("@somphone_p",),
                                "30/08/2026",
                                "CN-LA-2026-0007",
                            ),
                        ),
                    )
                ],
            )
            await mcore.extras["meetings"].run_once()
            assigned = await emu.wait_for(
                lambda: [m for m in emu.messages(la.id) if "📋" in m.body],
                15,
                "no 'assigned' notice reached the Lao officer",
            )
            assert "[lo] Draft the plan for a joint task force" in assigned[0].body
            clock.set(datetime(2026, 8, 23, 1, 59, tzinfo=UTC))  # 08:59 in Vientiane: nothing yet
            await mcore.extras["meetings"].run_once()
            assert [m for m in emu.messages(la.id) if "⏰" in m.body] == []
            clock.set(datetime(2026, 8, 23, 2, 0, tzinfo=UTC))  # 09:00 in Vientiane
            await mcore.extras["meetings"].run_once()
            reminder = (await emu.wait_for(lambda: [m for m in emu.messages(la.id) if "⏰" in m.body], 15))[0]
            assert reminder.raw_text is not None and reminder.raw_text.startswith(
                lo(reminders.DUE_IN_DAYS, id=1, n=7, due="30 ສິງຫາ 2026")
            )
            assert "ແຈ້ງເຕືອນ" in reminder.body and "CN-LA-2026-0007" in reminder.body
            assert reminder.button_texts == ["✅ ສຳເລັດແລ້ວ", "⏰ ເລື່ອນໄປ 1 ມື້", "🆘 ຕ້ອງການຄວາມຊ່ວຍເຫຼືອ"]
            assert reminder.protect_content

            callback_id = await emu.press_button(la.id, reminder.message_id, button_text="✅ ສຳເລັດແລ້ວ")
            answered = await emu.wait_for(
                lambda: emu.callback(callback_id).answered and emu.callback(callback_id),
                15,
                "the Done press was not answered",
            )
            assert answered.text == lo.plain(h.DONE_OK, id=1)
            await emu.wait_for(
                lambda: [m for m in emu.messages(la.id) if m.body == lo.plain(h.DONE_OK, id=1)], 15
            )
            assert not emu.message(la.id, reminder.message_id).buttons  # the buttons are gone
            told = await emu.wait_for(
                lambda: [m for m in emu.messages(vn.id) if "✅" in m.body], 15, "the coordinator was not told"
            )
            assert told[0].raw_text is not None and told[0].raw_text.startswith(
                vi(
                    reminders.COMPLETED,
                    name="ສົມພອນ ພົມມະວົງ @somphone_p",
                    id=1,
                    meeting="[vi] Tripartite follow-up",
                )
            )
            assert meetings.item_view(mcore, None, 1).status == "done"
            clock.set(datetime(2026, 8, 29, 2, 0, tzinfo=UTC))  # the "1 day before" slot: nothing now
            await mcore.extras["meetings"].run_once()
            assert len([m for m in emu.messages(la.id) if "⏰" in m.body]) == 1
    finally:
        await emu.stop()
