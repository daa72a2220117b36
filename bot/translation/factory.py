"""Builds the bot's translator from the settings, once, at start."""

from __future__ import annotations

import logging
from typing import Any

from bot.config import Settings
from bot.translation.base import PassThroughTranslator, Translator
from bot.translation.cache import TranslationMemory
from bot.translation.engines import EngineOptions
from bot.translation.glossary import GlossaryStore
from bot.translation.offline import OfflineTranslator
from bot.translation.registry import build_engines

logger = logging.getLogger(__name__)


def engine_options(settings: Settings, **overrides: Any) -> EngineOptions:
    """Return how CTranslate2 runs: beam size and threads from the settings.

    One translation uses all `translation_threads` cores (intra_threads) and runs one batch at a
    time (inter_threads=1): on a small server the fastest answer for one officer comes from giving
    one batch every core; concurrent messages queue inside CTranslate2 while the bot keeps answering.
    """
    values: dict[str, Any] = {
        "beam_size": settings.translation_beam_size,
        "intra_threads": settings.translation_threads,
        "inter_threads": 1,
    }
    values.update(overrides)
    return EngineOptions(**values)


def build_translator(
    settings: Settings,
    *,
    preload: bool = False,
    memory_entries: int = 10_000,
    options: EngineOptions | None = None,
) -> Translator:
    """Return the translator for the installed models, or the pass-through one when none is installed.

    Models load on first use (or now, with `preload=True`); each load is timed in the log.
    """
    models_dir = settings.resolved_models_dir
    try:
        engines = build_engines(models_dir, options or engine_options(settings))
    except OSError:
        logger.exception(
            "cannot read the models folder %s; messages will be relayed untranslated", models_dir
        )
        return PassThroughTranslator()
    translator = OfflineTranslator(
        engines,
        preference=settings.translation_engines,
        glossary=GlossaryStore(settings.data_dir),
        memory=TranslationMemory(memory_entries),
    )
    if not translator.engines:
        logger.warning(
            "no translation model installed in %s (see `liaison models install`); messages are relayed "
            "untranslated",
            models_dir,
        )
        return PassThroughTranslator()
    logger.info(
        "translation: %d model(s) [%s]; directions: %s",
        len(translator.engines),
        ", ".join(f"{e.kind}:{e.model_id}" for e in translator.engines),
        " ".join(f"{a}>{b}" for a, b in sorted(translator.directions())) or "none",
    )
    if preload:
        translator.warm_up()
    return translator
