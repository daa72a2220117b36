"""How relayed messages look, and clean splitting of Telegram HTML that is longer than one message.

A relayed copy reads, top to bottom: the sender (flag, name, agency), the case tag, the handling code
with its localized meaning, the text in the reader's language, and the original in an expandable
quote. When no translation was possible the original is shown with a note naming the missing
direction (e.g. "Vietnamese → Lao").
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from bot.i18n import N_, Texts

#: Telegram's limits, counted in UTF-16 code units after entity parsing
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024

HANDLING_CODES = ("H0", "H1", "H2", "H3")
HANDLING_ICON = {"H0": "\U0001f7e2", "H1": "\U0001f7e1", "H2": "\U0001f7e0", "H3": "\U0001f534"}
HANDLING_MEANING = {
    "H0": N_("No restrictions within law enforcement."),
    "H1": N_("Not to be used as evidence without the sender's permission."),
    "H2": N_("No further dissemination without the sender's permission; forwarding is disabled."),
    "H3": N_("Other conditions: {conditions}"),
}
H3_NO_CONDITIONS = N_("Other conditions: ask the sender before any use.")
LANGUAGE_NAMES = {"zh": N_("Chinese"), "lo": N_("Lao"), "vi": N_("Vietnamese"), "en": N_("English")}
ORIGINAL_LABEL = N_("Original ({language}):")
NOT_TRANSLATED_MISSING = N_(
    "Not translated: no {source} → {target} translation model is installed. You are reading the original."
)
NOT_TRANSLATED_ERROR = N_(
    "Not translated: the {source} → {target} translation failed. You are reading the original."
)
EDITED = N_("edited")
ONE_TO_ONE = N_("one-to-one")
LOCATION = N_("Location")
CONTACT = N_("Contact")


def escape(text: str) -> str:
    """Escape a user's text for Telegram HTML."""
    return html.escape(text, quote=False)


def utf16_len(text: str) -> int:
    """Return the length Telegram counts: UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def language_name(texts: Texts, lang: str) -> str:
    """Return a language's name in the reader's language."""
    return texts.plain(LANGUAGE_NAMES[lang]) if lang in LANGUAGE_NAMES else lang


def handling_meaning(texts: Texts, code: str, conditions: str | None = None) -> str:
    """Return the localized meaning of a handling code (H3 with its conditions), HTML-escaped."""
    if code == "H3":
        return texts(HANDLING_MEANING["H3"], conditions=conditions) if conditions else texts(H3_NO_CONDITIONS)
    return texts(HANDLING_MEANING.get(code, HANDLING_MEANING["H0"]))


def handling_line(texts: Texts, code: str, conditions: str | None = None) -> str:
    """Return the handling code as shown on every copy: icon, code, meaning."""
    return f"{HANDLING_ICON.get(code, '')} <b>{code}</b> · {handling_meaning(texts, code, conditions)}"


@dataclass(frozen=True, slots=True)
class SenderView:
    """Who wrote a message, as recipients see it."""

    name: str
    agency: str | None
    flag: str


@dataclass(frozen=True, slots=True)
class CopyText:
    """The text of one relayed copy in the reader's language and how it was obtained."""

    #: the text shown as the message (translation, or the original when untranslated)
    text: str | None
    original: str | None
    source_lang: str
    target_lang: str
    translated: bool = True
    #: "missing-model" or "engine-error" when not translated; None otherwise
    failure: str | None = None


def relayed_html(
    texts: Texts,
    *,
    sender: SenderView,
    case_tag: str,
    is_dm: bool,
    handling: str,
    conditions: str | None,
    body: CopyText,
    kind: str = "text",
    edited: bool = False,
) -> str:
    """Return the HTML of one relayed copy in the reader's language (split later if too long)."""
    first = f"{sender.flag} <b>{escape(sender.name)}</b>".strip()
    if sender.agency:
        first += f" · {escape(sender.agency)}"
    if edited:
        first += f" · <i>\u270f\ufe0f {texts(EDITED)}</i>"
    where = f"\U0001f4ac {texts(ONE_TO_ONE)}" if is_dm else f"\U0001f5c2 <code>{escape(case_tag)}</code>"
    header = [first, where, handling_line(texts, handling, conditions)]
    if kind == "location":
        header.append(f"\U0001f4cd {texts(LOCATION)}")
    elif kind == "contact":
        header.append(f"\U0001f464 {texts(CONTACT)}")
    blocks = ["\n".join(header)]
    if body.text:
        same = body.source_lang == body.target_lang
        blocks.append(escape(body.text))
        if not body.translated and not same:
            note = NOT_TRANSLATED_ERROR if body.failure == "engine-error" else NOT_TRANSLATED_MISSING
            blocks.append("<i>\u26a0\ufe0f " + texts(note, source=language_name(texts, body.source_lang),
                                                    target=language_name(texts, body.target_lang)) + "</i>")
        elif not same and body.original and body.original != body.text:
            label = texts(ORIGINAL_LABEL, language=language_name(texts, body.source_lang))
            blocks.append(f"<blockquote expandable><i>{label}</i>\n{escape(body.original)}</blockquote>")
    return "\n\n".join(blocks)


# --- splitting ------------------------------------------------------------------------------------

