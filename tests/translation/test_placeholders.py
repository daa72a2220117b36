"""How the translator treats model outputs that keep, move, respace or lose the placeholders.

A random-weight model never keeps placeholders, so these tests give the translator a scripted engine
(the model edge) and check the translator's own logic: accept, restore, or fall back to fragments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from bot.translation.engines import CT2Engine, EngineOptions, Row
from bot.translation.glossary import GlossaryStore
from bot.translation.offline import OfflineTranslator


class ScriptedEngine(CT2Engine):
    """An engine whose 'model' is a function of the input sentence."""

    kind = "nllb"

    def __init__(self, script: Callable[[str, str], str]) -> None:
        super().__init__("scripted", "1", Path("."), Path("."), EngineOptions())
        self.script = script
        self.calls: list[list[Row]] = []

    def pairs(self) -> frozenset[tuple[str, str]]:
        """Serve every direction between en and the other languages."""
        return frozenset({("en", "vi"), ("en", "zh"), ("en", "lo")})

    def translate_rows(self, rows: Sequence[Row]) -> list[str]:
        """Answer each row with the script."""
        self.calls.append(list(rows))
        return [self.script(text, target) for text, _, target in rows]


def _translator(engine: ScriptedEngine, data_dir: Path | None = None) -> OfflineTranslator:
    return OfflineTranslator([engine], glossary=GlossaryStore(data_dir), preference=("nllb",))


def test_kept_and_reordered_placeholders_are_accepted_in_one_call() -> None:
    """A model that moves placeholders (and spaces them oddly) is trusted: one call, spans restored."""
    engine = ScriptedEngine(lambda text, target: "｛ 1 ｝ ĐÃ GỬI { 0 }" if "{1}" in text else text.upper())
    result = _translator(engine).translate("@li_ming sent MSCU1234567", "en", ["vi"])["vi"]
    assert result.text == "MSCU1234567 ĐÃ GỬI @li_ming"
    assert len(engine.calls) == 1


def test_lost_placeholders_fall_back_to_fragments() -> None:
    """A model that drops a placeholder gets the pieces around the placeholders, one by one."""
    engine = ScriptedEngine(lambda text, target: "dropped everything" if "{" in text else f"<{text}>")
    result = _translator(engine).translate("Truck 29C-123.45 waits at gate 3 now", "en", ["vi"])["vi"]
    assert result.text == "<Truck> 29C-123.45 <waits at gate> 3 <now>"
    assert len(engine.calls) == 2  # the sentence, then its fragments in one batch


def test_invented_placeholders_are_not_trusted() -> None:
    """A model that invents a placeholder the input did not have cannot inject a span."""
    engine = ScriptedEngine(lambda text, target: text + " {7}" if "{" not in text else text)
    result = _translator(engine).translate("Call me", "en", ["zh"])["zh"]
    assert "{7}" not in result.text and result.text.startswith("Call me")


def test_glossary_term_survives_a_cooperative_model(tmp_path: Path) -> None:
    """The glossary term is protected as a placeholder and filled with the target language's term."""
    engine = ScriptedEngine(lambda text, target: text.replace("We", "Chúng tôi đã"))
    result = _translator(engine).translate("We seized pangolin scales", "en", ["vi"])["vi"]
    assert result.text == "Chúng tôi đã thu giữ vảy tê tê"
