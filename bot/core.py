"""The core services' shared dependencies, built once per process (never at import time)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.crypto import DataCipher, load_cipher
from bot.db import Database
from bot.i18n import Catalogs
from bot.translation.base import PassThroughTranslator, Translator

logger = logging.getLogger(__name__)


@dataclass
class Core:
    """What every service needs: settings, database, cipher, texts, translator, clock."""

    settings: Settings
    db: Database
    cipher: DataCipher
    catalogs: Catalogs
    translator: Translator
    clock: Clock = field(default_factory=SystemClock)
    #: area-specific long-lived objects (delivery queue, scheduler ...), keyed by area name
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        translator: Translator | None = None,
        clock: Clock | None = None,
        catalogs: Catalogs | None = None,
    ) -> Core:
        """Create the database engine, load the key, the texts and the translation models."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if translator is None:
            translator = _default_translator(settings)
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            cipher=load_cipher(settings),
            catalogs=catalogs or Catalogs(),
            translator=translator,
            clock=clock or SystemClock(),
        )

    def close(self) -> None:
        """Release the database connections and translation engines."""
        closer = getattr(self.translator, "close", None)
        if callable(closer):
            closer()
        self.db.close()


def _default_translator(settings: Settings) -> Translator:
    """Return the installed engines, or the pass-through translator when none can be loaded."""
    try:
        from bot.translation import build_translator  # type: ignore[attr-defined]
    except ImportError:
        return PassThroughTranslator()
    return build_translator(settings)  # type: ignore[no-any-return]
