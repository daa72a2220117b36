"""The translation commands of the `liaison` CLI, run through `bot.cli.main`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.cli import main

from .conftest import Kit


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CLI at a fresh data folder (models under data/models)."""
    monkeypatch.setenv("LIAISON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIAISON_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("LIAISON_TRANSLATION_THREADS", "1")
    for name in ("LIAISON_MODELS_DIR", "LIAISON_TRANSLATION_ENGINES", "LIAISON_TELEGRAM_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


def test_install_list_translate_remove(cli_env: Path, kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    """The administrator's round: install, list the coverage, translate, remove."""
    assert main(["models", "install", str(kit.argos[("zh", "en")])]) == 0
    assert (
        main(
            [
                "models",
                "install",
                str(kit.bare_nllb),
                "--family",
                "nllb",
                "--name",
                "nllb-test",
                "--license",
                "CC-BY-NC-4.0",
            ]
        )
        == 0
    )
    installed = capsys.readouterr().out
    assert (
        "installed argos model translate-zh_en" in installed and "installed nllb model nllb-test" in installed
    )
    assert (cli_env / "models" / "multilingual" / "nllb-test" / "liaison-model.json").exists()

    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "translate-zh_en" in listing and "CC-BY-NC-4.0" in listing
    assert "zh>en  argos:translate-zh_en@1.0" in listing and "zh>lo  nllb:nllb-test@sha256-" in listing

    assert main(["translate", "--from", "zh", "--to", "lo,en", "请尽快回复 @li_ming"]) == 0
    text = capsys.readouterr().out
    assert (
        "[lo] " in text and "engine nllb" in text and "engine argos" in text and text.count("@li_ming") == 2
    )

    assert main(["translate", "--to", "vi", "请尽快回复"]) == 0
    assert "(detected source language: zh)" in capsys.readouterr().out

    assert main(["models", "remove", "nllb-test"]) == 0
    assert "removed nllb model nllb-test" in capsys.readouterr().out
    assert main(["translate", "--from", "zh", "--to", "lo", "请尽快回复"]) == 1
    assert "NOT TRANSLATED zh>lo: no model installed" in capsys.readouterr().out


def test_list_with_nothing_installed(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty models folder says so and how to fix it."""
    assert main(["models", "list"]) == 0
    assert "no model installed" in capsys.readouterr().out


def test_user_mistakes_are_one_line_exit_2(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file or an unknown model is one error line and exit status 2."""
    assert main(["models", "install", str(tmp_path / "nope.argosmodel")]) == 2
    assert main(["models", "remove", "nllb"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("liaison: error: ") for line in err)


def test_detect_reads_stdin(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`liaison detect` prints one language code per input line."""
    monkeypatch.setattr("sys.stdin", io.StringIO("你好\nສະບາຍດີ\nXin chào các anh\nGood morning all\n123\n"))
    assert main(["detect", "--fallback", "lo"]) == 0
    assert capsys.readouterr().out.split() == ["zh", "lo", "vi", "en", "lo"]


def test_eval_prints_chrf_and_speed(
    cli_env: Path, kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`models eval` scores the installed engine with chrF and reports sentences per second."""
    assert main(["models", "install", str(kit.argos[("zh", "en")])]) == 0
    src, ref = tmp_path / "src.txt", tmp_path / "ref.txt"
    src.write_text("请尽快回复\n我们明天见\n谢谢你们\n", encoding="utf-8")
    ref.write_text("Please reply soon\nSee you tomorrow\nThank you\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["models", "eval", "--from", "zh", "--to", "en", str(src), str(ref)]) == 0
    report = capsys.readouterr().out
    assert "via argos:translate-zh_en@1.0" in report and "sentences: 3" in report
    assert "chrF2: " in report and "sentences/s" in report
    assert main(["models", "eval", "--from", "zh", "--to", "lo", str(src), str(ref)]) == 2


def test_glossary_import_and_list(cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Coordinators' terms are imported from CSV and listed with the curated ones."""
    csv = tmp_path / "terms.csv"
    csv.write_text("en,vi,zh,lo\nsun bear,gấu chó,马来熊,ໝີໝາ\n", encoding="utf-8")
    assert main(["glossary", "import", str(csv)]) == 0
    assert "1 term(s) added" in capsys.readouterr().out
    assert main(["glossary", "list"]) == 0
    listing = capsys.readouterr().out
    assert "sun-bear (local): zh: 马来熊" in listing and "pangolin (builtin)" in listing
    assert main(["glossary", "list", "--review"]) == 0
    assert "pangolin (builtin)" not in capsys.readouterr().out
