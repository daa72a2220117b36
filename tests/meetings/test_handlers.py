"""The Telegram side, fast: real updates through the application, the network replaced by a recorder."""

from __future__ import annotations

from datetime import UTC, datetime

from bot import reminders
from bot.clock import FakeClock
from bot.core import Core
from handlers import meetings as h
from tests.meetings.conftest import Team, one_meeting
from tests.support.telegram import offline_app


async def test_meeting_conversation_records_and_tells_owners(mcore: Core, team: Team) -> None:
    """/meeting walks a coordinator through title, date, place, participants and items; bad answers are
    explained in their language and asked again; /finish records it and the owners are told."""
    zh = mcore.catalogs.get("zh")
    coord = team.coordinator.telegram_id
    async with offline_app(mcore) as (app, request, users):

        async def say(text: str) -> str:
            request.clear()
            await app.process_update(users.message(coord, text, language="zh"))
            return "\n".join(c.text for c in request.sent(coord))

        assert await say("/meeting") == zh(h.ASK_TITLE)
        assert await say("三方后续会议") == zh(h.ASK_DATE)
        assert "32/13/2026" in await say("32/13/2026")  # cannot read the date: asked again
        assert await say("2026年7月30日") == zh(h.ASK_PLACE)
        assert await say("广州") == zh(h.ASK_PARTICIPANTS)
        assert await say("-") == zh(h.ASK_ITEM, n=1)
        assert await say("起草联合工作组计划") == zh(h.ASK_OWNERS)
        assert await say("@ghost") == zh("No active officer is registered as {ref}.", ref="@ghost")
        assert await say("@khamla_s @nguyen_an") == zh(h.ASK_DUE)
        assert await say("01/07/2026") == zh("The due date {date} is in the past.", date="2026-07-01")
        assert await say("30/08/2026") == zh(h.ASK_CASE)
        noted = await say("cn-vn-2026-0042")
        assert noted.startswith(
            zh(h.ITEM_NOTED, n=1, owners="Khamla S @khamla_s, Nguyen An @nguyen_an", due="2026年8月30日")
        )
        assert noted.endswith(zh(h.ASK_ITEM, n=2))
        done = await say("/finish")
        assert done.startswith(zh(h.RECORDED, id=1, title="三方后续会议", n=1))
        assert "#1 起草联合工作组计划" in done
        # the owners were told at once, in their languages, with Done / Need help buttons
        lao = request.sent(team.la.telegram_id)
        assert len(lao) == 1 and "[lo] 起草联合工作组计划" in lao[0].text
        assert [b["text"] for b in lao[0].buttons] == ["✅ ສຳເລັດແລ້ວ", "🆘 ຕ້ອງການຄວາມຊ່ວຍເຫຼືອ"]
        assert "[vi]" in request.sent(team.vn.telegram_id)[0].text
        assert "CN-VN-2026-0042" in lao[0].text


async def test_cancel_and_roles(mcore: Core, team: Team) -> None:
    """/cancel drops the draft; an officer cannot start /meeting (answered in Lao)."""
    async with offline_app(mcore) as (app, request, users):
        await app.process_update(users.message(team.coordinator.telegram_id, "/meeting"))
        await app.process_update(users.message(team.coordinator.telegram_id, "A title"))
        request.clear()
        await app.process_update(users.message(team.coordinator.telegram_id, "/cancel"))
        assert request.sent(team.coordinator.telegram_id)[0].text == mcore.catalogs.get("zh")(h.CANCELLED)
        request.clear()
        await app.process_update(users.message(team.la.telegram_id, "/meeting"))
        assert request.sent(team.la.telegram_id)[0].text == mcore.catalogs.get("lo")(
            "You are not allowed to do that."
        )
    assert mcore.extras.get("meetings") is None  # the service stopped with the application


