"""Reading meetings and action items from a CSV or YAML file, with the line number of every problem.

CSV: one row per action item; the columns `meeting`, `date`, `item`, `owners`, `due` are required, `place`,
`coordinator`, `participants`, `language`, `case` optional. Rows with the same meeting title, date and
coordinator form one meeting. YAML: a list of meetings (or `meetings:` holding one), each with `title`,
`date`, optional `place`, `coordinator`, `participants`, `language`, and `items`: a list of `text`, `owners`
(a list or a space-separated string), `due`, optional `case`. The README has complete examples.

The import is all or nothing: every problem of the file is reported, and nothing is recorded unless
there is none.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from bot import meetings
from bot.core import Core
from bot.meetings import RecordedMeeting
from bot.officers import OfficerInfo

CSV_REQUIRED = ("meeting", "date", "item", "owners", "due")
CSV_OPTIONAL = ("place", "coordinator", "participants", "language", "case")
MEETING_FIELDS = ("title", "date", "place", "coordinator", "participants", "language", "items")
ITEM_FIELDS = ("text", "owners", "due", "case")
MAX_FILE_BYTES = 5_000_000


@dataclass(frozen=True)
class ImportProblem:
    """One thing wrong with the file, and where."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class ImportFailed(Exception):
    """The file has problems; nothing was recorded."""

    def __init__(self, path: str, problems: Sequence[ImportProblem]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) in {path}; nothing was imported")


@dataclass(frozen=True)
class ImportResult:
    """What an import recorded (or would record, for a dry run)."""

    meetings: int
    items: int
    recorded: tuple[RecordedMeeting, ...]


def detect_format(path: Path, fmt: str | None) -> str:
    """Return 'csv' or 'yaml' from the option or the file's extension."""
    if fmt:
        return fmt.lower()
    return "csv" if path.suffix.lower() in (".csv", ".tsv", ".txt") else "yaml"


def read_drafts(
    path: Path, fmt: str | None = None
) -> tuple[list[meetings.MeetingDraft], list[ImportProblem]]:
    """Parse a file into meeting drafts (not yet checked against the database)."""
    if path.stat().st_size > MAX_FILE_BYTES:
        return [], [ImportProblem(None, f"the file is larger than {MAX_FILE_BYTES // 1_000_000} MB")]
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [ImportProblem(None, f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})")]
    if detect_format(path, fmt) == "csv":
        return parse_csv(content)
    return parse_yaml(content)


# --- CSV ---------------------------------------------------------------------------------------------
def parse_csv(content: str) -> tuple[list[meetings.MeetingDraft], list[ImportProblem]]:
    """Parse CSV rows (comma, semicolon or tab separated) into drafts, one row per item."""
    problems: list[ImportProblem] = []
    sample = content[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample.splitlines()[0] if sample else ",", delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(content), dialect)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return [], [ImportProblem(None, "the file is empty")]
    missing = [c for c in CSV_REQUIRED if c not in header]
    unknown = [c for c in header if c and c not in CSV_REQUIRED + CSV_OPTIONAL]
    if missing:
        problems.append(ImportProblem(1, f"missing column(s): {', '.join(missing)}"))
    if unknown:
        problems.append(
            ImportProblem(
                1,
                f"unknown column(s): {', '.join(unknown)} (known: {', '.join(CSV_REQUIRED + CSV_OPTIONAL)})",
            )
        )
    if missing:
        return [], problems
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    line = reader.line_num + 1
    for row in reader:
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            problems.append(ImportProblem(start, f"{len(row)} cells but only {len(header)} columns"))
            continue
        cells = {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(header)}
        key = (
            " ".join(cells["meeting"].lower().split()),
            cells["date"],
            cells.get("coordinator", "").lower(),
        )
        group = groups.setdefault(key, {"line": start, "fields": {}, "items": []})
        for name in ("place", "participants", "language"):
            value = cells.get(name, "")
            if not value:
                continue
            first = group["fields"].setdefault(name, (value, start))
            if first[0] != value:
                problems.append(
                    ImportProblem(
                        start,
                        f"{name} {value!r} differs from line {first[1]} of the same meeting ({first[0]!r})",
                    )
                )
        group.setdefault("cells", cells)
        group["items"].append(
            meetings.ItemDraft(
                text=cells["item"],
                owners=tuple(meetings.split_owner_refs(cells["owners"])),
                due=cells["due"],
                case_tag=cells.get("case") or None,
                line=start,
            )
        )
    drafts = []
    for group in groups.values():
        cells, fields = group["cells"], group["fields"]
        drafts.append(
            meetings.MeetingDraft(
                title=cells["meeting"],
                held_on=cells["date"],
                place=fields.get("place", ("",))[0] or None,
                participants=fields.get("participants", ("",))[0] or None,
                coordinator=cells.get("coordinator") or None,
                language=fields.get("language", ("",))[0] or None,
                items=tuple(group["items"]),
                line=group["line"],
            )
        )
    return drafts, problems


