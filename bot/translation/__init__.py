"""Offline translation behind one `Translator` interface."""

from bot.translation.base import LANGUAGES, PassThroughTranslator, Translation, Translator

__all__ = ["LANGUAGES", "PassThroughTranslator", "Translation", "Translator"]
