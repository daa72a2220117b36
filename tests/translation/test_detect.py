"""Language detection by script, measured on real FLORES-200 sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.translation.detect import detect

from .conftest import DETECTION_REPORT

FLORES_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "flores"
FILES = {"zho_Hans": "zh", "lao_Laoo": "lo", "vie_Latn": "vi", "eng_Latn": "en"}


@pytest.mark.skipif(not FLORES_DIR.is_dir(), reason=f"FLORES-200 sentences not found at {FLORES_DIR}")
@pytest.mark.parametrize("name", sorted(FILES))
def test_flores_accuracy(name: str) -> None:
    """Each FLORES-200 dev sentence is detected as its language, whatever the sender's language (≥ 99 %)."""
    lang = FILES[name]
    lines = [line for line in (FLORES_DIR / f"{name}.dev").read_text(encoding="utf-8").splitlines() if line]
    # The hardest fallback is another language: a wrong guess cannot hide behind the fallback.
    fallback = "vi" if lang == "en" else "en"
    ok = sum(1 for line in lines if detect(line, fallback) == lang)
    DETECTION_REPORT[name] = (ok, len(lines))
    assert len(lines) > 900
    assert ok / len(lines) >= 0.99, f"{name}: {ok}/{len(lines)}"


@pytest.mark.parametrize(
    ("text", "fallback", "expected"),
    [
        ("海关查获穿山甲鳞片", "en", "zh"),
        ("ເຈົ້າໜ້າທີ່ໄດ້ຍຶດເກັດລີ່ນ", "en", "lo"),
        ("Đã thu giữ vảy tê tê", "en", "vi"),
        ("toi dang o cua khau Lao Cai, chua thay xe", "en", "vi"),  # Vietnamese typed without marks
        ("The truck crossed at noon", "vi", "en"),
        ("好的 OK", "en", "zh"),  # mixed: the Chinese carries the message
        ("ຍຶດໄດ້ MSCU1234567 ທີ່ Boten", "en", "lo"),  # a Lao sentence quoting a container and a place
        ("Meet at 河口 tomorrow at the border post", "zh", "en"),
        ("12345 !!!", "lo", "lo"),  # no letters: the sender's language
        ("@nguyen_van_a https://example.org CN-VN-2026-0042", "vi", "vi"),
        ("👍", "zh", "zh"),
        ("", "lo", "lo"),
    ],
)
def test_detect_cases(text: str, fallback: str, expected: str) -> None:
    """Scripts decide; tags, links, codes and emoji do not; the fallback fills in when nothing else can."""
    assert detect(text, fallback) == expected


def test_unknown_fallback_becomes_english() -> None:
    """A fallback outside the bot's languages is replaced by English."""
    assert detect("123", "fr") == "en"