# --- YAML --------------------------------------------------------------------------------------------
class _Mapping(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers its line and the line of each key."""

    line: int = 0
    lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings know where they are in the file."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        """Build the mapping and note line numbers (1-based)."""
        mapping = _Mapping(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.lines = {str(k.value): v.start_mark.line + 1 for k, v in node.value}
        return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping)


def parse_yaml(content: str) -> tuple[list[meetings.MeetingDraft], list[ImportProblem]]:
    """Parse YAML meetings into drafts."""
    try:
        doc = yaml.load(content, Loader=_LineLoader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return [], [
            ImportProblem(mark.line + 1 if mark else None, f"not valid YAML: {getattr(exc, 'problem', exc)}")
        ]
    if isinstance(doc, dict) and "meetings" in doc:
        doc = doc["meetings"]
    if not isinstance(doc, list):
        return [], [ImportProblem(1, "expected a list of meetings (or 'meetings:' holding one)")]
    drafts: list[meetings.MeetingDraft] = []
    problems: list[ImportProblem] = []
    for entry in doc:
        if not isinstance(entry, _Mapping):
            problems.append(ImportProblem(None, "each meeting must be a mapping with title, date and items"))
            continue
        for key in entry:
            if key not in MEETING_FIELDS:
                problems.append(
                    ImportProblem(
                        entry.lines.get(str(key), entry.line),
                        f"unknown field {key!r} (known: {', '.join(MEETING_FIELDS)})",
                    )
                )
        items = entry.get("items") or []
        if not isinstance(items, list):
            problems.append(ImportProblem(entry.lines.get("items", entry.line), "items must be a list"))
            items = []
        item_drafts = []
        for item in items:
            if not isinstance(item, _Mapping):
                problems.append(
                    ImportProblem(
                        entry.lines.get("items", entry.line),
                        "each item must be a mapping with text, owners and due",
                    )
                )
                continue
            for key in item:
                if key not in ITEM_FIELDS:
                    problems.append(
                        ImportProblem(
                            item.lines.get(str(key), item.line),
                            f"unknown field {key!r} (known: {', '.join(ITEM_FIELDS)})",
                        )
                    )
            owners = item.get("owners") or ()
            owners = [str(o) for o in owners] if isinstance(owners, list) else [str(owners)]
            item_drafts.append(
                meetings.ItemDraft(
                    text=_text(item.get("text")),
                    owners=tuple(meetings.split_owner_refs(owners)),
                    due=_when(item.get("due")),
                    case_tag=_text(item.get("case")) or None,
                    line=item.line,
                    lines=dict(item.lines),
                )
            )
        drafts.append(
            meetings.MeetingDraft(
                title=_text(entry.get("title")),
                held_on=_when(entry.get("date")),
                place=_text(entry.get("place")) or None,
                participants=_participants(entry.get("participants")),
                coordinator=_text(entry.get("coordinator")) or None,
                language=_text(entry.get("language")) or None,
                items=tuple(item_drafts),
                line=entry.line,
                lines=dict(entry.lines),
            )
        )
    return drafts, problems


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _when(value: Any) -> str | date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return _text(value)


def _participants(value: Any) -> str | None:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value) or None
    return _text(value) or None


# --- the import ----------------------------------------------------------------------------------------
def import_file(
    core: Core,
    actor: OfficerInfo | None,
    path: Path,
    *,
    fmt: str | None = None,
    coordinator: str | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Check a whole file and record it all or nothing; raise ImportFailed listing every problem."""
    drafts, problems = read_drafts(path, fmt)
    if coordinator:
        drafts = [d if d.coordinator else _with_coordinator(d, coordinator) for d in drafts]
    if not drafts and not problems:
        problems.append(ImportProblem(None, "the file holds no meetings"))
    _valid, found = meetings.check_meetings(core, actor, drafts)
    problems += [ImportProblem(p.line, p.english()) for p in found]
    if problems:
        raise ImportFailed(str(path), sorted(problems, key=lambda p: p.line or 0))
    n_items = sum(len(d.items) for d in drafts)
    if dry_run:
        return ImportResult(len(drafts), n_items, ())
    recorded = meetings.record_meetings(core, actor, drafts, source="import")
    return ImportResult(len(recorded), n_items, tuple(recorded))


def _with_coordinator(draft: meetings.MeetingDraft, coordinator: str) -> meetings.MeetingDraft:
    from dataclasses import replace

    return replace(draft, coordinator=coordinator)
