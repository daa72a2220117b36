"""The localized note a recipient sees when a message could not be translated for them."""

from __future__ import annotations

from typing import Any

from bot.i18n import N_
from bot.translation.base import Translation

LANGUAGE_NAMES = {"zh": N_("Chinese"), "lo": N_("Lao"), "vi": N_("Vietnamese"), "en": N_("English")}

MISSING_MODEL = N_(
    "⚠️ Not translated ({source} → {target}: no translation model is installed). This is the original message."
)
ENGINE_ERROR = N_(
    "⚠️ Not translated ({source} → {target}: the translation engine failed). This is the original message."
)


def language_name(texts: Any, code: str) -> str:
    """Return the name of a language in the reader's language (the code itself for unknown ones)."""
    msgid = LANGUAGE_NAMES.get(code)
    return texts.gettext(msgid) if msgid else code


def failure_note(texts: Any, translation: Translation) -> str | None:
    """Return the note to show above an untranslated copy, in the reader's language; None when translated."""
    if translation.translated:
        return None
    msgid = ENGINE_ERROR if translation.failure == "engine-error" else MISSING_MODEL
    return texts(
        msgid,
        source=language_name(texts, translation.source_lang),
        target=language_name(texts, translation.target_lang),
    )
