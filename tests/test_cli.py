"""The `liaison` command: db, invites, officers; user mistakes are one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import __version__, vetting
from bot.cli import main
from bot.config import Settings
from bot.core import Core


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the CLI at the test's database and data dir."""
    monkeypatch.setenv("LIAISON_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LIAISON_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LIAISON_DATA_KEY", settings.data_key.get())  # type: ignore[union-attr]
    monkeypatch.setenv("LIAISON_BOT_USERNAME", "liaison_test_bot")
    monkeypatch.delenv("LIAISON_TELEGRAM_TOKEN", raising=False)
    return settings


def test_invite_create_json(env: Settings, core: Core, capsys: pytest.CaptureFixture[str]) -> None:
    """`invite create --json` prints one object whose code registers the right role."""
    assert main(["invite", "create", "--role", "coordinator", "--country", "vn", "--agency", "Customs",
                 "--expires", "48h", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= {"code", "link", "role", "expires_at"}
    assert doc["role"] == "coordinator" and doc["link"] == f"https://t.me/liaison_test_bot?start={doc['code']}"
    officer = vetting.register(core, telegram_id=42, code=doc["code"], display_name="Lan", username="lan")
    assert (officer.role, officer.country, officer.agency_name, officer.language) == ("coordinator", "VN",
                                                                                      "Customs", "vi")
    assert main(["officers", "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["username"] for o in listed] == ["lan"]
    assert main(["officers", "revoke", "@lan", "--reason", "left the service"]) == 0
    assert "revoked: Lan" in capsys.readouterr().out
    assert vetting.active_officer(core, 42) is None


def test_user_mistakes_are_one_line(env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """Wrong values give one line on stderr and exit status 2, no traceback."""
    assert main(["invite", "create", "--role", "officer"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("liaison: error: An officer needs a country") and err.count("\n") == 1
    assert main(["invite", "create", "--role", "officer", "--country", "LA", "--expires", "90d"]) == 2
    assert "30 days" in capsys.readouterr().err
    assert main(["officers", "revoke", "@nobody"]) == 2
    assert "No officer @nobody is registered" in capsys.readouterr().err
    assert main(["run"]) == 2
    assert "LIAISON_TELEGRAM_TOKEN is not set" in capsys.readouterr().err


def test_db_commands(db_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                     capsys: pytest.CaptureFixture[str]) -> None:
    """`db current` tells an empty database apart; `db upgrade` brings it to head; others refuse to run before."""
    url = db_factory.empty(tmp_path)
    try:
        monkeypatch.setenv("LIAISON_DATABASE_URL", url)
        monkeypatch.setenv("LIAISON_DATA_DIR", str(tmp_path / "data"))
        assert main(["db", "current"]) == 0
        assert "none (head is" in capsys.readouterr().out
        assert main(["officers", "list"]) == 2
        assert "run `liaison db upgrade`" in capsys.readouterr().err
        assert main(["db", "upgrade"]) == 0
        assert main(["db", "current"]) == 0
        assert capsys.readouterr().out.strip().endswith("(head)")
    finally:
        db_factory.drop(url)


def test_console_script_version() -> None:
    """The installed `liaison` command answers --version."""
    exe = Path(sys.executable).with_name("liaison")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, env=os.environ, check=True)
    assert out.stdout.strip() == f"liaison {__version__}"
