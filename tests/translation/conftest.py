"""Fixtures of the translation tests: tiny real CTranslate2 models, built once per test session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import Settings

from . import modelkit

#: detection accuracy per FLORES file, filled by test_detect and shown in the terminal summary
DETECTION_REPORT: dict[str, tuple[int, int]] = {}


@dataclass(frozen=True)
class Kit:
    """Model files built for the session; tests install them through the real install code."""

    sp_model: Path
    argos: dict[tuple[str, str], Path]
    families: dict[str, Path]
    marian_pair: Path
    bare_nllb: Path


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """Build the tiny tokenizer, Argos packages and one multilingual model per family."""
    root = tmp_path_factory.mktemp("tiny-models")
    sp_model = modelkit.train_sentencepiece(root / "tiny.spm")
    argos = {}
    for seed, (src, tgt) in enumerate([("zh", "en"), ("en", "vi"), ("en", "lo"), ("en", "zh"), ("vi", "en")]):
        argos[(src, tgt)] = modelkit.argos_package(
            root / f"translate-{src}_{tgt}-1_0.argosmodel", src, tgt, sp_model, seed=10 + seed
        )
    families = {
        family: modelkit.multilingual_model(root / f"tiny-{family}", family, sp_model, seed=20 + i)
        for i, family in enumerate(["nllb", "madlad", "m2m100"])
    }
    families["marian"] = modelkit.multilingual_model(
        root / "tiny-marian-multi",
        "marian",
        sp_model,
        seed=30,
        name="tiny-marian-multi",
        directions=[("en", "vi"), ("en", "lo")],
        language_tokens={"vi": ">>vie<<", "lo": ">>lao<<"},
    )
    marian_pair = modelkit.multilingual_model(
        root / "tiny-opus-zh-vi",
        "marian",
        sp_model,
        seed=31,
        name="tiny-opus-zh-vi",
        directions=[("zh", "vi")],
    )
    bare_nllb = modelkit.multilingual_model(root / "bare-nllb", "nllb", sp_model, seed=40, manifest=False)
    return Kit(sp_model, argos, families, marian_pair, bare_nllb)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a fresh data folder and models folder, one CTranslate2 thread."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url="sqlite://",
        models_dir=tmp_path / "models",
        translation_threads=1,
        translation_beam_size=1,
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show the language-detection accuracy measured on the FLORES-200 sentences."""
    if not DETECTION_REPORT:
        return
    terminalreporter.section("language detection on FLORES-200 dev")
    total_ok = sum(ok for ok, _ in DETECTION_REPORT.values())
    total = sum(n for _, n in DETECTION_REPORT.values())
    for name, (ok, n) in sorted(DETECTION_REPORT.items()):
        terminalreporter.write_line(f"{name}: {ok}/{n} = {100 * ok / n:.2f} %")
    terminalreporter.write_line(f"all: {total_ok}/{total} = {100 * total_ok / total:.2f} %")
