"""`liaison meetings import`: the documented CSV and YAML formats, all or nothing, problems by line number."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import meetings_import
from bot.cli import main
from bot.clock import FakeClock
from bot.core import Core
from bot.models.meetings import ActionItem, Meeting, MeetingMessage
from tests.meetings.conftest import People

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "meetings"


@pytest.fixture
def demo_people(people: People, clock: FakeClock) -> People:
    """The sandbox's demo officers (the examples name them), on 25 November 2026."""
    clock.set(datetime(2026, 11, 25, 3, tzinfo=UTC))
    people.add("lan_coordinator", "VN", "coordinator")
    people.add("chen_zhiqiang", "CN")
    people.add("tran_van_hung", "VN")
    people.add("somphone_p", "LA")
    return people


def _count(core: Core, model) -> int:  # type: ignore[no-untyped-def]
    with core.db.session() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.mark.parametrize("name", ["guangzhou-followup.yaml", "guangzhou-followup.csv"])
def test_documented_examples_import(mcore: Core, demo_people: People, name: str) -> None:
    """Both example files record the same meeting: 4 items, owners told, case tag kept."""
    result = meetings_import.import_file(mcore, None, EXAMPLES / name)
    assert (result.meetings, result.items) == (1, 4)
    meeting = result.recorded[0]
    assert meeting.coordinator == "Lan Coordinator @lan_coordinator"
    assert [i.due_on.isoformat() for i in meeting.items] == [
        "2027-01-31",
        "2027-02-28",
        "2027-03-31",
        "2027-01-15",
    ]
    assert meeting.items[1].case_tag == "CN-VN-2026-0042"
    assert len(meeting.items[2].owners) == 3
    assert _count(mcore, MeetingMessage) == 8  # one 'assigned' notice per owner
    with pytest.raises(meetings_import.ImportFailed) as err:  # importing the same file twice
        meetings_import.import_file(mcore, None, EXAMPLES / name)
    assert "already recorded (meeting #1)" in err.value.problems[0].message
    assert _count(mcore, Meeting) == 1


YAML_WITH_PROBLEMS = """\
meetings:
  - title: Border liaison meeting
    date: 2026-11-20
    coordinator: "@lan_coordinator"
    items:
      - text: Share the seizure list
        owners: ["@chen_zhiqiang"]
        due: 2027-01-31
      - text: Check permits
        owners: ["@nobody_at_all"]
        due: 2027-02-01
      - text: ""
        owners: "@somphone_p"
        due: 2027-02-01
      - text: Meet again
        owners: "@somphone_p"
        due: 01/11/2026
        cases: CN-LA-1
  - title: Second meeting
    date: 32/11/2026
    coordinator: "@chen_zhiqiang"
    items:
      - text: Fine item
        owners: "@tran_van_hung"
        due: 2027-03-01
"""


def test_yaml_problems_are_reported_with_their_lines(
    mcore: Core, demo_people: People, tmp_path: Path
) -> None:
    """Every problem of the file, each with its line; nothing at all is recorded."""
    path = tmp_path / "meetings.yaml"
    path.write_text(YAML_WITH_PROBLEMS, encoding="utf-8")
    with pytest.raises(meetings_import.ImportFailed) as err:
        meetings_import.import_file(mcore, None, path)
    found = [(p.line, p.message) for p in err.value.problems]
    assert found == [
        (10, "No active officer is registered as @nobody_at_all."),
        (12, "The action item needs a text."),
        (17, "The due date 2026-11-01 is in the past."),
        (18, "unknown field 'cases' (known: text, owners, due, case)"),
        (20, "Cannot read the date 32/11/2026: write it like 30/08/2026 or 2026-08-30."),
        (21, "@chen_zhiqiang is not a coordinator."),
    ]
    assert _count(mcore, Meeting) == 0 and _count(mcore, ActionItem) == 0


CSV_WITH_PROBLEMS = (
    "meeting,date,coordinator,item,owners,due,case,place\n"
    "Border liaison meeting,2026-11-20,@lan_coordinator,Share the seizure list,@chen_zhiqiang,31/01/2027,,Lao Cai\n"
    'Border liaison meeting,2026-11-20,@lan_coordinator,"Check the permits\n(two lines in one cell)",'
    "@somphone_p,2027-02-01,,Lao Cai\n"
    "\n"
    "Border liaison meeting,2026-11-20,@lan_coordinator,Meet again,@somphone_p @ghost,1 Feb 2027,BAD TAG!,Ha Khau\n"
    "Other meeting,2026-11-20,,Fine item,@tran_van_hung,not a date,,\n"
)


