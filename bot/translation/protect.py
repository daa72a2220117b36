"""Protection of what must come through translation byte-identical: tags, names, links, numbers, codes.

Each protected span is replaced by a placeholder `{n}` before the model sees the text and put back
afterwards. A model may drop or mangle a placeholder; the translator then translates the pieces
between the placeholders one by one (see `offline.py`), so a protected span is never lost.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_TRAILING_PUNCT = re.compile(r"[.,;:!?)\]}'\"」』）。，！？、]+$")

# Order matters: at one position the first alternative that matches wins, so the specific and
# long patterns come before the general ones.
_RULES: tuple[tuple[str, str], ...] = (
    ("url", r"(?:https?://|www\.)[^\s<>\"“”]+"),
    ("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"),
    ("username", r"(?<![\w@])@[A-Za-z0-9_]{3,32}"),
    ("hashtag", r"(?<![\w#&])#\w+"),
    ("placeholder", r"[{｛]\s*\d+\s*[}｝]"),  # a literal "{12}" in a message must not pass for ours
    (
        "coordinates",
        # 21.0285, 105.8542 | 21.0285°N 105.8542°E | 21°01'42.6"N 105°51'15.1"E
        r"-?\d{1,2}\.\d{3,}°?\s*[NS]?\s*[,;/]?\s*-?\d{1,3}\.\d{3,}°?\s*[EW]?"
        r"|\d{1,3}°\s?\d{1,2}['′]\s?(?:\d{1,2}(?:\.\d+)?[\"″]\s?)?[NS][,\s]*\d{1,3}°\s?\d{1,2}['′]\s?"
        r"(?:\d{1,2}(?:\.\d+)?[\"″]\s?)?[EW]",
    ),
    ("case", r"(?<![A-Za-z0-9-])[A-Z]{2}(?:-[A-Z]{2}){0,3}-\d{4}-\d{2,6}(?![A-Za-z0-9])"),
    ("container", r"(?<![A-Za-z0-9])[A-Z]{3}[UJZ]\s?\d{6}\s?\d(?![A-Za-z0-9])"),
    # Vietnamese plates 29C-123.45, 51F1-234.56; Chinese plates 云A·12345, 粤B12345; Lao plates ກຂ 1234
    ("plate", r"(?<![A-Za-z0-9])\d{2}[A-Z]{1,2}\d?-\d{3}\.?\d{2}(?![\d])"),
    (
        "plate",
        r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-Z][·•\s]?[A-Z0-9]{5,6}(?![A-Za-z0-9])",
    ),
    ("plate", r"(?<![\u0E80-\u0EFF])[\u0E81-\u0EAE]{2}\s?\d{4}(?!\d)"),
    # Any code that mixes capitals and digits: flight and vessel numbers, HS codes, permit numbers.
    (
        "code",
        r"(?<![A-Za-z0-9])(?=[A-Z0-9./-]*\d)(?=[A-Z0-9./-]*[A-Z])[A-Z0-9][A-Z0-9./-]*[A-Z0-9](?![A-Za-z0-9])",
    ),
    ("phone", r"\+\d[\d\s-]{6,}\d"),
    ("number", r"\d+(?:[.,:/-]\d+)*"),
)

_PROTECT = re.compile("|".join(f"(?P<{kind}{i}>{rx})" for i, (kind, rx) in enumerate(_RULES)))

#: how a placeholder may come back from a model: "{3}", "{ 3 }", full-width "｛3｝"
PLACEHOLDER = re.compile(r"[{｛]\s*(\d{1,3})\s*[}｝]")


@dataclass(frozen=True, slots=True)
class Span:
    """A protected piece of a message: kept as it is, or replaced by the glossary's target term."""

    start: int
    end: int
    text: str
    kind: str
    #: glossary terms by language; None for spans that are kept byte-identical
    terms: Mapping[str, str] | None = None

    def render(self, target: str) -> str:
        """Return what this span becomes in the target language."""
        if self.terms is not None and target in self.terms:
            return self.terms[target]
        return self.text


@dataclass(frozen=True, slots=True)
class Masked:
    """A message with its protected spans replaced by `{0}`, `{1}`, ... placeholders."""

    template: str
    spans: tuple[Span, ...]

    def render(self, template: str, target: str) -> str:
        """Fill the placeholders of a (translated) template with the spans as the target language needs."""

        def fill(m: re.Match[str]) -> str:
            index = int(m.group(1))
            return self.spans[index].render(target) if index < len(self.spans) else ""

        return PLACEHOLDER.sub(fill, template)


def find_protected(text: str) -> list[Span]:
    """Return the spans of `text` that must not be translated, left to right, not overlapping."""
    spans: list[Span] = []
    for m in _PROTECT.finditer(text):
        kind = (m.lastgroup or "x").rstrip("0123456789")
        start, end = m.span()
        value = m.group()
        if kind == "url":
            trimmed = _TRAILING_PUNCT.sub("", value)
            end = start + len(trimmed)
            value = trimmed
        elif kind in ("coordinates", "phone"):
            stripped = value.rstrip()
            end = start + len(stripped)
            value = stripped
        if value:
            spans.append(Span(start, end, value, kind))
    return spans


def merge_spans(protected: Iterable[Span], terms: Iterable[Span]) -> list[Span]:
    """Merge glossary spans into the protected ones; a term overlapping a protected span is dropped."""
    taken = sorted(protected, key=lambda s: s.start)
    out = list(taken)
    for term in sorted(terms, key=lambda s: (s.start, -(s.end - s.start))):
        if any(term.start < s.end and s.start < term.end for s in out):
            continue
        out.append(term)
    return sorted(out, key=lambda s: s.start)


def mask(text: str, spans: Iterable[Span]) -> Masked:
    """Replace each span (sorted, not overlapping) by its placeholder."""
    parts: list[str] = []
    kept: list[Span] = []
    pos = 0
    for span in spans:
        parts.append(text[pos : span.start])
        parts.append(f"{{{len(kept)}}}")
        kept.append(span)
        pos = span.end
    parts.append(text[pos:])
    return Masked("".join(parts), tuple(kept))


def placeholder_ids(text: str) -> list[int]:
    """Return the placeholder numbers in `text`, in order of appearance."""
    return [int(m.group(1)) for m in PLACEHOLDER.finditer(text)]


def canonical_placeholders(text: str) -> str:
    """Write every placeholder variant a model produced ("{ 1 }", "｛1｝") as "{1}"."""
    return PLACEHOLDER.sub(lambda m: f"{{{m.group(1)}}}", text)


def renumber(template: str, mapping: Mapping[int, int]) -> str:
    """Rewrite the placeholder numbers of a template through `mapping`."""
    return PLACEHOLDER.sub(lambda m: f"{{{mapping[int(m.group(1))]}}}", template)
