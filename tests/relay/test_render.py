"""The relayed layout and the clean splitting of long Telegram HTML."""

from __future__ import annotations

import html
import re

from bot.i18n import Catalogs
from bot.render import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    CopyText,
    SenderView,
    plain_length,
    relayed_html,
    split_html,
    utf16_len,
)

SENDER = SenderView("Nguyễn <An>", "Border Guard", "\U0001f1fb\U0001f1f3")


def _plain(piece: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", piece))


def _balanced(piece: str) -> bool:
    stack: list[str] = []
    for closing, name in re.findall(r"<(/?)([a-z-]+)[^>]*>", piece):
        if closing:
            if not stack or stack.pop() != name:
                return False
        else:
            stack.append(name)
    return not stack


def test_copy_shows_sender_case_handling_translation_and_original(catalogs: Catalogs) -> None:
    """A translated copy has the header, the text in the reader's language and the original in a quote."""
    out = relayed_html(catalogs.get("zh"), sender=SENDER, case_tag="CN-VN-2026-0042", is_dm=False, handling="H1",
                       conditions=None, body=CopyText("[zh] 货物 <明天>", "Hàng <ngày mai>", "vi", "zh"))
    assert "\U0001f1fb\U0001f1f3 <b>Nguyễn &lt;An&gt;</b> · Border Guard" in out
    assert "<code>CN-VN-2026-0042</code>" in out
    assert "<b>H1</b> · " + catalogs.get("zh")("Not to be used as evidence without the sender's permission.") in out
    assert "[zh] 货物 &lt;明天&gt;" in out
    assert re.search(r"<blockquote expandable><i>[^<]+</i>\nHàng &lt;ngày mai&gt;</blockquote>$", out)
    assert _balanced(out)


def test_untranslated_copy_names_the_missing_direction(catalogs: Catalogs) -> None:
    """Without a model the reader gets the original once, with a note naming source and target in their language."""
    t = catalogs.get("en")
    out = relayed_html(t, sender=SENDER, case_tag="CN-VN-2026-0042", is_dm=False, handling="H0", conditions=None,
                       body=CopyText("Hàng đi Lào Cai", "Hàng đi Lào Cai", "vi", "lo", translated=False,
                                     failure="missing-model"))
    assert "Not translated: no Vietnamese → Lao translation model is installed." in out
    assert "blockquote" not in out and out.count("Hàng đi Lào Cai") == 1
    failed = relayed_html(t, sender=SENDER, case_tag="X", is_dm=False, handling="H0", conditions=None,
                          body=CopyText("x", "x", "vi", "zh", translated=False, failure="engine-error"))
    assert "the Vietnamese → Chinese translation failed" in failed
    lao = relayed_html(catalogs.get("lo"), sender=SENDER, case_tag="X", is_dm=False, handling="H0", conditions=None,
                       body=CopyText("x", "x", "vi", "lo", translated=False, failure="missing-model"))
    assert "ບໍ່ໄດ້ແປ" in lao  # the note is in the reader's language


def test_same_language_dm_h3_and_edited(catalogs: Catalogs) -> None:
    """Same-language copies have no quote; DMs say one-to-one; H3 shows its conditions; edits are marked."""
    out = relayed_html(catalogs.get("en"), sender=SENDER, case_tag="DM-1-2", is_dm=True, handling="H3",
                       conditions="Only <Lao Cai> team", edited=True,
                       body=CopyText("hello", "hello", "en", "en"))
    assert "blockquote" not in out and "one-to-one" in out and "DM-1-2" not in out
    assert "Other conditions: Only &lt;Lao Cai&gt; team" in out and "edited" in out


def test_short_text_is_one_piece() -> None:
    """A text within the limit comes back unchanged."""
    text = "<b>hi</b> &amp; welcome"
    assert split_html(text) == [text]
    assert plain_length(text) == len("hi & welcome")


def test_long_text_splits_at_paragraphs_and_keeps_everything() -> None:
    """Paragraphs are kept whole when they fit; joined pieces give back all the words; tags stay balanced."""
    paragraphs = [f"Paragraph {i}: " + " ".join(f"word{i}-{j}" for j in range(120)) for i in range(8)]
    text = "<b>Header</b>\n\n" + "\n\n".join(paragraphs)
    pieces = split_html(text)
    assert len(pieces) > 1
    assert all(plain_length(p) <= TEXT_LIMIT and _balanced(p) for p in pieces)
    assert all(p.split("\n\n")[0].startswith(("<b>Header", "Paragraph")) for p in pieces)
    words = lambda s: re.findall(r"\S+", _plain(s))  # noqa: E731
    assert sum((words(p) for p in pieces), []) == words(text)


def test_quote_split_reopens_the_expandable_blockquote() -> None:
    """A quote longer than a message continues in the next one, reopened with the same tag."""
    original = "。".join("穿山甲鳞片从老街运往河口" for _ in range(500))
    text = "Header\n\n[lo] translated\n\n<blockquote expandable><i>Original:</i>\n" + original + "</blockquote>"
    pieces = split_html(text)
    assert len(pieces) >= 2
    assert all(plain_length(p) <= TEXT_LIMIT and _balanced(p) for p in pieces)
    assert pieces[-1].startswith("<blockquote expandable>")
    assert "".join(_plain(p) for p in pieces).replace("\n", "") == _plain(text).replace("\n", "")


def test_unbroken_script_is_cut_between_graphemes() -> None:
    """Lao without spaces is cut by length, never between a consonant and its vowel or tone marks."""
    syllable = "ກີ່"  # consonant + vowel sign + tone mark
    text = syllable * 3000
    pieces = split_html(text)
    assert [plain_length(p) <= TEXT_LIMIT for p in pieces] == [True] * len(pieces)
    assert all(p.startswith("ກ") and p.endswith("່") for p in pieces)
    assert "".join(pieces) == text


def test_caption_limit_for_the_first_piece_and_utf16_counting() -> None:
    """A file's caption piece holds 1024 UTF-16 units; emoji count double as Telegram counts them."""
    text = "\U0001f1fb\U0001f1f3 " * 600
    pieces = split_html(text, TEXT_LIMIT, first_limit=CAPTION_LIMIT)
    assert utf16_len(_plain(pieces[0])) <= CAPTION_LIMIT < utf16_len(_plain(pieces[0]) + _plain(pieces[1]))
    assert all(utf16_len(_plain(p)) <= TEXT_LIMIT for p in pieces[1:])


def test_flags_are_never_cut_in_half() -> None:
    """A run of flags without spaces is cut between flags, not between a flag's two letters."""
    text = "\U0001f1e8\U0001f1f3\U0001f1f1\U0001f1e6\U0001f1fb\U0001f1f3" * 400
    pieces = split_html(text)
    assert len(pieces) > 1 and "".join(pieces) == text
    assert all(len(p) % 2 == 0 for p in pieces)