_TOKEN = re.compile(r"<[^>]*>|&(?:#\d+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);|[^<&]+|[<&]")
_TAG_NAME = re.compile(r"<\s*(/)?\s*([a-zA-Z][a-zA-Z0-9-]*)")
_BLOCK_TAGS = frozenset({"blockquote", "pre"})
_SENTENCE_END = frozenset(".!?…")
_CJK_SENTENCE_END = frozenset("。！？；")


def plain_length(text_html: str) -> int:
    """Return the UTF-16 length of an HTML text as Telegram counts it (tags removed, entities decoded)."""
    return utf16_len(html.unescape(re.sub(r"<[^>]*>", "", text_html)))


def _chars(text_html: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """Return each visible character as (character, its HTML, the open tags around it)."""
    stack: list[str] = []
    out: list[tuple[str, str, tuple[str, ...]]] = []
    for token in _TOKEN.findall(text_html):
        if token.startswith("<") and len(token) > 1 and token.endswith(">"):
            match = _TAG_NAME.match(token)
            if match is None:
                continue
            if match.group(1):
                name = match.group(2).lower()
                for pos in range(len(stack) - 1, -1, -1):
                    if _tag_name(stack[pos]) == name:
                        del stack[pos:]
                        break
            else:
                stack.append(token)
            continue
        text = html.unescape(token) if token.startswith("&") else token
        frozen = tuple(stack)
        for ch in text:
            out.append((ch, escape(ch), frozen))
    return out


def _tag_name(open_tag: str) -> str:
    """Return the name of an opening tag."""
    match = _TAG_NAME.match(open_tag)
    return match.group(2).lower() if match else ""


def _render(chars: Sequence[tuple[str, str, tuple[str, ...]]]) -> str:
    """Render characters back to HTML, opening and closing tags where their stacks change."""
    parts: list[str] = []
    current: tuple[str, ...] = ()
    for _ch, code, stack in chars:
        if stack != current:
            common = 0
            while common < min(len(stack), len(current)) and stack[common] == current[common]:
                common += 1
            parts.extend(f"</{_tag_name(t)}>" for t in reversed(current[common:]))
            parts.extend(stack[common:])
            current = stack
        parts.append(code)
    parts.extend(f"</{_tag_name(t)}>" for t in reversed(current))
    return "".join(parts)


def _is_joiner(ch: str) -> bool:
    """Tell whether a character must stay with the one before it (combining marks, ZWJ, selectors)."""
    return unicodedata.category(ch).startswith("M") or ch in "\u200d\ufe0e\ufe0f" or "\U0001f3fb" <= ch <= "\U0001f3ff"


def _is_flag_half(chars: Sequence[tuple[str, str, tuple[str, ...]]], k: int) -> bool:
    """Tell whether cutting before k would split a flag (two regional indicator letters)."""
    def regional(ch: str) -> bool:
        """Tell whether a character is a regional indicator letter."""
        return "\U0001f1e6" <= ch <= "\U0001f1ff"
    if not (regional(chars[k][0]) and regional(chars[k - 1][0])):
        return False
    run = 0
    while k - 1 - run >= 0 and regional(chars[k - 1 - run][0]):
        run += 1
    return run % 2 == 1


def _break_quality(chars: Sequence[tuple[str, str, tuple[str, ...]]], k: int) -> int:
    """Rate cutting before index k: 4 paragraph or quote boundary, 3 line, 2 sentence, 1 space, 0 none."""
    prev, nxt = chars[k - 1], chars[k]
    if prev[2] != nxt[2] and any(_tag_name(t) in _BLOCK_TAGS for t in set(prev[2]) ^ set(nxt[2])):
        return 4
    if prev[0] == "\n":
        return 4 if k >= 2 and chars[k - 2][0] == "\n" else 3
    if prev[0] in _CJK_SENTENCE_END:
        return 2
    if prev[0].isspace():
        return 2 if k >= 2 and chars[k - 2][0] in _SENTENCE_END else 1
    return 0


def split_html(text_html: str, limit: int = TEXT_LIMIT, first_limit: int | None = None) -> list[str]:
    """Split Telegram HTML into pieces within the limit, at the best boundary, tags closed and reopened.

    Boundaries are preferred in this order: paragraph or quote boundary, line, sentence, space; a
    text with none (long Chinese or Lao runs) is cut between characters, never inside a grapheme.
    Nothing is dropped except the whitespace at a cut.
    """
    first = first_limit or limit
    if plain_length(text_html) <= first:
        return [text_html]
    chars = _chars(text_html)
    units = [2 if ord(c) > 0xFFFF else 1 for c, _h, _s in chars]
    pieces: list[str] = []
    i, n = 0, len(chars)
    while i < n:
        while i < n and chars[i][0].isspace():
            i += 1
        if i >= n:
            break
        budget = first if not pieces else limit
        j, used = i, 0
        while j < n and used + units[j] <= budget:
            used += units[j]
            j += 1
        if j < n:
            cut = None
            min_fill = i + max(1, (j - i) // 2)
            for quality in (4, 3, 2, 1):
                for k in range(j, min_fill - 1, -1):
                    if k < n and k > i and _break_quality(chars, k) >= quality:
                        cut = k
                        break
                if cut is not None:
                    break
            if cut is None:
                cut = j
                while cut > i + 1 and (_is_joiner(chars[cut][0]) or _is_flag_half(chars, cut)):
                    cut -= 1
            j = cut
        end = j
        while end > i and chars[end - 1][0].isspace():
            end -= 1
        if end > i:
            pieces.append(_render(chars[i:end]))
        i = j
    return pieces or [text_html]
