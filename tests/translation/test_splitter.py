"""Sentence splitting for chat messages: exact round trip, language rules, long Lao runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.translation.splitter import LAO_PHRASE_CHARS, split_sentences

FLORES_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "flores"


def _join(pieces) -> str:  # type: ignore[no-untyped-def]
    return "".join(p.text + p.separator for p in pieces)


@pytest.mark.parametrize(
    ("lang", "text", "sentences"),
    [
        ("zh", "我们查获了穿山甲鳞片。请尽快回复！谢谢", ["我们查获了穿山甲鳞片。", "请尽快回复！", "谢谢"]),
        (
            "en",
            'Mr. Li arrived. He said: "Go!" Then we left.',
            ["Mr. Li arrived.", 'He said: "Go!"', "Then we left."],
        ),
        (
            "vi",
            "Tôi ở TP. Hồ Chí Minh. Xe 29C-123.45 đã qua lúc 14:30. Cảm ơn!",
            ["Tôi ở TP. Hồ Chí Minh.", "Xe 29C-123.45 đã qua lúc 14:30.", "Cảm ơn!"],
        ),
        ("lo", "ເຈົ້າໜ້າທີ່ໄດ້ຍຶດເກັດລີ່ນ. ຂອບໃຈ ໆ", ["ເຈົ້າໜ້າທີ່ໄດ້ຍຶດເກັດລີ່ນ.", "ຂອບໃຈ ໆ"]),
        ("en", "line one\n\nline two  ", ["line one", "line two"]),
    ],
)
def test_split_rules(lang: str, text: str, sentences: list[str]) -> None:
    """Sentences end where the language ends them; abbreviations, numbers and ໆ do not end them."""
    pieces = split_sentences(text, lang)
    assert [p.text for p in pieces if p.text] == sentences
    assert _join(pieces) == text


def test_long_lao_run_is_cut_at_phrase_spaces_not_at_repetition_mark() -> None:
    """A long Lao message without full stops is cut at the spaces between phrases, never next to ໆ."""
    phrase = "ເຈົ້າໜ້າທີ່ພາສີໄດ້ກວດລົດບັນທຸກ"
    text = " ".join([phrase, "ຊ້າ ໆ"] * 12)
    pieces = split_sentences(text, "lo")
    assert len(pieces) > 1 and _join(pieces) == text
    assert all(len(p.text) <= LAO_PHRASE_CHARS + len(phrase) for p in pieces)
    assert not any(p.text.startswith("ໆ") for p in pieces)


@pytest.mark.skipif(not FLORES_DIR.is_dir(), reason=f"FLORES-200 sentences not found at {FLORES_DIR}")
@pytest.mark.parametrize(
    ("name", "lang"), [("zho_Hans", "zh"), ("lao_Laoo", "lo"), ("vie_Latn", "vi"), ("eng_Latn", "en")]
)
def test_flores_paragraphs_round_trip(name: str, lang: str) -> None:
    """Ten real sentences glued into one message split into at least ten pieces and join back exactly."""
    lines = (FLORES_DIR / f"{name}.dev").read_text(encoding="utf-8").splitlines()[:10]
    text = ("" if lang == "zh" else " ").join(lines)
    pieces = split_sentences(text, lang)
    assert _join(pieces) == text
    assert len(pieces) >= 9
