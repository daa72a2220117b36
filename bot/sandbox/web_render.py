"""Render what the bot sent for the sandbox page: Telegram's HTML, sanitized, with `lang` attributes.

The emulator keeps every message as plain text plus entities and renders it back as Telegram HTML.
That HTML is put into the page with innerHTML, so it is rebuilt here from a parse tree keeping only
Telegram's tags and attributes (`<a href>` with safe schemes only, `<blockquote expandable>`, spoilers,
code blocks); everything else is escaped text. Each bubble and each quote gets the language of its
own text, so the browser picks the right font and line breaking for Chinese, Lao and Vietnamese.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

logger = logging.getLogger(__name__)

#: Tags kept as they are (no attributes).
_PLAIN_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre"})
#: Every tag Telegram accepts; anything else is dropped (its text is kept).
_TELEGRAM_TAGS = _PLAIN_TAGS | {"a", "span", "tg-spoiler", "tg-emoji", "blockquote"}
_SAFE_SCHEMES = ("http://", "https://", "mailto:", "tg://")
_LANGS = ("zh", "lo", "vi", "en")


@dataclass
class _Node:
    """An element of the parsed message, or the root (tag None)."""

    tag: str | None
    attrs: dict[str, str | None] = field(default_factory=dict)
    children: list[_Node | str] = field(default_factory=list)

    def text(self) -> str:
        """Return the text inside this node."""
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _TreeBuilder(HTMLParser):
    """Build a tree of Telegram's tags; unknown tags vanish, their text stays."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node(None)
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open a Telegram tag (others are ignored)."""
        if tag not in _TELEGRAM_TAGS:
            return
        node = _Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Treat `<br/>` as a line break and drop other empty tags."""
        if tag == "br":
            self.stack[-1].children.append("\n")

    def handle_endtag(self, tag: str) -> None:
        """Close the nearest open tag of this name, if any."""
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        """Keep text as text."""
        self.stack[-1].children.append(data)


def detect_language(text: str, fallback: str) -> str:
    """Return zh, lo, vi or en for a text (the fallback when it has no letters or detection is absent)."""
    fallback = fallback if fallback in _LANGS else "en"
    try:
        from bot.translation.detect import detect
    except ImportError:  # pragma: no cover - the detector is part of the translation area
        return fallback
    return detect(text, fallback)


def _open_tag(node: _Node, fallback: str) -> str:
    """Return the safe opening tag for a node, or '' to drop the tag and keep its content."""
    tag = node.tag or ""
    if tag in _PLAIN_TAGS:
        if tag == "code" and str(node.attrs.get("class") or "").startswith("language-"):
            return f'<code class="{html.escape(str(node.attrs["class"]), quote=True)}">'
        return f"<{tag}>"
    if tag == "a":
        href = str(node.attrs.get("href") or "").strip()
        if href.lower().startswith(_SAFE_SCHEMES) and not href.lower().startswith("tg://"):
            return f'<a href="{html.escape(href, quote=True)}" target="_blank" rel="noopener noreferrer">'
        return '<span class="tg-link">'
    if tag == "tg-spoiler" or (tag == "span" and node.attrs.get("class") == "tg-spoiler"):
        return '<span class="tg-spoiler" tabindex="0">'
    if tag == "blockquote":
        lang = detect_language(node.text(), fallback)
        if "expandable" in node.attrs:
            return f'<blockquote class="expandable" tabindex="0" lang="{lang}">'
        return f'<blockquote lang="{lang}">'
    return ""  # span without spoiler class, tg-emoji: keep the text only


def _close_tag(node: _Node, opened: str) -> str:
    """Return the closing tag matching what `_open_tag` produced."""
    if not opened:
        return ""
    name = opened[1:].split(">", 1)[0].split(" ", 1)[0]
    return f"</{name}>"


def _serialize(node: _Node, fallback: str) -> str:
    """Return the safe HTML of a node's children."""
    parts: list[str] = []
    for child in node.children:
        if isinstance(child, str):
            parts.append(html.escape(child, quote=False))
            continue
        opened = _open_tag(child, fallback)
        parts.append(opened + _serialize(child, fallback) + _close_tag(child, opened))
    return "".join(parts)


def _outside_quotes(node: _Node) -> str:
    """Return the text of a node leaving out quoted blocks (the originals of translated messages)."""
    parts: list[str] = []
    for child in node.children:
        if isinstance(child, str):
            parts.append(child)
        elif child.tag != "blockquote":
            parts.append(_outside_quotes(child))
    return "".join(parts)


def sanitize(telegram_html: str, fallback_lang: str = "en") -> tuple[str, str]:
    """Return (safe HTML, language of the text outside quotes) for a message in Telegram's HTML."""
    builder = _TreeBuilder()
    builder.feed(telegram_html or "")
    builder.close()
    main_text = _outside_quotes(builder.root)
    lang = detect_language(main_text if main_text.strip() else builder.root.text(), fallback_lang)
    return _serialize(builder.root, fallback_lang), lang


def render_message(record: dict[str, Any], pane_lang: str) -> dict[str, Any]:
    """Return what the page needs of one emulator message record (a `MessageRecord.to_dict()`)."""
    safe, lang = sanitize(str(record.get("html") or ""), pane_lang)
    rows = (record.get("reply_markup") or {}).get("inline_keyboard") or []
    keyboard = [
        [
            {
                "text": str(b.get("text", "")),
                "data": b.get("callback_data"),
                "url": b.get("url") if str(b.get("url") or "").startswith(("http://", "https://")) else None,
            }
            for b in row
        ]
        for row in rows
    ]
    file = record.get("file")
    document = None
    if file and record.get("kind") in ("document", "photo", "audio", "voice", "video", "animation"):
        document = {
            "file_id": file.get("file_id"),
            "name": file.get("file_name") or _default_name(record),
            "size": int(file.get("size") or 0),
            "mime": file.get("mime_type"),
            "kind": record.get("kind"),
        }
    return {
        "message_id": record.get("message_id"),
        "chat_id": record.get("chat_id"),
        "from_bot": bool(record.get("from_bot")),
        "date": record.get("date"),
        "kind": record.get("kind"),
        "html": safe,
        "lang": lang,
        "keyboard": keyboard,
        "document": document,
        "edited": bool(record.get("edited")),
        "deleted": bool(record.get("deleted")),
        "reply_to": record.get("reply_to_message_id"),
    }


def _default_name(record: dict[str, Any]) -> str:
    """Return a file name for media sent without one."""
    return {"photo": "photo.jpg", "voice": "voice.ogg", "audio": "audio.mp3", "video": "video.mp4"}.get(
        str(record.get("kind")), "file.bin"
    )
