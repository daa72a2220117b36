"""Every text the bot shows exists in zh, lo, vi and en, with the same placeholders."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.i18n import Catalogs, locales_dir, normalize_language
from bot.i18n_extract import extract

ROOT = Path(__file__).resolve().parents[1]
LANGS = ("zh", "lo", "vi", "en")
_SCRIPT = {"zh": re.compile(r"[\u4e00-\u9fff]"), "lo": re.compile(r"[\u0e80-\u0eff]"),
           "vi": re.compile(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", re.IGNORECASE)}


def _catalog(lang: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    for po in sorted((locales_dir() / lang / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as fh:
            for message in read_po(fh, locale=lang):
                if not message.id:
                    continue
                ids = message.id if isinstance(message.id, tuple) else (message.id,)
                strs = message.string if isinstance(message.string, tuple) else (message.string,)
                for msgid, msgstr in zip(ids, strs, strict=False):
                    entries[msgid] = msgstr
                entries[ids[0]] = strs[0]
    return entries


CATALOGS = {lang: _catalog(lang) for lang in LANGS}
USED = sorted({msgid for msgid, _f, _l in extract(ROOT)})


def _fields(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name is not None}


def _tags(text: str) -> list[str]:
    return sorted(re.findall(r"</?[a-z-]+", text))


def test_code_has_texts() -> None:
    """The extractor finds the bot's texts (guards against an extractor that silently finds nothing)."""
    assert len(USED) > 50
    assert "This bot is for registered officers only." in USED


@pytest.mark.parametrize("lang", LANGS)
def test_every_text_is_translated(lang: str) -> None:
    """A msgid used in the code with no (or an empty) translation in a language fails the build."""
    missing = [m for m in USED if not CATALOGS[lang].get(m)]
    assert not missing, f"{len(missing)} texts lack a {lang} translation, e.g. {missing[:5]}"


@pytest.mark.parametrize("lang", LANGS)
def test_placeholders_and_markup_match(lang: str) -> None:
    """Each translation has exactly the msgid's {placeholders} and HTML tags."""
    bad = []
    for msgid in USED:
        msgstr = CATALOGS[lang].get(msgid)
        if msgstr and (_fields(msgstr) != _fields(msgid) or _tags(msgstr) != _tags(msgid)):
            bad.append((msgid, msgstr))
    assert not bad, f"{lang}: placeholders or tags differ: {bad[:3]}"


@pytest.mark.parametrize("lang", ["zh", "lo", "vi"])
def test_translations_are_in_the_language(lang: str) -> None:
    """Chinese, Lao and Vietnamese texts are really written in their script, not English copies."""
    letters_only = [m for m in USED if re.search(r"[A-Za-z]{4,}", re.sub(r"\{[^}]*\}|<[^>]*>|/\w+", "", m))]
    untranslated = [m for m in letters_only if not _SCRIPT[lang].search(CATALOGS[lang].get(m, ""))]
    assert not untranslated, f"{lang}: texts not written in the language: {untranslated[:5]}"


def test_english_catalog_is_identity() -> None:
    """The English catalog says what the code says (so a changed msgid is noticed)."""
    assert all(CATALOGS["en"].get(m) == m for m in USED)


def test_runtime_catalogs_translate(catalogs: Catalogs) -> None:
    """The compiled catalogs (Babel → .mo in memory → gettext) serve each language."""
    msg = "This bot is for registered officers only."
    seen = {lang: catalogs.get(lang)(msg) for lang in LANGS}
    assert seen["en"] == msg
    assert len(set(seen.values())) == 4
    assert catalogs.get("zh-hans").lang == "zh" and catalogs.get("vi-VN").lang == "vi"
    assert catalogs.get("fr").lang == "en" and catalogs.get(None).lang == "en"


def test_values_are_html_escaped(catalogs: Catalogs) -> None:
    """Values filled into a text are escaped, so a name cannot inject markup."""
    text = catalogs.get("en")("{name} can no longer use the bot.", name="<b>x</b> & y")
    assert text == "&lt;b&gt;x&lt;/b&gt; &amp; y can no longer use the bot."


def test_normalize_language() -> None:
    """Telegram language codes map to ours."""
    assert normalize_language("lo-LA") == "lo" and normalize_language("ZH_cn") == "zh"
    assert normalize_language("th") is None and normalize_language("") is None
