"""Deterministic translators for bot-flow tests (the real engines are tested in tests/translation)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from bot.translation.base import Translation


class TagTranslator:
    """Translates by tagging: 'hello' into vi becomes '[vi] hello'; counts its calls."""

    def __init__(self, missing: set[tuple[str, str]] | None = None) -> None:
        self.missing = missing or set()
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []
        self._lock = threading.Lock()

    def translate(self, text: str, source: str, targets: Sequence[str]) -> dict[str, Translation]:
        """Return '[target] text' for each target (the original for the source language)."""
        with self._lock:
            self.calls.append((text, source, tuple(targets)))
        out = {}
        for target in targets:
            if target == source:
                out[target] = Translation(text, source, target, engine="identity")
            elif (source, target) in self.missing:
                out[target] = Translation(text, source, target, engine="passthrough", translated=False,
                                          failure="missing-model")
            else:
                out[target] = Translation(f"[{target}] {text}", source, target, engine="test",
                                          model="tag-1")
        return out

    def directions(self) -> set[tuple[str, str]]:
        """Return every pair of zh, lo, vi, en except the missing ones."""
        langs = ("zh", "lo", "vi", "en")
        return {(a, b) for a in langs for b in langs if a != b} - self.missing
