"""`liaison meetings import|list|show|done|item|timezone`: joint meetings and action items from the server."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot import meetings, meetings_import
from bot.config import Settings
from bot.core import Core


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the meetings subcommands."""
    m = sub.add_parser("meetings", help="joint meetings and their action items").add_subparsers(
        dest="meetings_command", metavar="ACTION"
    )
    m.required = True
    p = m.add_parser(
        "import",
        help="record meetings and action items from a CSV or YAML file (all or nothing)",
        description="Formats are documented in the README (section Meetings). Every problem is "
        "reported with its line number; nothing is recorded unless there is none.",
    )
    p.add_argument("file", type=Path)
    p.add_argument("--format", choices=["csv", "yaml"], help="default: from the file's extension")
    p.add_argument("--coordinator", help="@username of the coordinator for meetings that name none")
    p.add_argument("--dry-run", action="store_true", help="check the file, record nothing")
    p.add_argument(
        "--no-translate",
        action="store_true",
        help="store texts untranslated (owners get the original with a note)",
    )
    p.set_defaults(func=cmd_import)
    p = m.add_parser("list", help="list meetings with counts of open, overdue and completed items")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = m.add_parser("show", help="show a meeting's action items")
    p.add_argument("meeting", type=int)
    p.add_argument("--lang", default="en", choices=["zh", "lo", "vi", "en"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)
    p = m.add_parser("done", help="mark an action item as done")
    p.add_argument("item", type=int)
    p.set_defaults(func=cmd_done)
    p = m.add_parser("item", help="move an item's due date, reassign it, or cancel it")
    p.add_argument("item", type=int)
    p.add_argument("--due", help="new due date, e.g. 30/09/2026")
    p.add_argument("--owners", nargs="+", metavar="@USER", help="the new owners (replace the current ones)")
    p.add_argument("--cancel", action="store_true")
    p.set_defaults(func=cmd_item)
    p = m.add_parser("timezone", help="set an officer's own time zone for reminders ('-' = their country's)")
    p.add_argument("officer", help="@username, Telegram id or id:N")
    p.add_argument("timezone", help="e.g. Asia/Vientiane, Asia/Ho_Chi_Minh, Asia/Shanghai, or -")
    p.set_defaults(func=cmd_timezone)


def _open(settings: Settings, *, translate: bool = False) -> Core:
    """Open the services; the real translator only when texts will be recorded."""
    from bot.app import check_schema
    from bot.cli.core import open_core

    if not translate:
        return open_core(settings)
    core = Core.build(settings)
    try:
        check_schema(core)
    except Exception:
        core.close()
        raise
    return core


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """Import a file; print each problem as FILE:LINE: message."""
    from bot.cli import UserError, out

    if not args.file.is_file():
        raise UserError(f"no such file: {args.file}")
    core = _open(settings, translate=not (args.dry_run or args.no_translate))
    try:
        result = meetings_import.import_file(
            core, None, args.file, fmt=args.format, coordinator=args.coordinator, dry_run=args.dry_run
        )
    except meetings_import.ImportFailed as exc:
        lines = [
            f"{args.file}:{p.line}: {p.message}" if p.line else f"{args.file}: {p.message}"
            for p in exc.problems
        ]
        raise UserError("\n".join([str(exc), *lines])) from None
    finally:
        core.close()
    if args.dry_run:
        out(
            f"{args.file}: OK, {result.meetings} meeting(s) with {result.items} action item(s) would be recorded"
        )
        return 0
    for meeting in result.recorded:
        out(
            f"meeting #{meeting.id}: {meeting.title} ({meeting.held_on.isoformat()}), coordinator {meeting.coordinator}"
        )
        for item in meeting.items:
            out(
                f"  item #{item.id}: due {item.due_on.isoformat()}  {', '.join(item.owners)}"
                f"{'  [' + item.case_tag + ']' if item.case_tag else ''}  {item.text}"
            )
    out(
        f"imported {result.meetings} meeting(s) with {result.items} action item(s); owners will be told at the "
        "bot's next tick"
    )
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    """List meetings."""
    from bot.cli import out

    core = _open(settings)
    try:
        rows = meetings.list_meetings(core, None)
    finally:
        core.close()
    if args.json:
        for r in rows:
            out(
                json.dumps(
                    {
                        "id": r.id,
                        "title": r.title,
                        "held_on": r.held_on.isoformat(),
                        "place": r.place,
                        "coordinator": r.coordinator,
                        "open": r.open,
                        "overdue": r.overdue,
                        "done": r.done,
                        "cancelled": r.cancelled,
                    },
                    ensure_ascii=False,
                )
            )
        return 0
    if not rows:
        out("no meetings")
    for r in rows:
        out(
            f"{r.id:>5}  {r.held_on.isoformat()}  open {r.open:>3}  overdue {r.overdue:>3}  done {r.done:>3}  "
            f"{r.title}  ({r.coordinator})"
        )
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    """Show one meeting's items."""
    from bot.cli import out

    core = _open(settings)
    try:
        items = meetings.meeting_items(core, None, args.meeting, lang=args.lang)
    finally:
        core.close()
    for i in items:
        if args.json:
            out(
                json.dumps(
                    {
                        "id": i.id,
                        "text": i.text,
                        "due_on": i.due_on.isoformat(),
                        "status": i.status,
                        "overdue": i.overdue,
                        "case": i.case_tag,
                        "owners": list(i.owners),
                    },
                    ensure_ascii=False,
                )
            )
        else:
            flag = "OVERDUE" if i.overdue else i.status
            out(
                f"{i.id:>6}  {i.due_on.isoformat()}  {flag:<9} {', '.join(i.owners) or '(no active owner)'}"
                f"{'  [' + i.case_tag + ']' if i.case_tag else ''}\n        {i.text}"
            )
    return 0


def cmd_done(args: argparse.Namespace, settings: Settings) -> int:
    """Close an item from the server."""
    from bot.cli import out

    core = _open(settings)
    try:
        view = meetings.complete(core, None, args.item)
    finally:
        core.close()
    out(f"item #{view.id} is done")
    return 0


def cmd_item(args: argparse.Namespace, settings: Settings) -> int:
    """Change an item."""
    from bot.cli import UserError, out

    if not (args.due or args.owners or args.cancel):
        raise UserError("say what to change: --due DATE, --owners @a @b, or --cancel")
    core = _open(settings, translate=bool(args.owners))
    try:
        view = meetings.change_item(
            core, None, args.item, due=args.due, owners=args.owners, cancel=args.cancel
        )
    finally:
        core.close()
    out(
        f"item #{view.id}: {view.status}, due {view.due_on.isoformat()}, owners {', '.join(view.owners) or '-'}"
    )
    return 0


def cmd_timezone(args: argparse.Namespace, settings: Settings) -> int:
    """Set an officer's time zone."""
    from bot.cli import out

    core = _open(settings)
    try:
        info = meetings.set_timezone(core, None, args.officer, args.timezone)
    finally:
        core.close()
    out(f"{info.display_name}: reminders at {settings.reminder_hour:02d}:00 {info.timezone}")
    return 0
