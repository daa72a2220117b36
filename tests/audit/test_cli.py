"""`liaison audit ...` and `liaison keys ...`: what an administrator and an auditor type at the server."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import crypto
from bot.cli import main
from bot.config import Settings
from bot.core import Core
from tests.audit import relaydata
from tests.audit.conftest import Register, append, sql

T0 = datetime(2026, 8, 3, 1, 30, tzinfo=UTC)


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the CLI at the test's database and data dir."""
    monkeypatch.setenv("LIAISON_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LIAISON_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LIAISON_DATA_KEY", settings.data_key.get())  # type: ignore[union-attr]
    monkeypatch.delenv("LIAISON_RETENTION_DAYS", raising=False)
    return settings


def test_verify_intact_and_broken(env: Settings, core: Core, capsys: pytest.CaptureFixture[str]) -> None:
    """`audit verify` prints 'intact, N events, head hash …' (exit 0) or the first break (exit 1)."""
    append(core, 12)
    assert main(["audit", "verify"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("intact, 12 events, head hash ")
    head = first.rsplit(" ", 1)[1]
    assert main(["audit", "verify", "--anchor", f"12:{head}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["intact"] is True
    sql(core, "DELETE FROM audit_events WHERE seq = 7")
    assert main(["audit", "verify"]) == 1
    assert capsys.readouterr().out.startswith("BROKEN at event 7 (gap): event 7 missing")


def test_export_and_verify_export(
    env: Settings, core: Core, register: Register, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Export a case, show the key, verify pinned and against the database; an altered bundle fails."""
    a, b = register("officer", "LA"), register("officer", "CN")
    room = relaydata.room(core, "CN-LA-2026-0001", [a, b], T0)
    relaydata.send(core, room, "CN-LA-2026-0001", a, "ສະບາຍດີ", [b], T0 + timedelta(minutes=1))
    out = tmp_path / "bundle.zip"
    assert main(["audit", "export", "--out", str(out)]) == 2
    assert "say what to export" in capsys.readouterr().err
    assert main(["audit", "export", "--case", "CN-LA-2026-0001", "--out", str(out), "--purpose", "test"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "1 rows (1 messages), 2 events" in printed
    assert main(["keys", "show-public"]) == 0
    lines = capsys.readouterr().out.splitlines()
    public = lines[0].split()[-1]
    assert lines[1].split()[-1] in printed  # the same fingerprint as the export's
    assert main(["audit", "verify-export", str(out), "--public-key", public, "--against-db"]) == 0
    text = capsys.readouterr().out
    assert "OK:" in text and "pinned" in text and "this server's chain: intact" in text
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(out) as zin, zipfile.ZipFile(bad, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            zout.writestr(
                name, data.replace("ສະບາຍດີ".encode(), "ລາກ່ອນ".encode()) if name == "messages.csv" else data
            )
    assert main(["audit", "verify-export", str(bad), "--public-key", public]) == 1
    assert "messages.csv does not match" in capsys.readouterr().out
    assert main(["keys", "show-public", "--pem"]) == 0
    assert capsys.readouterr().out.startswith("-----BEGIN PUBLIC KEY-----")


def test_purge_command(
    env: Settings,
    core: Core,
    register: Register,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without LIAISON_RETENTION_DAYS purge refuses; with it, it counts (dry run) and removes."""
    a, b = register("officer", "VN"), register("officer", "CN")
    room = relaydata.room(core, "CN-VN-2026-0003", [a, b], T0)
    relaydata.send(core, room, "CN-VN-2026-0003", a, "cũ", [b], datetime.now(UTC) - timedelta(days=100))
    assert main(["audit", "purge"]) == 2
    assert "No retention period is set" in capsys.readouterr().err
    monkeypatch.setenv("LIAISON_RETENTION_DAYS", "30")
    assert main(["audit", "purge", "--dry-run"]) == 0
    assert "would remove 4 bodies" in capsys.readouterr().out
    assert main(["audit", "purge"]) == 0
    assert "removed 4 bodies" in capsys.readouterr().out
    assert main(["audit", "verify"]) == 0


def test_keys_status_and_rotate(
    env: Settings, core: Core, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`keys status` counts values per key; `keys rotate` with LIAISON_DATA_KEY explains the procedure."""
    assert main(["keys", "status"]) == 0
    assert f"active key: {core.cipher.active} (from LIAISON_DATA_KEY)" in capsys.readouterr().out
    assert main(["keys", "rotate"]) == 2
    assert "keep-env-key" in capsys.readouterr().err
    monkeypatch.delenv("LIAISON_DATA_KEY")
    assert main(["keys", "status"]) == 0  # creates the keyring file on first use
    file_key = capsys.readouterr().out.split()[2]
    assert main(["keys", "rotate", "--drop-old"]) == 0
    text = capsys.readouterr().out
    assert f"(was {file_key})" in text and f"dropped key(s): {file_key}" in text
    assert main(["keys", "new"]) == 0
    assert len(crypto._decode_key(capsys.readouterr().out.strip())) == 32  # noqa: SLF001
