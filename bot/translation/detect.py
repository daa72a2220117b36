"""Language detection by script: Lao, Chinese, Vietnamese or English; the sender's language as fallback."""

from __future__ import annotations

import functools
import re
import unicodedata

from bot.translation.base import LANGUAGES

# Things that say nothing about the language of the sentence around them.
_NOISE = re.compile(
    r"(?:https?://|www\.)\S+"  # URLs
    r"|[\w.+-]+@[\w-]+\.[\w.-]+"  # e-mail addresses
    r"|[@#][\w]+"  # @usernames and #hashtags
    r"|\b[A-Z]{2,}(?:-[A-Z0-9]+)+\b"  # case tags, plate-like codes
    r"|[A-Za-z]*\d[A-Za-z0-9]*"  # container numbers, plates, amounts with units (MSCU1234567, 25kg)
)

# Vietnamese letters that English never has: the base letters and every vowel with a tone mark.
_VI_BASE = set("ăâđêôơưĂÂĐÊÔƠƯ")
_VI_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}  # grave, acute, tilde, hook above, dot below

# Unaccented Vietnamese is common in chat ("toi dang o Lao Cai"): syllables that are not English words.
_VI_PLAIN = frozenset(
    "khong duoc nguoi chung cua nhung mot cac nay voi cho tai roi nhe dang hang ngay gio thu giu bat nhieu "
    "nhu cung lam biet gui bao viec chua ve xe va co se bi thi vao anh em oi da den toi minh "
    "hai bon nam muoi tram nghin trieu chieu nao gi dau ai sao duong "
    "kiem tra giay phep quan bien gioi".split()
)
_EN_WORDS = frozenset(
    "the and of to in is are was were for with on at this that it be have has we you they will from by not "
    "or as an but if our your their there which who what when where how all can would should could been "
    "into about after before please thanks thank yes said his her its also than then more most".split()
)

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

# Weights bring the scripts to a common unit: one Chinese character carries about as much as three
# Latin letters (a word is ~1.7 characters against ~5 letters); Lao syllables are spelled with about
# as many characters as Latin ones.
_CJK_WEIGHT = 3.0
_NAME_WEIGHT = 0.3


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0xF900 <= cp <= 0xFAFF
        or 0x20000 <= cp <= 0x3134F
        or 0x3040 <= cp <= 0x30FF  # kana: a Japanese-looking text is closest to Chinese for us
    )


def _is_lao(ch: str) -> bool:
    return 0x0E80 <= ord(ch) <= 0x0EFF


def _is_vietnamese_word(word: str) -> bool:
    if any(ch in _VI_BASE for ch in word):
        return True
    return any(mark in _VI_TONES for mark in unicodedata.normalize("NFD", word))


_LAO_CHARS = re.compile("[\u0e80-\u0eff]")
_CJK_CHARS = re.compile("[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff\U00020000-\U0003134f\u3040-\u30ff]")
_BELOW_2000 = re.compile("[\x00-\u1fff]")


def script_counts(text: str) -> dict[str, float]:
    """Return weighted letter counts per script ("lo", "zh", "latin") after removing URLs, tags and names."""
    lo, zh, latin = _script_counts(text)
    return {"lo": lo, "zh": zh, "latin": latin}


@functools.lru_cache(maxsize=512)
def _script_counts(text: str) -> tuple[float, float, float]:
    # The relay asks several questions of one message (does it need translating, is it mixed, which
    # language is it), so the counts are cached; counting is done by C-level regex scans per word.
    text = _NOISE.sub(" ", text)
    lao = cjk = 0
    latin = 0.0
    for word in _WORD.findall(text):
        if not word.isalpha():  # letters only (numeric signs such as '²' are word characters too)
            word = "".join(ch for ch in word if ch.isalpha())
            if not word:
                continue
        n_lao = len(_LAO_CHARS.findall(word))
        lao += n_lao
        cjk += len(_CJK_CHARS.findall(word))
        n_latin = len(_BELOW_2000.findall(word)) - n_lao
        if n_latin:
            # Capitalized words are mostly names (places, people, species) quoted inside Lao or
            # Chinese sentences; they weigh less so the sentence around them decides.
            latin += n_latin * (_NAME_WEIGHT if word[0].isupper() else 1.0)
    return float(lao), cjk * _CJK_WEIGHT, latin


def _latin_language(text: str, fallback: str) -> str:
    words = [
        w.lower() for w in _WORD.findall(_NOISE.sub(" ", text)) if not _is_lao(w[0]) and not _is_cjk(w[0])
    ]
    if not words:
        return fallback if fallback in ("vi", "en") else "en"
    accented = sum(1 for w in words if _is_vietnamese_word(w))
    if accented / len(words) >= 0.2:
        return "vi"
    vi_plain = sum(1 for w in words if w in _VI_PLAIN)
    en_plain = sum(1 for w in words if w in _EN_WORDS)
    if accented + vi_plain > en_plain:
        return "vi"
    # Latin text without a Vietnamese mark or syllable is English once it is more than a word or two.
    if en_plain > 0 or len(words) >= 4:
        return "en"
    return fallback if fallback in ("vi", "en") else "en"


def detect(text: str, fallback: str = "en") -> str:
    """Return the language of `text` (zh, lo, vi or en) by its script; `fallback` when it has no letters.

    Mixed messages go to the script with the most weight, so a Lao sentence quoting a Latin plate
    number stays Lao and an English message with a Chinese place name stays English.
    """
    if fallback not in LANGUAGES:
        fallback = "en"
    text = unicodedata.normalize("NFC", text)
    counts = script_counts(text)
    best = max(counts, key=lambda k: counts[k])
    if counts[best] == 0:
        return fallback
    # On an exact tie the sender's own language wins when it is one of the tied scripts.
    tied = [k for k, v in counts.items() if v == counts[best]]
    if len(tied) > 1:
        script_of_fallback = fallback if fallback in ("lo", "zh") else "latin"
        if script_of_fallback in tied:
            best = script_of_fallback
    if best == "latin":
        return _latin_language(text, fallback)
    return best
