"""Translation memory: an in-memory LRU of translated sentences, safe to share between threads."""

from __future__ import annotations

import threading
from collections import OrderedDict

#: (engine model id, source language, target language, sentence with placeholders)
MemoryKey = tuple[str, str, str, str]


class TranslationMemory:
    """Remembers recent sentence translations by direction, engine/model version and text."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[MemoryKey, str] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: MemoryKey) -> str | None:
        """Return the remembered translation, or None."""
        if self.max_entries <= 0:
            return None
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: MemoryKey, value: str) -> None:
        """Remember a translation, forgetting the least recently used one when full."""
        if self.max_entries <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (after models were installed or removed)."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
