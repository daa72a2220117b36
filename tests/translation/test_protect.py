"""What must not be translated is found, masked and put back byte-identical."""

from __future__ import annotations

import pytest

from bot.translation.protect import (
    Span,
    canonical_placeholders,
    find_protected,
    mask,
    merge_spans,
    placeholder_ids,
)

MESSAGE = (
    "Case CN-VN-2026-0042: truck 29C-123.45 and 粤B12345, container MSCU1234567 at 21.0285, 105.8542 "
    "(21°01'42.6\"N 105°51'15.1\"E). See https://example.org/a_b?x=1. Ask @nguyen_van_a #pangolin "
    "+84 912 345 678, 120 kg on 2026-08-30 14:30; flight VN512, ນວ 1234, {3}"
)


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("case", "CN-VN-2026-0042"),
        ("plate", "29C-123.45"),
        ("plate", "粤B12345"),
        ("container", "MSCU1234567"),
        ("coordinates", "21.0285, 105.8542"),
        ("coordinates", "21°01'42.6\"N 105°51'15.1\"E"),
        ("url", "https://example.org/a_b?x=1"),
        ("username", "@nguyen_van_a"),
        ("hashtag", "#pangolin"),
        ("phone", "+84 912 345 678"),
        ("number", "120"),
        ("number", "2026-08-30"),
        ("number", "14:30"),
        ("code", "VN512"),
        ("plate", "ນວ 1234"),
        ("placeholder", "{3}"),
    ],
)
def test_finds_each_kind(kind: str, text: str) -> None:
    """Every kind of protected item in a realistic message is found whole."""
    assert (kind, text) in {(s.kind, s.text) for s in find_protected(MESSAGE)}


def test_url_does_not_swallow_the_full_stop() -> None:
    """A sentence's full stop after a link stays outside the protected link."""
    spans = find_protected("See https://example.org/a_b?x=1. Then")
    assert [s.text for s in spans] == ["https://example.org/a_b?x=1"]


def test_mask_and_render_round_trip() -> None:
    """Masking then rendering an untouched template gives the message back byte for byte."""
    masked = mask(MESSAGE, find_protected(MESSAGE))
    assert "MSCU" not in masked.template and "@nguyen" not in masked.template
    assert masked.render(masked.template, "vi") == MESSAGE


def test_render_survives_reordering_and_model_spacing() -> None:
    """A model that reorders placeholders and writes "{ 1 }" or full-width braces still gets them filled."""
    masked = mask("@a_b sent MSCU1234567", find_protected("@a_b sent MSCU1234567"))
    assert masked.template == "{0} sent {1}"
    model_output = canonical_placeholders("｛1｝ 由 { 0 } 发送")
    assert placeholder_ids(model_output) == [1, 0]
    assert masked.render(model_output, "zh") == "MSCU1234567 由 @a_b 发送"


def test_glossary_span_renders_the_target_term_and_yields_to_protection() -> None:
    """A glossary span becomes the target term; one overlapping a protected span is dropped."""
    text = "pangolin scales #pangolin"
    terms = [
        Span(0, 15, "pangolin scales", "glossary", {"vi": "vảy tê tê"}),
        Span(17, 25, "pangolin", "glossary", {"vi": "tê tê"}),
    ]
    spans = merge_spans(find_protected(text), terms)
    masked = mask(text, spans)
    assert masked.template == "{0} {1}"
    assert masked.render(masked.template, "vi") == "vảy tê tê #pangolin"
