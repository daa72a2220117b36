"""The bot's translator: routes directions to installed engines; batches, protects, caches; never raises."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.translation.base import LANGUAGES, Translation
from bot.translation.cache import TranslationMemory
from bot.translation.engines import CT2Engine, Row
from bot.translation.glossary import GlossaryStore
from bot.translation.protect import (
    PLACEHOLDER,
    Masked,
    canonical_placeholders,
    find_protected,
    mask,
    merge_spans,
    placeholder_ids,
    renumber,
)
from bot.translation.splitter import split_sentences

logger = logging.getLogger(__name__)

PIVOT = "en"
_WORDS = re.compile(r"[^\W\d_]")
_SPLIT_PLACEHOLDERS = re.compile(r"(\{\d+\})")


@dataclass(frozen=True)
class Hop:
    """One model call on the way from the source language to the target language."""

    engine: CT2Engine
    source: str
    target: str


@dataclass
class _Sentence:
    """A sentence of one message, with placeholders numbered from 0 within the sentence."""

    text: str
    to_global: dict[int, int]
    separator: str


def _has_words(text: str) -> bool:
    return bool(_WORDS.search(PLACEHOLDER.sub("", text)))


def _record(hops: Sequence[Hop]) -> tuple[str, str]:
    """Return the (engine, model) pair recorded with a translation made through `hops`."""
    engine = "+".join(h.engine.kind for h in hops)
    if len(hops) == 1:
        return engine, hops[0].engine.model_id
    return engine, "; ".join(f"{h.source}-{h.target}:{h.engine.model_id}" for h in hops)


class OfflineTranslator:
    """Translates through the installed engines; one instance for the whole bot, safe from many threads."""

    def __init__(
        self,
        engines: Iterable[CT2Engine],
        *,
        preference: Sequence[str] = ("argos", "nllb", "madlad", "m2m100", "marian"),
        glossary: GlossaryStore | None = None,
        memory: TranslationMemory | None = None,
        pivot: str = PIVOT,
    ) -> None:
        rank = {kind: i for i, kind in enumerate(preference)}
        usable = []
        for engine in engines:
            if engine.kind in rank:
                usable.append(engine)
            else:
                logger.warning(
                    "model %s (%s) is installed but %s is not in LIAISON_TRANSLATION_ENGINES; not used",
                    engine.model_id,
                    engine.kind,
                    engine.kind,
                )
        self.engines: tuple[CT2Engine, ...] = tuple(sorted(usable, key=lambda e: (rank[e.kind], e.name)))
        self.glossary = glossary
        self.memory = memory if memory is not None else TranslationMemory()
        self.pivot = pivot
        self._direct: dict[tuple[str, str], CT2Engine] = {}
        for engine in self.engines:
            for pair in engine.pairs():
                self._direct.setdefault(pair, engine)

    # --- routing -------------------------------------------------------------------------------

    def route(self, source: str, target: str) -> tuple[Hop, ...] | None:
        """Return the engines a direction goes through (direct first, else through English), or None."""
        if source == target:
            return ()
        direct = self._direct.get((source, target))
        if direct is not None:
            return (Hop(direct, source, target),)
        first = self._direct.get((source, self.pivot))
        second = self._direct.get((self.pivot, target))
        if first is not None and second is not None:
            return (Hop(first, source, self.pivot), Hop(second, self.pivot, target))
        return None

    def directions(self) -> set[tuple[str, str]]:
        """Return every (source, target) pair that can be translated, directly or through English."""
        return {(a, b) for a in LANGUAGES for b in LANGUAGES if a != b and self.route(a, b) is not None}

    def warm_up(self) -> dict[str, float]:
        """Load every model now instead of on first use; return the load seconds per model."""
        loaded = {}
        for engine in self.engines:
            try:
                engine.load()
                loaded[engine.model_id] = engine.load_seconds or 0.0
            except Exception:
                logger.exception("translation model %s could not be loaded", engine.model_id)
        return loaded

    def close(self) -> None:
        """Release the models (the bot calls this at shutdown)."""
        for engine in self.engines:
            engine.close()
        self.memory.clear()

    # --- translation ---------------------------------------------------------------------------

    def translate(self, text: str, source: str, targets: Sequence[str]) -> dict[str, Translation]:
        """Return one `Translation` per target language; never raises."""
        return self.translate_many([text], source, targets)[0]

    def translate_many(
        self, texts: Sequence[str], source: str, targets: Sequence[str]
    ) -> list[dict[str, Translation]]:
        """Translate several texts from one language (a broadcast, an evaluation) in shared batches."""
        targets = list(dict.fromkeys(targets))
        try:
            return self._translate_many(texts, source, targets)
        except Exception:
            logger.exception("translation from %s failed unexpectedly; relaying the originals", source)
            return [
                {
                    t: Translation(text, source, t, engine="identity")
                    if t == source
                    else Translation(
                        text, source, t, engine="passthrough", translated=False, failure="engine-error"
                    )
                    for t in targets
                }
                for text in texts
            ]

    def _prepare(self, text: str, source: str, targets: Sequence[str]) -> tuple[Masked, list[_Sentence]]:
        spans = find_protected(text)
        if self.glossary is not None:
            spans = merge_spans(spans, self.glossary.current().find(text, source, targets))
        masked = mask(text, spans)
        sentences = []
        for piece in split_sentences(masked.template, source):
            ids = placeholder_ids(piece.text)
            local = {g: i for i, g in enumerate(ids)}
            sentences.append(
                _Sentence(renumber(piece.text, local), {i: g for g, i in local.items()}, piece.separator)
            )
        return masked, sentences

    def _translate_many(
        self, texts: Sequence[str], source: str, targets: list[str]
    ) -> list[dict[str, Translation]]:
        started = time.perf_counter()
        routes = {t: self.route(source, t) for t in targets if t != source}
        active = [t for t, r in routes.items() if r]
        prepared = [self._prepare(text, source, active) for text in texts]
        # current[target][(text index, sentence index)] = the sentence as far as it has been translated
        current: dict[str, dict[tuple[int, int], str]] = {
            t: {(i, j): s.text for i, (_, sents) in enumerate(prepared) for j, s in enumerate(sents)}
            for t in active
        }
        failed: dict[str, str] = {}
        for stage in range(max((len(routes[t] or ()) for t in active), default=0)):
            by_engine: dict[int, tuple[CT2Engine, list[tuple[str, tuple[int, int], Row]]]] = {}
            for t in active:
                hops = routes[t] or ()
                if t in failed or stage >= len(hops):
                    continue
                hop = hops[stage]
                jobs = by_engine.setdefault(id(hop.engine), (hop.engine, []))[1]
                for key, sentence in current[t].items():
                    jobs.append((t, key, (sentence, hop.source, hop.target)))
            for engine, jobs in by_engine.values():
                try:
                    outputs = self._run(engine, [row for _, _, row in jobs])
                except Exception:
                    hit = sorted({t for t, _, _ in jobs})
                    logger.exception(
                        "translation engine %s failed for %s -> %s; relaying the original",
                        engine.model_id,
                        source,
                        ",".join(hit),
                    )
                    failed.update({t: "engine-error" for t in hit})
                    continue
                for (t, key, _), output in zip(jobs, outputs, strict=True):
                    current[t][key] = output
        results: list[dict[str, Translation]] = []
        for i, (text, (masked, sentences)) in enumerate(zip(texts, prepared, strict=True)):
            out: dict[str, Translation] = {}
            for t in targets:
                route = routes.get(t)
                if t == source:
                    out[t] = Translation(text, source, t, engine="identity")
                elif not route:
                    out[t] = Translation(
                        text, source, t, engine="passthrough", translated=False, failure="missing-model"
                    )
                elif t in failed:
                    kind, model = _record(route)
                    out[t] = Translation(
                        text, source, t, engine=kind, model=model, translated=False, failure=failed[t]
                    )
                else:
                    kind, model = _record(route)
                    out[t] = Translation(
                        self._assemble(masked, sentences, current[t], i, t),
                        source,
                        t,
                        engine=kind,
                        model=model,
                    )
            results.append(out)
        logger.debug(
            "translated %d text(s) %s -> %s in %.3f s",
            len(texts),
            source,
            ",".join(targets),
            time.perf_counter() - started,
        )
        return results

    @staticmethod
    def _assemble(
        masked: Masked, sentences: list[_Sentence], done: dict[tuple[int, int], str], index: int, target: str
    ) -> str:
        parts = []
        for j, sentence in enumerate(sentences):
            separator = sentence.separator
            if (
                target == "zh"
                and separator.strip(" ") == ""
                and "\n" not in separator
                and j < len(sentences) - 1
            ):
                separator = ""  # Chinese puts no space between sentences
            translated = done[(index, j)]
            parts.append(renumber(translated, sentence.to_global) + separator)
        return masked.render("".join(parts), target)

    # --- one engine call, with memory, placeholder checks and the fragment fallback ------------

    def _run(self, engine: CT2Engine, rows: Sequence[Row]) -> list[str]:
        """Translate rows through one engine: remembered ones from memory, the rest in one batch."""
        unique = list(dict.fromkeys(rows))
        done: dict[Row, str] = {}
        todo: list[Row] = []
        for row in unique:
            if not _has_words(row[0]):
                done[row] = row[0]
                continue
            hit = self.memory.get((f"{engine.kind}:{engine.model_id}", row[1], row[2], row[0]))
            if hit is None:
                todo.append(row)
            else:
                done[row] = hit
        if todo:
            outputs = engine.translate_rows(todo)
            broken: list[Row] = []
            for row, output in zip(todo, outputs, strict=True):
                output = canonical_placeholders(output)
                if sorted(placeholder_ids(output)) == sorted(placeholder_ids(row[0])):
                    done[row] = output
                else:
                    broken.append(row)
            if broken:
                done.update(self._translate_fragments(engine, broken))
            for row in todo:
                self.memory.put((f"{engine.kind}:{engine.model_id}", row[1], row[2], row[0]), done[row])
        return [done[row] for row in rows]

    @staticmethod
    def _translate_fragments(engine: CT2Engine, rows: Sequence[Row]) -> dict[Row, str]:
        """Translate the pieces between placeholders one by one, for rows whose placeholders were lost."""
        fragments: list[Row] = []
        plans: dict[Row, list[tuple[str, str, str] | str]] = {}
        for row in rows:
            plan: list[tuple[str, str, str] | str] = []
            for part in _SPLIT_PLACEHOLDERS.split(row[0]):
                if _SPLIT_PLACEHOLDERS.fullmatch(part) or not _has_words(part):
                    plan.append(part)
                else:
                    core = part.strip()
                    lead = part[: len(part) - len(part.lstrip())]
                    trail = part[len(part.rstrip()) :]
                    plan.append((lead, core, trail))
                    fragments.append((core, row[1], row[2]))
            plans[row] = plan
        unique = list(dict.fromkeys(fragments))
        # A model may invent placeholders of its own; they must not be mistaken for ours.
        translated = {}
        for fragment, output in zip(unique, engine.translate_rows(unique), strict=True):
            # A model may invent placeholders of its own; they must not be mistaken for ours. An empty
            # output keeps the original fragment: nothing of the message is ever dropped.
            translated[fragment] = PLACEHOLDER.sub("", output).strip() or fragment[0]
        out = {}
        for row, plan in plans.items():
            pieces = []
            for item in plan:
                if isinstance(item, str):
                    pieces.append(item)
                else:
                    lead, core, trail = item
                    pieces.append(lead + translated[(core, row[1], row[2])] + trail)
            out[row] = "".join(pieces)
        return out
