"""The enforcement glossary: curated terms (glossary.yaml) plus the terms coordinators add.

Coordinators' terms live in `<data_dir>/glossary.local.yaml` (no database: the translation engine
never touches it). A running translator notices a changed file and reloads it.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bot.errors import InvalidInput
from bot.i18n import N_
from bot.translation.base import LANGUAGES
from bot.translation.protect import Span

logger = logging.getLogger(__name__)

LOCAL_FILE = "glossary.local.yaml"
MAX_TERM_CHARS = 80
# Chinese and Lao are written without spaces between words: their terms match as substrings.
_SUBSTRING_LANGS = frozenset({"zh", "lo"})


class GlossaryTermInvalid(InvalidInput):
    """A term a coordinator typed cannot go into the glossary."""

    message = N_(
        "A glossary entry needs the term in at least two languages, each at most {max} characters on one line."  # noqa: E501
    )


@dataclass(frozen=True)
class GlossaryEntry:
    """One concept with its term in each language."""

    id: str
    terms: Mapping[str, str]
    variants: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    no_match: frozenset[str] = frozenset()
    review: frozenset[str] = frozenset()
    sources: tuple[str, ...] = ()
    note: str = ""
    origin: str = "builtin"
    added_by: str = ""
    added_at: str = ""

    def forms(self, lang: str) -> list[str]:
        """Return every spelling matched in a text of language `lang`."""
        if lang in self.no_match:
            return [v for v in self.variants.get(lang, ())]
        forms = [self.terms[lang]] if lang in self.terms else []
        return forms + list(self.variants.get(lang, ()))

    def to_yaml(self) -> dict[str, Any]:
        """Return the entry as written in a glossary file."""
        out: dict[str, Any] = {"id": self.id}
        out.update({lang: self.terms[lang] for lang in LANGUAGES if lang in self.terms})
        if self.variants:
            out["variants"] = {k: list(v) for k, v in self.variants.items()}
        if self.no_match:
            out["no_match"] = sorted(self.no_match)
        if self.note:
            out["note"] = self.note
        if self.added_by:
            out["added_by"] = self.added_by
        if self.added_at:
            out["added_at"] = self.added_at
        return out


def _clean(term: Any) -> str:
    return unicodedata.normalize("NFC", str(term)).strip()


def _slug(terms: Mapping[str, str]) -> str:
    base = terms.get("en", "")
    slug = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")
    if slug:
        return slug
    digest = hashlib.sha256("|".join(f"{k}={terms[k]}" for k in sorted(terms)).encode()).hexdigest()
    return "term-" + digest[:10]


def entry_from_mapping(raw: Mapping[str, Any], origin: str) -> GlossaryEntry:
    """Build an entry from a YAML/CSV row; raise `GlossaryTermInvalid` when it is unusable."""
    terms = {lang: _clean(raw[lang]) for lang in LANGUAGES if raw.get(lang) not in (None, "")}
    if len(terms) < 2 or any(len(t) > MAX_TERM_CHARS or "\n" in t or not t for t in terms.values()):
        raise GlossaryTermInvalid(max=MAX_TERM_CHARS)
    variants_raw = raw.get("variants") or {}
    variants = {
        lang: tuple(_clean(v) for v in values if _clean(v))
        for lang, values in variants_raw.items()
        if lang in LANGUAGES and values
    }
    return GlossaryEntry(
        id=str(raw.get("id") or _slug(terms)),
        terms=terms,
        variants=variants,
        no_match=frozenset(raw.get("no_match") or ()),
        review=frozenset(raw.get("review") or ()),
        sources=tuple(raw.get("sources") or ()),
        note=str(raw.get("note") or ""),
        origin=origin,
        added_by=str(raw.get("added_by") or ""),
        added_at=str(raw.get("added_at") or ""),
    )


class Glossary:
    """All entries, with one compiled matcher per source language."""

    def __init__(
        self, entries: Iterable[GlossaryEntry], version: str, sources: Mapping[str, str] | None = None
    ):
        by_id: dict[str, GlossaryEntry] = {}
        for entry in entries:
            by_id[entry.id] = entry  # later entries (coordinators' own) override built-in ones
        self.entries: tuple[GlossaryEntry, ...] = tuple(by_id.values())
        self.version = version
        self.sources = dict(sources or {})
        self._matchers: dict[str, tuple[re.Pattern[str] | None, dict[str, GlossaryEntry]]] = {}
        for lang in LANGUAGES:
            self._matchers[lang] = self._compile(lang)

    def _compile(self, lang: str) -> tuple[re.Pattern[str] | None, dict[str, GlossaryEntry]]:
        lookup: dict[str, GlossaryEntry] = {}
        for entry in self.entries:
            for form in entry.forms(lang):
                lookup.setdefault(form.casefold(), entry)
        if not lookup:
            return None, lookup
        alternatives = "|".join(re.escape(f) for f in sorted(lookup, key=len, reverse=True))
        if lang in _SUBSTRING_LANGS:
            pattern = re.compile(f"(?:{alternatives})", re.IGNORECASE)
        else:
            pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
        return pattern, lookup

    def find(self, text: str, source: str, targets: Sequence[str]) -> list[Span]:
        """Return glossary spans in `text` whose entry has a term in every target language."""
        pattern, lookup = self._matchers.get(source, (None, {}))
        if pattern is None:
            return []
        spans = []
        for m in pattern.finditer(text):
            entry = lookup.get(m.group().casefold())
            if entry is None or any(t not in entry.terms for t in targets if t != source):
                continue
            spans.append(Span(m.start(), m.end(), m.group(), "glossary", entry.terms))
        return spans

    def __len__(self) -> int:
        return len(self.entries)


def builtin_path() -> Path:
    """Return the curated glossary shipped with the bot."""
    return Path(__file__).with_name("glossary.yaml")


def local_path(data_dir: Path) -> Path:
    """Return the file holding the terms coordinators added."""
    return data_dir / LOCAL_FILE


def _read_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if isinstance(data, list):
        data = {"terms": data}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with a 'terms' list")
    return data


def load_glossary(data_dir: Path | None) -> Glossary:
    """Load the curated glossary and, when `data_dir` has one, the coordinators' terms."""
    builtin = _read_yaml(builtin_path())
    entries = [entry_from_mapping(raw, "builtin") for raw in builtin.get("terms", [])]
    version = str(builtin.get("version", "0"))
    if data_dir is not None and local_path(data_dir).exists():
        local = _read_yaml(local_path(data_dir))
        local_entries = []
        for raw in local.get("terms", []):
            try:
                local_entries.append(entry_from_mapping(raw, "local"))
            except GlossaryTermInvalid:
                logger.warning("skipping an unusable entry in %s: %r", local_path(data_dir), raw)
        entries += local_entries
        version = f"{version}+local.{local.get('revision', len(local_entries))}"
    return Glossary(entries, version, builtin.get("sources"))


