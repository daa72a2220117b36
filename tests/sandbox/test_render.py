"""Sanitizing the bot's Telegram HTML for the page, with a language per bubble and per quote."""

from __future__ import annotations

from bot.sandbox.web_render import render_message, sanitize


def test_telegram_tags_survive_and_quotes_get_their_own_language() -> None:
    html = (
        "🇻🇳 <b>Trần Văn Hùng</b> · <i>CN-VN-2026-0042</i>\n[zh] 我们发现了穿山甲鳞片\n"
        "<blockquote expandable>Chúng tôi phát hiện vảy tê tê</blockquote>"
    )
    safe, lang = sanitize(html, "zh")
    assert lang == "zh"
    assert "<b>Trần Văn Hùng</b>" in safe and "<i>CN-VN-2026-0042</i>" in safe
    assert (
        '<blockquote class="expandable" tabindex="0" lang="vi">Chúng tôi phát hiện vảy tê tê</blockquote>'
        in safe
    )


def test_untranslated_lao_keeps_lao_language() -> None:
    _safe, lang = sanitize(
        "<i>Untranslated: no model for Lao → Chinese.</i>\nສະບາຍດີ ທ່ານ ສົມພອນ ມື້ນີ້ເຮົາໄປກວດດ່ານ", "zh"
    )
    assert lang == "lo"


def test_everything_else_is_escaped_or_dropped() -> None:
    safe, _ = sanitize(
        '<a href="javascript:alert(1)">x</a><img src=x onerror=alert(1)>'
        '<b onclick="alert(1)">b</b><script>bad()</script>&lt;i&gt;',
        "en",
    )
    assert "javascript" not in safe and "onerror" not in safe and "onclick" not in safe
    assert "<script" not in safe and "<img" not in safe
    assert "<b>b</b>" in safe and "&lt;i&gt;" in safe
    safe, _ = sanitize('<a href="https://example.org/?a=1&amp;b=&quot;2">link</a>', "en")
    assert safe == (
        '<a href="https://example.org/?a=1&amp;b=&quot;2" target="_blank" rel="noopener noreferrer">link</a>'
    )
    safe, _ = sanitize(
        '<span class="tg-spoiler">secret</span><pre><code class="language-py">x&lt;1</code></pre>', "en"
    )
    assert (
        safe
        == '<span class="tg-spoiler" tabindex="0">secret</span><pre><code class="language-py">x&lt;1</code></pre>'
    )


def test_render_message_keeps_callback_buttons_and_safe_links_only() -> None:
    record = {
        "message_id": 5,
        "chat_id": 1,
        "from_bot": True,
        "kind": "document",
        "html": "export",
        "reply_markup": {
            "inline_keyboard": [
                [{"text": "Done", "callback_data": "ai:done:1"}, {"text": "bad", "url": "javascript:x"}]
            ]
        },
        "file": {
            "file_id": "F1",
            "file_name": "audit-export.zip",
            "size": 12,
            "mime_type": "application/zip",
        },
    }
    out = render_message(record, "en")
    assert out["keyboard"] == [
        [{"text": "Done", "data": "ai:done:1", "url": None}, {"text": "bad", "data": None, "url": None}]
    ]
    assert out["document"] == {
        "file_id": "F1",
        "name": "audit-export.zip",
        "size": 12,
        "mime": "application/zip",
        "kind": "document",
    }
