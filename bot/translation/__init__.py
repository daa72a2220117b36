"""Offline translation behind one `Translator` interface.

Importing this package is cheap: engines, CTranslate2 and argostranslate load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.translation.base import LANGUAGES, PassThroughTranslator, Translation, Translator
from bot.translation.detect import detect

if TYPE_CHECKING:
    from bot.config import Settings


def build_translator(settings: Settings, **kwargs: Any) -> Translator:
    """Return the bot's translator for the installed models (see `bot.translation.factory`)."""
    from bot.translation.factory import build_translator as build

    return build(settings, **kwargs)


__all__ = ["LANGUAGES", "PassThroughTranslator", "Translation", "Translator", "build_translator", "detect"]
