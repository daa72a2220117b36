"""The note a recipient sees on an untranslated copy, in the recipient's language."""

from __future__ import annotations

from bot.i18n import Catalogs
from bot.translation.base import Translation
from bot.translation.notes import failure_note


def test_missing_model_note_names_the_direction_in_the_readers_language(catalogs: Catalogs) -> None:
    """A Lao reader of an untranslated Chinese message is told, in Lao, which direction is missing."""
    t = Translation("你好", "zh", "lo", engine="passthrough", translated=False, failure="missing-model")
    note = failure_note(catalogs.get("lo"), t)
    assert note is not None and "ພາສາຈີນ → ພາສາລາວ" in note and "ບໍ່ໄດ້ແປ" in note
    assert "tiếng Trung → tiếng Việt" in (
        failure_note(
            catalogs.get("vi"),
            Translation("你好", "zh", "vi", engine="passthrough", translated=False, failure="missing-model"),
        )
        or ""
    )


def test_engine_error_note_differs_and_translated_copies_have_none(catalogs: Catalogs) -> None:
    """An engine failure says so (not 'no model'); a translated copy carries no note."""
    missing = Translation("hi", "en", "zh", engine="passthrough", translated=False, failure="missing-model")
    broken = Translation("hi", "en", "zh", engine="nllb", translated=False, failure="engine-error")
    texts = catalogs.get("zh")
    assert failure_note(texts, broken) != failure_note(texts, missing)
    assert "翻译引擎出错" in (failure_note(texts, broken) or "")
    assert failure_note(texts, Translation("你好", "en", "zh", engine="nllb")) is None