def test_csv_problems_are_reported_with_their_lines(mcore: Core, demo_people: People, tmp_path: Path) -> None:
    """Line numbers are the file's physical lines (a quoted cell may span two)."""
    path = tmp_path / "meetings.csv"
    path.write_text(CSV_WITH_PROBLEMS, encoding="utf-8")
    with pytest.raises(meetings_import.ImportFailed) as err:
        meetings_import.import_file(mcore, None, path)
    found = [(p.line, p.message) for p in err.value.problems]
    assert found == [
        (6, "place 'Ha Khau' differs from line 2 of the same meeting ('Lao Cai')"),
        (6, "No active officer is registered as @ghost."),
        (6, "The case tag BAD TAG! is not valid: use letters, digits and dashes, e.g. CN-VN-2026-0042."),
        (7, "The meeting needs a coordinator: the @username of a registered coordinator."),
        (7, "Cannot read the date not a date: write it like 30/08/2026 or 2026-08-30."),
    ]
    assert _count(mcore, Meeting) == 0


def test_csv_with_semicolons_and_a_missing_column(mcore: Core, demo_people: People, tmp_path: Path) -> None:
    """Spreadsheets that save with semicolons work; a missing column is named."""
    good = tmp_path / "ok.csv"
    good.write_text(
        "\ufeffmeeting;date;coordinator;item;owners;due\n"
        "Họp giao ban;20/11/2026;@lan_coordinator;Chia sẻ danh sách tang vật;@tran_van_hung;15/01/2027\n",
        encoding="utf-8",
    )
    assert meetings_import.import_file(mcore, None, good).items == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("meeting,date,item,owners\nX,2026-11-20,Y,@somphone_p\n", encoding="utf-8")
    with pytest.raises(meetings_import.ImportFailed) as err:
        meetings_import.import_file(mcore, None, bad)
    assert [(p.line, p.message) for p in err.value.problems] == [(1, "missing column(s): due")]


def _cli_env(monkeypatch: pytest.MonkeyPatch, mcore: Core) -> None:
    monkeypatch.setenv("LIAISON_DATA_DIR", str(mcore.settings.data_dir))
    monkeypatch.setenv("LIAISON_DATABASE_URL", mcore.settings.database_url)
    monkeypatch.setenv("LIAISON_DATA_KEY", mcore.settings.data_key.get())  # type: ignore[union-attr]


def test_cli_import_reports_file_and_line(
    mcore: Core,
    demo_people: People,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`liaison meetings import` prints FILE:LINE: message for each problem and exits 2; a good file imports."""
    _cli_env(monkeypatch, mcore)
    path = tmp_path / "meetings.yaml"
    path.write_text(YAML_WITH_PROBLEMS, encoding="utf-8")
    # the CLI reads the real clock: these dates lie in the past for it, so only the line numbers are checked
    assert main(["meetings", "import", str(path), "--no-translate"]) == 2
    err = capsys.readouterr().err
    assert (
        "nothing was imported" in err
        and f"{path}:10: No active officer is registered as @nobody_at_all." in err
    )
    # the CLI runs on the real clock: a file whose dates follow today's
    today = date.today()
    example = tmp_path / "followup.yaml"
    example.write_text(
        (EXAMPLES / "guangzhou-followup.yaml")
        .read_text(encoding="utf-8")
        .replace("2026-11-20", (today - timedelta(days=3)).isoformat())
        .replace("2027-01-31", (today + timedelta(days=60)).isoformat())
        .replace("28/02/2027", (today + timedelta(days=90)).strftime("%d/%m/%Y"))
        .replace("31 Mar 2027", (today + timedelta(days=120)).strftime("%d %b %Y"))
        .replace("2027/1/15", (today + timedelta(days=45)).strftime("%Y/%m/%d")),
        encoding="utf-8",
    )
    assert main(["meetings", "import", str(example), "--dry-run"]) == 0
    assert "OK, 1 meeting(s) with 4 action item(s) would be recorded" in capsys.readouterr().out
    assert main(["meetings", "import", str(example), "--no-translate"]) == 0
    out = capsys.readouterr().out
    assert "meeting #1:" in out and "imported 1 meeting(s) with 4 action item(s)" in out
    assert main(["meetings", "list"]) == 0
    assert "open   4" in capsys.readouterr().out
    assert main(["meetings", "show", "1", "--json"]) == 0
    assert capsys.readouterr().out.count("\n") == 4
    assert main(["meetings", "done", "2"]) == 0
    assert main(["meetings", "timezone", "@somphone_p", "Asia/Bangkok"]) == 0
    assert "Asia/Bangkok" in capsys.readouterr().out
