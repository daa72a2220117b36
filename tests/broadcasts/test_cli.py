"""`liaison broadcast` from the server: preview, confirmation, enqueueing only; `status ID`."""

from __future__ import annotations

import io

import pytest

from bot import broadcasts
from bot.cli import broadcast as cli_broadcast
from bot.cli import main
from bot.config import Settings
from bot.core import Core
from bot.errors import NotFound
from tests.broadcasts.conftest import People
from tests.support.translators import TagTranslator


@pytest.fixture
def cli_env(core: Core, monkeypatch: pytest.MonkeyPatch) -> TagTranslator:
    """Point the CLI at the test database; its translator is the tagging one (engines are tested elsewhere)."""
    monkeypatch.setenv("LIAISON_DATABASE_URL", core.settings.database_url)
    monkeypatch.setenv("LIAISON_DATA_DIR", str(core.settings.data_dir))
    monkeypatch.setenv("LIAISON_DATA_KEY", core.settings.data_key.get())  # type: ignore[union-attr]
    translator = TagTranslator()

    def open_core(settings: Settings) -> Core:
        return Core.build(settings, translator=translator, catalogs=core.catalogs)

    monkeypatch.setattr(cli_broadcast, "open_core", open_core)
    return translator


def test_cli_previews_then_enqueues_with_yes(core: Core, people: People, cli_env: TagTranslator,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """--yes prints the preview per country and language, queues one copy per officer, sends nothing itself."""
    people.many(2)
    code = main(["broadcast", "--scope", "country:LA,VN", "--text", "Rhino horn courier on flight VN611",
                 "--priority", "urgent", "--yes"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "to country:LA,VN: 4 officers" in printed
    assert "[lo] Rhino horn courier" in printed and "[vi] Rhino horn courier" in printed and "[zh]" not in printed
    assert len(cli_env.calls) == 1
    bid = broadcasts.latest_id(core, None)
    assert broadcasts.stats(core, bid) == {"pending": 4}  # the bot's worker sends them, not the CLI
    assert main(["broadcast", "status", str(bid)]) == 0
    status = capsys.readouterr().out
    assert "Copies: pending 4" in status and "Acknowledged: 0 of 4" in status and "Re-sends done: 0 of 2" in status


def test_cli_asks_and_a_no_cancels(core: Core, people: People, cli_env: TagTranslator,
                                   monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --yes the CLI asks; anything but yes cancels the draft."""
    people.many(1)
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert main(["broadcast", "--scope", "all", "--text", "Maybe not"]) == 1
    assert "cancelled; nothing was sent" in capsys.readouterr().out
    with pytest.raises(NotFound):  # no broadcast was confirmed
        broadcasts.latest_id(core, None)


def test_cli_bad_input(core: Core, people: People, cli_env: TagTranslator, capsys: pytest.CaptureFixture[str]) -> None:
    """A scope matching nobody, an empty text and a bad status call are refused with exit status 2."""
    people.add("Lan", "VN")
    assert main(["broadcast", "--scope", "country:CN", "--text", "Hello", "--yes"]) == 2
    assert "matches no active officer" in capsys.readouterr().err
    assert main(["broadcast", "--scope", "all", "--text", "  ", "--yes"]) == 2
    assert "has no text" in capsys.readouterr().err
    assert main(["broadcast", "status", "x"]) == 2
