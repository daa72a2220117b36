"""Recording meetings: dates as officers type them, validation with localized errors, translation once per
language, encryption, roles, changes and time-zone overrides."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from bot import meetings, reminders, vetting
from bot.clock import FakeClock
from bot.core import Core
from bot.errors import InvalidInput, LiaisonError, NotAllowed
from bot.models import AuditEvent
from bot.models.meetings import ActionOwner, MeetingMessage
from tests.meetings.conftest import People, Team, one_meeting
from tests.support.translators import TagTranslator

D = date(2026, 8, 30)


@pytest.mark.parametrize(
    "text",
    [
        "2026-08-30",
        "30/08/2026",
        "30.08.2026",
        "30-08-2026",
        "2026/8/30",
        "2026.8.30",
        "2026/08/30",
        "30/8/26",
        "30 Aug 2026",
        "30 August 2026",
        "Aug 30, 2026",
        "August 30 2026",
        "30-Aug-2026",
        "30 aug. 2026",
        "2026年8月30日",
        "2026 年 8 月 30 日",
        "30 tháng 8 năm 2026",
        "ngày 30 tháng 8 năm 2026",
        "30 thang 8 2026",
        "30 ສິງຫາ 2026",
        "30 ສ.ຫ. 2026",
        "３０/０８/２０２６",
        " 30/08/2026. ",
        "08/30/2026",
    ],
)
def test_dates_as_officers_type_them(text: str) -> None:
    """ISO, day-first with / . -, month names (English, Lao), Chinese and Vietnamese forms, full-width digits."""
    assert meetings.parse_date(text) == D


def test_ambiguous_dates_are_day_first_and_nonsense_is_refused(catalogs) -> None:  # type: ignore[no-untyped-def]
    """07/08/2026 is 7 August (as in Lao PDR and Viet Nam); impossible dates get a clear localized answer."""
    assert meetings.parse_date("07/08/2026") == date(2026, 8, 7)
    for bad in ("", "tomorrow", "31/02/2026", "2026-13-01", "30/08", "1/2/3/4", "30 Foo 2026"):
        with pytest.raises(InvalidInput) as err:
            meetings.parse_date(bad)
        assert err.value.message == meetings.BAD_DATE
    exc = pytest.raises(InvalidInput, meetings.parse_date, "31/02/2026").value
    vi = catalogs.get("vi").error(exc)
    assert "31/02/2026" in vi and vi.startswith("Không đọc được ngày")


def _draft(
    owners: tuple[str, ...] = ("@chen_jing",),
    due: str = "30/08/2026",
    text: str = "Share seizure data",
    title: str = "Joint meeting",
    held_on: str = "2026-07-30",
    case: str | None = None,
) -> meetings.MeetingDraft:
    return meetings.MeetingDraft(
        title=title, held_on=held_on, language="en", items=(meetings.ItemDraft(text, owners, due, case),)
    )


def test_bad_input_is_refused_with_localized_answers(mcore: Core, team: Team, people: People) -> None:
    """Past due dates, unknown or revoked owners, empty texts, bad case tags, future meetings: refused."""
    people.add("gone_officer", "LA")
    vetting.revoke(mcore, None, "@gone_officer")
    cases = [
        (_draft(due="31/07/2026"), meetings.DUE_PAST),
        (_draft(due="2040-01-01"), meetings.DUE_FAR),
        (_draft(owners=("@nobody_here",)), meetings.UNKNOWN_OWNER),
        (_draft(owners=("@gone_officer",)), meetings.UNKNOWN_OWNER),
        (_draft(owners=()), meetings.NO_OWNERS),
        (_draft(text="   "), meetings.EMPTY_TEXT),
        (_draft(title=""), meetings.EMPTY_TITLE),
        (_draft(case="CN VN 42!"), meetings.BAD_CASE),
        (_draft(held_on="2026-09-15"), meetings.MEETING_FUTURE),
        (_draft(due="30/30/2026"), meetings.BAD_DATE),
    ]
    lo = mcore.catalogs.get("lo")
    for draft, msgid in cases:
        with pytest.raises(LiaisonError) as err:
            meetings.record_meetings(mcore, team.coordinator, [draft])
        assert err.value.message == msgid
        shown = lo.error(err.value)
        assert shown != err.value.english() and any("\u0e80" <= ch <= "\u0eff" for ch in shown)
    with pytest.raises(NotAllowed):
        meetings.record_meetings(mcore, team.cn, [_draft()])  # officers do not record meetings
    with mcore.db.session() as s:
        assert s.execute(select(AuditEvent).where(AuditEvent.kind.startswith("meeting."))).first() is None


def test_texts_translated_once_per_language_and_encrypted(
    mcore: Core, team: Team, translator: TagTranslator
) -> None:
    """Title and each item are translated in ONE call each, into every owner's and the coordinator's language."""
    translator.calls.clear()
    rec = meetings.record_meetings(
        mcore,
        team.coordinator,
        [
            meetings.MeetingDraft(
                "Guangzhou follow-up",
                "2026-07-30",
                language="en",
                items=(
                    meetings.ItemDraft(
                        "Draft the task force plan", ("@chen_jing", "@khamla_s", "@nguyen_an"), "2026-09-30"
                    ),
                    meetings.ItemDraft("Share permit formats", ("@khamla_s", "@chen_jing"), "2026-10-15"),
                ),
            )
        ],
    )[0]
    assert [c[0] for c in translator.calls] == [
        "Guangzhou follow-up",
        "Draft the task force plan",
        "Share permit formats",
    ]
    assert {c[2] for c in translator.calls} == {("en", "lo", "vi", "zh")}
    la_view = meetings.open_items(mcore, team.la)
    assert [v.text for v in la_view] == ["[lo] Draft the task force plan", "[lo] Share permit formats"]
    assert (
        la_view[0].meeting_title == "[lo] Guangzhou follow-up"
        and la_view[0].owners[0] == "Chen Jing @chen_jing"
    )
    # the assigned notices are queued for the next tick, one per owner
    with mcore.db.session() as s:
        kinds = s.execute(select(MeetingMessage.kind, MeetingMessage.status)).all()
    assert sorted(kinds) == [("assigned", "pending")] * 5
    with mcore.db.session() as s:
        created = [
            json.loads(d)
            for d in s.execute(
                select(AuditEvent.data).where(AuditEvent.kind == "meeting.item.created")
            ).scalars()
        ]
    assert [c["text_sha256"] for c in created] == [
        reminders.audit.body_hash("Draft the task force plan"),
        reminders.audit.body_hash("Share permit formats"),
    ]
    assert rec.items[0].owners == ("Chen Jing @chen_jing", "Khamla S @khamla_s", "Nguyen An @nguyen_an")


def test_source_language_is_detected_when_not_given(
    mcore: Core, team: Team, translator: TagTranslator
) -> None:
    """A coordinator who types Vietnamese gets Vietnamese as the source, whatever their interface language."""
    translator.calls.clear()
    meetings.record_meetings(
        mcore,
        team.coordinator,
        [
            meetings.MeetingDraft(
                "Họp giao ban biên giới",
                "2026-07-30",
                items=(
                    meetings.ItemDraft(
                        "Chia sẻ danh sách các vụ bắt giữ gần đây", ("@khamla_s",), "2026-09-30"
                    ),
                ),
            )
        ],
    )
    assert {c[1] for c in translator.calls} == {"vi"}


def test_change_due_date_owners_and_cancel(mcore: Core, team: Team, clock: FakeClock) -> None:
    """The meeting's coordinator moves a due date (schedules follow), reassigns, cancels; others may not."""
    item_id = one_meeting(mcore, team.coordinator, ("@khamla_s",)).items[0].id
    with pytest.raises(NotAllowed):
        meetings.change_item(mcore, team.la, item_id, due="30/09/2026")
    view = meetings.change_item(
        mcore, team.coordinator, item_id, due="30/09/2026", owners=["@nguyen_an @khamla_s"]
    )
    assert view.due_on == date(2026, 9, 30) and view.owners == ("Khamla S @khamla_s", "Nguyen An @nguyen_an")
    with mcore.db.session() as s:
        nexts = set(s.execute(select(ActionOwner.next_remind_at)).scalars())
    assert nexts == {datetime(2026, 9, 23, 2, tzinfo=UTC)}  # 7 days before, 09:00 in UTC+7
    meetings.change_item(mcore, None, item_id, owners=["@nguyen_an"])
    assert meetings.item_view(mcore, None, item_id).owners == ("Nguyen An @nguyen_an",)
    meetings.change_item(mcore, team.coordinator, item_id, cancel=True)
    assert meetings.item_view(mcore, None, item_id).status == "cancelled"
    assert meetings.open_items(mcore, team.vn) == []
    with mcore.db.session() as s:
        changed = (
            s.execute(select(AuditEvent.data).where(AuditEvent.kind == "meeting.item.changed"))
            .scalars()
            .all()
        )
    assert len(changed) == 3 and json.loads(changed[0])["changes"]["due_on"] == {
        "from": "2026-08-30",
        "to": "2026-09-30",
    }


def test_per_officer_time_zone_override(mcore: Core, team: Team) -> None:
    """An officer posted elsewhere is reminded at 09:00 in their own zone; '-' returns to the country's."""
    item_id = one_meeting(mcore, team.coordinator, ("@khamla_s",)).items[0].id
    with pytest.raises(InvalidInput):
        meetings.set_timezone(mcore, None, "@khamla_s", "Mars/Olympus")
    with pytest.raises(NotAllowed):
        meetings.set_timezone(mcore, team.la, "@khamla_s", "Asia/Tokyo")
    info = meetings.set_timezone(mcore, team.coordinator, "@khamla_s", "Asia/Tokyo")
    assert info.timezone == "Asia/Tokyo"

    def next_at() -> datetime:
        with mcore.db.session() as s:
            return s.execute(
                select(ActionOwner.next_remind_at).where(ActionOwner.item_id == item_id)
            ).scalar_one()

    assert next_at() == datetime(2026, 8, 23, 0, tzinfo=UTC)  # 09:00 UTC+9
    assert meetings.set_timezone(mcore, None, "@khamla_s", "-").timezone == "Asia/Vientiane"
    assert next_at() == datetime(2026, 8, 23, 2, tzinfo=UTC)
