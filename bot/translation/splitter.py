"""Sentence splitting for chat messages in Chinese, Lao, Vietnamese and English, without any model.

Models translate sentence by sentence; a chat message is split into sentences and the separators
between them are kept, so that joining `sentence + separator` pieces gives the message back exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: sentences longer than this (in characters) are cut further at phrase boundaries
MAX_SENTENCE_CHARS = 300
#: Lao has no spaces between words but puts one between phrases; long Lao runs are cut at these
LAO_PHRASE_CHARS = 120

_CLOSERS = "\"'”’」』）)】》"
# Chinese ends sentences with full-width marks, and needs no space after them.
_ZH_END = re.compile(r"[。！？!?；…]+[" + re.escape(_CLOSERS) + r"]*")
# Latin scripts end a sentence with . ! ? … followed by space and something that starts a sentence.
_LATIN_END = re.compile(
    r"[.!?…]+[" + re.escape(_CLOSERS) + r"]*(?=\s+[\"'“‘(\[]?[A-ZÀ-ỸĐ0-9\u0E80-\u0EFF\u4E00-\u9FFF])"
)
# Lao: the Latin marks (used in modern Lao writing) and ຯ (ellipsis) followed by a space.
_LAO_END = re.compile(r"(?:[.!?]+|ຯ)[" + re.escape(_CLOSERS) + r"]*(?=\s)")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st no nos vs etc e.g i.e tp tx q p ts ths pgs gs ông bà ltd co inc jr sr fig art".split()
)
_NEWLINES = re.compile(r"\s*\n\s*")


@dataclass(frozen=True, slots=True)
class Piece:
    """One sentence and the separator (spaces, newlines) that followed it in the message."""

    text: str
    separator: str = ""


def _split_at(text: str, ends: list[int]) -> list[Piece]:
    pieces: list[Piece] = []
    start = 0
    for end in ends:
        sentence = text[start:end]
        rest = text[end:]
        sep = rest[: len(rest) - len(rest.lstrip())]
        if sentence.strip():
            pieces.append(Piece(sentence, sep))
        start = end + len(sep)
    if text[start:].strip():
        pieces.append(Piece(text[start:], ""))
    elif pieces:
        pieces[-1] = Piece(pieces[-1].text, pieces[-1].separator + text[start:])
    return pieces


def _sentence_ends(line: str, lang: str) -> list[int]:
    if lang == "zh":
        return [m.end() for m in _ZH_END.finditer(line) if m.end() < len(line)]
    if lang == "lo":
        ends = [m.end() for m in _LAO_END.finditer(line)]
        ends += [m.end() for m in _LATIN_END.finditer(line)]
        return sorted(set(ends))
    ends = []
    for m in _LATIN_END.finditer(line):
        word = line[: m.start()].rsplit(None, 1)[-1] if line[: m.start()].strip() else ""
        if word.lower().rstrip(".") in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            continue  # "Mr. Li", "TP. Hồ Chí Minh", initials "J. Smith"
        ends.append(m.end())
    return ends


def _cut_long(piece: Piece, lang: str) -> list[Piece]:
    """Cut an over-long sentence at phrase boundaries (Lao spaces, commas) so the model sees short inputs."""
    limit = LAO_PHRASE_CHARS if lang == "lo" else MAX_SENTENCE_CHARS
    text = piece.text
    if len(text) <= limit:
        return [piece]
    if lang == "lo":
        # A space next to ໆ (repetition mark) belongs to the word before it, never a phrase boundary.
        pattern = re.compile(r"(?<!ໆ)(?<=\S)\s+(?!ໆ)(?=\S)")
    elif lang == "zh":
        pattern = re.compile(r"(?<=[，、：,:])")
    else:
        pattern = re.compile(r"(?<=[,;:])\s+")
    out: list[Piece] = []
    start = 0
    last_cut: tuple[int, int] | None = None
    for m in pattern.finditer(text):
        if m.start() - start > limit and last_cut is not None:
            out.append(Piece(text[start : last_cut[0]], text[last_cut[0] : last_cut[1]]))
            start = last_cut[1]
        last_cut = (m.start(), m.end())
    if len(text) - start > limit and last_cut is not None and last_cut[1] > start:
        out.append(Piece(text[start : last_cut[0]], text[last_cut[0] : last_cut[1]]))
        start = last_cut[1]
    out.append(Piece(text[start:], piece.separator))
    return [p for p in out if p.text] or [piece]


def split_sentences(text: str, lang: str) -> list[Piece]:
    """Split a chat message into sentences; `"".join(p.text + p.separator for p in pieces)` is the message."""
    if not text.strip():
        return [Piece(text, "")] if text else []
    lead = text[: len(text) - len(text.lstrip())]
    body = text[len(lead) :]
    pieces: list[Piece] = []
    pos = 0
    lines: list[tuple[str, str]] = []
    for m in _NEWLINES.finditer(body):
        lines.append((body[pos : m.start()], m.group()))
        pos = m.end()
    lines.append((body[pos:], ""))
    for line, newline in lines:
        if not line:
            if pieces:
                pieces[-1] = Piece(pieces[-1].text, pieces[-1].separator + newline)
            continue
        sentences = _split_at(line, _sentence_ends(line, lang))
        for sentence in sentences:
            pieces.extend(_cut_long(sentence, lang))
        if pieces:
            pieces[-1] = Piece(pieces[-1].text, pieces[-1].separator + newline)
    # Trailing spaces belong to the separator, so a sentence is only what a model should see.
    pieces = [Piece(p.text.rstrip(), p.text[len(p.text.rstrip()) :] + p.separator) for p in pieces]
    if lead and pieces:
        pieces.insert(0, Piece("", lead))
    return pieces
