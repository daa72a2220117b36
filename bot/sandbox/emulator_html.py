"""Telegram's text formatting rules: HTML parse mode, entities, UTF-16 lengths.

The HTML parser follows the one in TDLib (the library behind the Bot API server): the same tags,
the same entity decoding and the same error messages ("Unsupported start tag ... at byte offset N").
Offsets and lengths of entities are counted in UTF-16 code units, as Telegram does.
"""

from __future__ import annotations

import html
import re
from typing import Any

#: Tags Telegram accepts in parse_mode=HTML.
ALLOWED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    }
)
_ENTITY_OF_TAG = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SPACE = " \t\n\r\f\v"


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; the message is TDLib's description of the problem."""


def utf16_len(text: str) -> int:
    """Return the length of the text in UTF-16 code units (Telegram's unit for lengths and offsets)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _byte_offset(text: str, pos: int) -> int:
    """Return the UTF-8 byte offset of a character position (TDLib reports errors in bytes)."""
    return len(text[:pos].encode("utf-8"))


def _decode_entity(text: str, pos: int) -> tuple[str | None, int]:
    """Decode an HTML character reference at text[pos] == '&'; return (character or None, next pos)."""
    end = pos + 1
    if end < len(text) and text[end] == "#":
        end += 1
        hexadecimal = end < len(text) and text[end] == "x"
        if hexadecimal:
            end += 1
        digits = "0123456789abcdefABCDEF" if hexadecimal else "0123456789"
        start = end
        while end < len(text) and text[end] in digits:
            end += 1
        if end == start or end - pos >= 10:
            return None, pos
        value = int(text[start:end], 16 if hexadecimal else 10)
        if value == 0 or value >= 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            return None, pos
        char = chr(value)
    else:
        while end < len(text) and text[end].isascii() and text[end].isalpha():
            end += 1
        named = _NAMED_ENTITIES.get(text[pos + 1 : end])
        if named is None:
            return None, pos
        char = named
    if end < len(text) and text[end] == ";":
        end += 1
    return char, end


def parse_html(text: str, *, strict: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram HTML into (plain text, entities); raise EntityParseError like Telegram.

    Telegram shows an '&' that starts no known character reference literally; with `strict`
    the emulator refuses it instead, because it almost always means the bot forgot to escape a value.
    """
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    # Each open tag: [name, argument, utf16 offset where it starts, language of an inner <code>]
    stack: list[list[Any]] = []
    u16 = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "&":
            decoded, nxt = _decode_entity(text, i)
            if decoded is not None:
                out.append(decoded)
                u16 += utf16_len(decoded)
                i = nxt
                continue
            if strict:
                raise EntityParseError(
                    f'Unescaped "&" at byte offset {_byte_offset(text, i)} (Telegram would show it '
                    "literally; the emulator refuses it: escape it as &amp;)"
                )
        if ch != "<":
            out.append(ch)
            u16 += 2 if ord(ch) > 0xFFFF else 1
            i += 1
            continue
        begin = i
        i += 1
        if i < n and text[i] == "/":
            i = _close_tag(text, begin, i + 1, stack, entities, u16)
        else:
            i = _open_tag(text, begin, i, stack, u16)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    plain = "".join(out)
    return trim(plain, sort_entities(entities))


def _open_tag(text: str, begin: int, i: int, stack: list[list[Any]], u16: int) -> int:
    """Read a start tag beginning at text[begin] == '<'; push it; return the position after '>'."""
    n = len(text)
    name_start = i
    while i < n and text[i] not in _SPACE and text[i] != ">":
        i += 1
    if i >= n:
        raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
    tag = text[name_start:i].lower()
    if tag not in ALLOWED_TAGS:
        raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
    argument = ""
    while True:
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
        if text[i] == ">":
            break
        attr_start = i
        while i < n and text[i] not in _SPACE and text[i] not in "=>":
            i += 1
        attr = text[attr_start:i].lower()
        if not attr:
            raise EntityParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset {_byte_offset(text, begin)}'
            )
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
        if text[i] != "=":
            if tag == "blockquote" and attr == "expandable":
                argument = "expandable"
                continue
            raise EntityParseError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                f"at byte offset {_byte_offset(text, begin)}"
            )
        i += 1
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
        value, i = _attribute_value(text, i)
        if tag == "a" and attr == "href":
            argument = value
        elif tag == "code" and attr == "class" and value.startswith("language-"):
            argument = value[len("language-") :]
        elif tag == "span" and attr == "class" and value.startswith("tg-"):
            argument = value[len("tg-") :]
        elif tag == "tg-emoji" and attr == "emoji-id":
            argument = value
    if tag == "span" and argument != "spoiler":
        raise EntityParseError(
            f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, begin)}'
        )
    stack.append([tag, argument, u16, None])
    return i + 1


