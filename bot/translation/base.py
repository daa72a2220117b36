"""The `Translator` interface the relay, reminders and broadcasts translate through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

#: The languages the bot speaks: interface languages and translation languages alike.
LANGUAGES: tuple[str, ...] = ("zh", "lo", "vi", "en")


@dataclass(frozen=True, slots=True)
class Translation:
    """One text in one target language, with what produced it (recorded in the audit trail)."""

    text: str
    source_lang: str
    target_lang: str
    #: engine that produced the text, e.g. "argos", "nllb", "passthrough", "identity"
    engine: str
    #: model name and version, e.g. "translate-zh_en-1.9"; empty when nothing was translated
    model: str = ""
    #: False when `text` is the untranslated original (no model for the direction, or an engine error)
    translated: bool = True
    #: why the text is untranslated: "missing-model" or "engine-error"; None when translated
    failure: str | None = None


@runtime_checkable
class Translator(Protocol):
    """Translates one text into several languages at once; blocking, so callers run it in a worker."""

    def translate(self, text: str, source: str, targets: Sequence[str]) -> dict[str, Translation]:
        """Return one `Translation` per target language; never raise for a missing model."""
        ...

    def directions(self) -> set[tuple[str, str]]:
        """Return the (source, target) pairs this translator can really translate."""
        ...


class PassThroughTranslator:
    """The default when no model is installed: every copy is the original, marked untranslated."""

    def translate(self, text: str, source: str, targets: Sequence[str]) -> dict[str, Translation]:
        """Return the original for each target, marked as untranslated unless the language is the same."""
        out: dict[str, Translation] = {}
        for target in targets:
            if target == source:
                out[target] = Translation(text, source, target, engine="identity")
            else:
                out[target] = Translation(
                    text, source, target, engine="passthrough", translated=False, failure="missing-model"
                )
        return out

    def directions(self) -> set[tuple[str, str]]:
        """Return no directions: this translator translates nothing."""
        return set()