async def test_reminder_buttons_snooze_help_done(mcore: Core, team: Team, clock: FakeClock) -> None:
    """A reminder carries Done / Snooze / Need help; each press does what it says, in the owner's language."""
    lo, vi = mcore.catalogs.get("lo"), mcore.catalogs.get("vi")
    one_meeting(mcore, team.coordinator, ("@khamla_s", "@nguyen_an"), case="CN-VN-2026-0042")
    async with offline_app(mcore) as (app, request, users):
        runner = mcore.extras["meetings"]
        await runner.run_once()
        clock.set(datetime(2026, 8, 23, 2, 0, tzinfo=UTC))
        request.clear()
        await runner.run_once()
        reminder = request.sent(team.la.telegram_id)[0]
        assert reminder.text.startswith(lo(reminders.DUE_IN_DAYS, id=1, n=7, due="30 ສິງຫາ 2026"))
        assert [b["callback_data"] for b in reminder.buttons] == ["mi:done:1", "mi:snz:1", "mi:help:1"]
        assert reminder.params.get("protect_content") is True

        request.clear()
        await app.process_update(users.press(team.la.telegram_id, "mi:snz:1"))
        answer = request.sent(method="answerCallbackQuery")[0].params["text"]
        assert answer == lo.plain(h.SNOOZED, when="2026-08-24 09:00 UTC+07:00")

        request.clear()
        await app.process_update(users.press(team.vn.telegram_id, "mi:help:1"))
        assert request.sent(method="answerCallbackQuery")[0].params["text"] == vi.plain(
            h.HELP_SENT, name="Wang Lei @wang_lei", id=1
        )
        asked = request.sent(team.coordinator.telegram_id)
        assert len(asked) == 1 and asked[0].text.startswith("🆘 Nguyen An @nguyen_an")
        assert "协助" in asked[0].text

        request.clear()
        await app.process_update(users.press(team.la.telegram_id, "mi:done:1"))
        assert request.sent(method="answerCallbackQuery")[0].params["text"] == lo.plain(h.DONE_OK, id=1)
        assert request.sent(method="editMessageReplyMarkup")
        assert request.sent(team.la.telegram_id, method="sendMessage")[0].text == lo(h.DONE_OK, id=1)
        told = request.sent(team.coordinator.telegram_id)
        assert len(told) == 1 and told[0].text.startswith("✅ Khamla S @khamla_s")

        request.clear()
        await app.process_update(users.message(team.vn.telegram_id, "/done 1"))
        assert request.sent(team.vn.telegram_id)[0].text == vi("Action item #{id} is already closed.", id=1)
        clock.set(datetime(2026, 8, 29, 2, 0, tzinfo=UTC))
        request.clear()
        await runner.run_once()
        assert request.sent(team.la.telegram_id) == [] and request.sent(team.vn.telegram_id) == []


async def test_actions_done_and_item_commands(mcore: Core, team: Team, clock: FakeClock) -> None:
    """/actions lists one's open items (overdue marked); /done closes; /item lets the coordinator change one."""
    one_meeting(mcore, team.coordinator, ("@nguyen_an",), text="Share the seizure list")
    vi, zh = mcore.catalogs.get("vi"), mcore.catalogs.get("zh")
    async with offline_app(mcore) as (app, request, users):
        clock.set(datetime(2026, 8, 31, 3, 0, tzinfo=UTC))
        await app.process_update(users.message(team.vn.telegram_id, "/actions", language="vi"))
        listing = request.sent(team.vn.telegram_id)[-1].text
        assert listing.startswith(vi(h.ACTIONS_HEADER))
        assert (
            vi(
                h.ACTIONS_OVERDUE,
                id=1,
                text="[vi] Share the seizure list",
                due="30 tháng 8, 2026",
                meeting="[vi] Tripartite meeting on wildlife trafficking",
            )
            in listing
        )
        request.clear()
        await app.process_update(users.message(team.coordinator.telegram_id, "/actions"))
        coord = request.sent(team.coordinator.telegram_id)[-1].text
        assert coord.startswith(zh(h.NO_ACTIONS)) and zh(h.MEETINGS_HEADER) in coord
        assert "#1 [zh] Tripartite meeting on wildlife trafficking" in coord
        request.clear()
        await app.process_update(users.message(team.coordinator.telegram_id, "/item 1 due 15/09/2026"))
        assert request.sent(team.coordinator.telegram_id)[0].text == zh(
            h.ITEM_CHANGED, id=1, due="2026年9月15日", owners="Nguyen An @nguyen_an"
        )
        request.clear()
        await app.process_update(users.message(team.vn.telegram_id, "/done"))
        assert request.sent(team.vn.telegram_id)[0].text == vi(h.DONE_USAGE)
        await app.process_update(users.message(team.vn.telegram_id, "/done 1"))
        assert request.sent(team.vn.telegram_id)[-1].text == vi(h.DONE_OK, id=1)
        request.clear()
        await app.process_update(users.message(team.vn.telegram_id, "/actions"))
        assert request.sent(team.vn.telegram_id)[-1].text == vi(h.NO_ACTIONS)


async def test_service_catches_up_once_at_start_and_ticks_every_minute(
    mcore: Core, team: Team, clock: FakeClock
) -> None:
    """Starting the bot after downtime sends the missed reminder once; the tick is an interval job."""
    one_meeting(mcore, team.coordinator, ("@khamla_s",))
    clock.set(datetime(2026, 8, 30, 5, 0, tzinfo=UTC))  # down across "7 days", "1 day" and the due date
    async with offline_app(mcore) as (app, request, users):
        runner = mcore.extras["meetings"]
        await runner.run_once()  # waits for the catch-up run started with the bot, then finds nothing
        sent = [c.text for c in request.sent(team.la.telegram_id)]
        assert len(sent) == 2 and sent[0].startswith("📋")  # the assigned notice, then ONE reminder
        assert sent[1].startswith(mcore.catalogs.get("lo")(reminders.DUE_TODAY, id=1, due="30 ສິງຫາ 2026"))
        job = mcore.extras["scheduler"].get_job("meetings-tick")
        assert job is not None and job.trigger.interval.total_seconds() == reminders.TICK_SECONDS