def _attribute_value(text: str, i: int) -> tuple[str, int]:
    """Read a quoted or bare attribute value at text[i]; return (value, next position)."""
    n = len(text)
    if text[i] not in "'\"":
        start = i
        while i < n and (text[i].isalnum() or text[i] in ".-"):
            i += 1
        if i < n and text[i] not in _SPACE and text[i] != ">":
            raise EntityParseError(f"Unexpected end of name token at byte offset {_byte_offset(text, start)}")
        return text[start:i].lower(), i
    quote = text[i]
    i += 1
    value: list[str] = []
    while i < n and text[i] != quote:
        if text[i] == "&":
            decoded, nxt = _decode_entity(text, i)
            if decoded is not None:
                value.append(decoded)
                i = nxt
                continue
        value.append(text[i])
        i += 1
    return "".join(value), min(i + 1, n)


def _close_tag(
    text: str, begin: int, i: int, stack: list[list[Any]], entities: list[dict[str, Any]], u16: int
) -> int:
    """Read an end tag; pop the matching start tag and add its entity; return the position after '>'."""
    n = len(text)
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
    name_start = i
    while i < n and text[i] not in _SPACE and text[i] != ">":
        i += 1
    end_name = text[name_start:i].lower()
    while i < n and text[i] in _SPACE:
        i += 1
    if i >= n or text[i] != ">":
        raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
    tag, argument, start, inner_language = stack.pop()
    if end_name and end_name != tag:
        raise EntityParseError(
            f'Unmatched end tag at byte offset {_byte_offset(text, begin)}, expected "</{tag}>", '
            f'found "</{end_name}>"'
        )
    if tag == "code" and stack and stack[-1][0] == "pre":
        # <pre><code class="language-x">…</code></pre> is one pre entity with a language.
        stack[-1][3] = argument or stack[-1][3]
        return i + 1
    if u16 > start:
        entity = _make_entity(tag, argument, start, u16 - start, inner_language, text, begin)
        if entity is not None:
            entities.append(entity)
    return i + 1


def _make_entity(
    tag: str, argument: str, offset: int, length: int, language: str | None, text: str, begin: int
) -> dict[str, Any] | None:
    """Return the MessageEntity dict for a closed tag (None when Telegram would drop it)."""
    entity: dict[str, Any] = {"offset": offset, "length": length}
    if tag == "a":
        match = re.fullmatch(r"tg://user\?id=(\d+)", argument)
        if match:
            entity.update(
                type="text_mention", user={"id": int(match.group(1)), "is_bot": False, "first_name": ""}
            )
            return entity
        url = _normalize_url(argument)
        if url is None:
            return None
        entity.update(type="text_link", url=url)
    elif tag == "blockquote":
        entity["type"] = "expandable_blockquote" if argument == "expandable" else "blockquote"
    elif tag == "tg-emoji":
        if not argument.isdigit():
            return None
        entity.update(type="custom_emoji", custom_emoji_id=argument)
    else:
        entity["type"] = _ENTITY_OF_TAG[tag]
        # A language on a <code> outside <pre> is ignored by Telegram.
        if tag == "pre" and language:
            entity["language"] = language
    return entity


