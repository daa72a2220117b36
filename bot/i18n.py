"""Localized texts: gettext catalogs in locales/<lang>/LC_MESSAGES/*.po, compiled in memory."""

from __future__ import annotations

import gettext
import html
import io
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.translation.base import LANGUAGES

logger = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "en"


def N_(message: str) -> str:
    """Mark a text for extraction without translating it now (it is translated when shown)."""
    return message


def locales_dir() -> Path:
    """Return the folder holding the catalogs (the top-level `locales` package)."""
    import locales

    return Path(locales.__file__).parent


def normalize_language(code: str | None) -> str | None:
    """Map a Telegram `language_code` such as 'zh-hans' or 'vi-VN' to one of ours, or None."""
    if not code:
        return None
    base = code.lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else None


class Catalogs:
    """All catalogs, one merged `GNUTranslations` per language; built once at start."""

    def __init__(self, directory: Path | None = None, languages: Iterable[str] = LANGUAGES) -> None:
        self.directory = directory or locales_dir()
        self._translations: dict[str, gettext.NullTranslations] = {}
        for lang in languages:
            self._translations[lang] = self._load(lang)

    def _load(self, lang: str) -> gettext.NullTranslations:
        merged: gettext.NullTranslations | None = None
        po_dir = self.directory / lang / "LC_MESSAGES"
        for po_path in sorted(po_dir.glob("*.po")):
            with po_path.open("rb") as fh:
                catalog = read_po(fh, locale=lang if lang != "lo" else "lo", domain=po_path.stem)
            buf = io.BytesIO()
            write_mo(buf, catalog, use_fuzzy=False)
            buf.seek(0)
            trans = gettext.GNUTranslations(buf)
            if merged is None:
                merged = trans
            else:
                merged.add_fallback(trans)
        if merged is None:
            logger.warning("no catalog for language %s in %s", lang, po_dir)
            return gettext.NullTranslations()
        return merged

    def languages(self) -> tuple[str, ...]:
        """Return the languages that have catalogs loaded."""
        return tuple(self._translations)

    def get(self, lang: str | None) -> Texts:
        """Return the texts of one language, English when the language is unknown."""
        lang = normalize_language(lang) or DEFAULT_LANGUAGE
        return Texts(lang, self._translations.get(lang) or self._translations[DEFAULT_LANGUAGE])


class Texts:
    """The texts of one language: `t("Hello {name}", name=...)` translates, then fills HTML-escaped values."""

    def __init__(self, lang: str, translations: gettext.NullTranslations) -> None:
        self.lang = lang
        self._t = translations

    def gettext(self, message: str) -> str:
        """Return the translation of a msgid, unformatted."""
        return self._t.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """Return the plural form for n, unformatted."""
        return self._t.ngettext(singular, plural, n)

    def __call__(self, message: str, /, **values: Any) -> str:
        """Translate, then fill the named placeholders with HTML-escaped values."""
        return self._t.gettext(message).format(**_escape(values))

    def plural(self, singular: str, plural: str, n: int, /, **values: Any) -> str:
        """Translate a text with a count, then fill placeholders (the count is passed as `n`)."""
        return self._t.ngettext(singular, plural, n).format(n=n, **_escape(values))

    def plain(self, message: str, /, **values: Any) -> str:
        """Translate and fill without HTML escaping (for plain-text outputs such as CSV or buttons)."""
        return self._t.gettext(message).format(**values)

    def error(self, exc: Any) -> str:
        """Render a `LiaisonError` in this language."""
        return self(exc.message, **exc.params)


def _escape(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: html.escape(v, quote=False) if isinstance(v, str) else v for k, v in values.items()}