class GlossaryStore:
    """Gives the translator the current glossary, reloading when coordinators changed their file."""

    def __init__(self, data_dir: Path | None) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._stamp: float | None = None
        self._glossary: Glossary | None = None

    def _local_stamp(self) -> float | None:
        if self.data_dir is None:
            return None
        try:
            return local_path(self.data_dir).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def current(self) -> Glossary:
        """Return the glossary, reloaded if the coordinators' file changed since the last call."""
        stamp = self._local_stamp()
        with self._lock:
            if self._glossary is None or stamp != self._stamp:
                try:
                    self._glossary = load_glossary(self.data_dir)
                except (OSError, ValueError, yaml.YAMLError):
                    logger.exception("glossary could not be loaded; keeping the previous one")
                    if self._glossary is None:
                        self._glossary = Glossary([], "empty")
                self._stamp = stamp
                logger.info("glossary %s loaded: %d entries", self._glossary.version, len(self._glossary))
            return self._glossary


_write_lock = threading.Lock()


def _merge_into_local(data_dir: Path, new_entries: Sequence[GlossaryEntry]) -> tuple[int, int]:
    """Add or update entries in the local file (matched by id or a shared term); return (added, updated)."""
    path = local_path(data_dir)
    with _write_lock:
        data = _read_yaml(path) if path.exists() else {"terms": []}
        current = [entry_from_mapping(raw, "local") for raw in data.get("terms", [])]
        added = updated = 0
        for new in new_entries:
            match = None
            for i, old in enumerate(current):
                shared = any(
                    old.terms.get(lang, "").casefold() == term.casefold() for lang, term in new.terms.items()
                )
                if old.id == new.id or shared:
                    match = i
                    break
            if match is None:
                current.append(new)
                added += 1
            else:
                old = current[match]
                merged_terms = {**old.terms, **new.terms}
                current[match] = GlossaryEntry(
                    id=old.id,
                    terms=merged_terms,
                    variants={**old.variants, **new.variants},
                    no_match=old.no_match | new.no_match,
                    note=new.note or old.note,
                    origin="local",
                    added_by=new.added_by or old.added_by,
                    added_at=new.added_at or old.added_at,
                )
                updated += 1
        revision = int(data.get("revision", 0)) + 1
        body = {
            "revision": revision,
            "terms": [e.to_yaml() for e in current],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".glossary-", suffix=".yaml", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(
                "# Terms added by coordinators (/glossary add, liaison glossary import). Edited by the bot.\n"
            )
            yaml.safe_dump(body, fh, allow_unicode=True, sort_keys=False)
        os.replace(tmp, path)
        return added, updated


def add_term(
    data_dir: Path,
    terms: Mapping[str, str],
    *,
    added_by: str | int | None = None,
    note: str = "",
) -> GlossaryEntry:
    """Add (or complete) a coordinator's term, e.g. `{"zh": "穿山甲", "vi": "tê tê"}`; return the entry."""
    raw: dict[str, Any] = {lang: terms.get(lang) for lang in LANGUAGES}
    raw["note"] = note
    raw["added_by"] = "" if added_by is None else str(added_by)
    raw["added_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    entry = entry_from_mapping(raw, "local")
    _merge_into_local(data_dir, [entry])
    glossary = load_glossary(data_dir)
    for stored in glossary.entries:
        if stored.origin == "local" and any(stored.terms.get(k) == v for k, v in entry.terms.items()):
            return stored
    return entry  # pragma: no cover - the merge always stores it


def read_import_file(path: Path) -> list[GlossaryEntry]:
    """Read a YAML (same layout as glossary.yaml) or CSV file (header: zh,lo,vi,en[,note]) of terms."""
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
    else:
        rows = _read_yaml(path).get("terms", [])
    entries = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            raise ValueError(f"{path}: entry {number} is not a mapping")
        try:
            entries.append(entry_from_mapping({k.strip(): v for k, v in row.items() if k}, "local"))
        except GlossaryTermInvalid as exc:
            raise ValueError(f"{path}: entry {number}: {exc}") from None
    return entries


def import_terms(data_dir: Path, path: Path, *, added_by: str = "cli") -> tuple[int, int]:
    """Import a file of terms into the coordinators' glossary; return (added, updated)."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    entries = [
        GlossaryEntry(
            id=e.id,
            terms=e.terms,
            variants=e.variants,
            no_match=e.no_match,
            note=e.note,
            origin="local",
            added_by=e.added_by or added_by,
            added_at=e.added_at or stamp,
        )
        for e in read_import_file(path)
    ]
    return _merge_into_local(data_dir, entries)