def _normalize_url(url: str) -> str | None:
    """Return the URL as Telegram would store it, or None when it is not a valid link."""
    url = url.strip()
    if not url or any(ch in url for ch in ' \n\t<>"'):
        return None
    if re.match(r"^(https?|tg|ton|mailto)://", url, re.IGNORECASE) or url.lower().startswith("mailto:"):
        return url
    if re.match(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(/.*)?$", url):
        return "http://" + url
    return None


def sort_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return entities in Telegram's order: by offset, longer (outer) first."""
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Strip leading/trailing whitespace like Telegram does, shifting and clipping the entities."""
    stripped = text.lstrip()
    head = utf16_len(text) - utf16_len(stripped)
    stripped = stripped.rstrip()
    total = utf16_len(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - head, 0)
        end = min(entity["offset"] + entity["length"] - head, total)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def _u16_to_index(text: str) -> list[int]:
    """Return a map from UTF-16 offset to string index (offsets inside a surrogate pair map forward)."""
    index = []
    for pos, ch in enumerate(text):
        index.append(pos)
        if ord(ch) > 0xFFFF:
            index.append(pos + 1)
    index.append(len(text))
    return index


def _open_markup(entity: dict[str, Any]) -> tuple[str, str]:
    """Return the HTML start and end tags for an entity ('' for entities that carry no markup)."""
    kind = entity["type"]
    simple = {
        "bold": "b",
        "italic": "i",
        "underline": "u",
        "strikethrough": "s",
        "spoiler": "tg-spoiler",
        "code": "code",
        "blockquote": "blockquote",
    }
    if kind in simple:
        return f"<{simple[kind]}>", f"</{simple[kind]}>"
    if kind == "expandable_blockquote":
        return "<blockquote expandable>", "</blockquote>"
    if kind == "pre":
        if entity.get("language"):
            lang = html.escape(entity["language"], quote=True)
            return f'<pre><code class="language-{lang}">', "</code></pre>"
        return "<pre>", "</pre>"
    if kind == "text_link":
        return f'<a href="{html.escape(entity["url"], quote=True)}">', "</a>"
    if kind == "text_mention":
        return f'<a href="tg://user?id={int(entity["user"]["id"])}">', "</a>"
    if kind == "custom_emoji":
        return (
            f'<tg-emoji emoji-id="{html.escape(str(entity["custom_emoji_id"]), quote=True)}">',
            "</tg-emoji>",
        )
    return "", ""


def render_html(text: str, entities: list[dict[str, Any]] | None) -> str:
    """Render plain text and its entities back to Telegram HTML (what a client would display)."""
    if not entities:
        return html.escape(text, quote=False)
    index = _u16_to_index(text)
    opens: dict[int, list[tuple[int, str]]] = {}
    closes: dict[int, list[tuple[int, str]]] = {}
    for order, entity in enumerate(sort_entities(entities)):
        start_tag, end_tag = _open_markup(entity)
        if not start_tag:
            continue
        start = index[min(entity["offset"], len(index) - 1)]
        end = index[min(entity["offset"] + entity["length"], len(index) - 1)]
        opens.setdefault(start, []).append((order, start_tag))
        closes.setdefault(end, []).append((order, end_tag))
    parts: list[str] = []
    for pos in range(len(text) + 1):
        for _order, tag in sorted(closes.get(pos, []), reverse=True):
            parts.append(tag)
        for _order, tag in sorted(opens.get(pos, [])):
            parts.append(tag)
        if pos < len(text):
            parts.append(html.escape(text[pos], quote=False))
    return "".join(parts)


_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}(?!\w)")
_HASHTAG_RE = re.compile(r"(?<![\w#])#[\w\u0E80-\u0EFF\u0300-\u036F]*[^\W\d_][\w\u0E80-\u0EFF\u0300-\u036F]*")
_URL_RE = re.compile(r"\bhttps?://[^\s<>\"]+[^\s<>\".,;:!?)\]]")
_AUTO_TYPES = (
    ("bot_command", _COMMAND_RE),
    ("mention", _MENTION_RE),
    ("hashtag", _HASHTAG_RE),
    ("url", _URL_RE),
)


def detect_entities(text: str) -> list[dict[str, Any]]:
    """Return the entities Telegram's clients attach to a typed text: commands, mentions, hashtags, URLs."""
    found: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _AUTO_TYPES:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            found.append(
                {"type": kind, "offset": utf16_len(text[:start]), "length": utf16_len(text[start:end])}
            )
    return sort_entities(found)


def entity_text(text: str, entity: dict[str, Any]) -> str:
    """Return the part of the text an entity covers (offsets in UTF-16 code units)."""
    encoded = text.encode("utf-16-le")
    start, length = entity["offset"] * 2, entity["length"] * 2
    return encoded[start : start + length].decode("utf-16-le")
