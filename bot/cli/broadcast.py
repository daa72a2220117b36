"""`liaison broadcast --scope … --text …` (preview, confirm, enqueue) and `liaison broadcast status ID`.

The CLI only writes the database: the running bot's delivery worker sends the copies (within
Telegram's limits) and its scheduler does the urgent re-sends.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot import broadcasts
from bot.cli import UserError, out
from bot.config import Settings
from bot.core import Core
from bot.i18n import LANGUAGES
from bot.models import COUNTRY_FLAG

LANGUAGE_LABELS = {"zh": "Chinese", "lo": "Lao", "vi": "Vietnamese", "en": "English"}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `liaison broadcast`."""
    p = sub.add_parser(
        "broadcast", help="send an alert to officers (preview, then confirm), or show a broadcast's status",
        description="Send: liaison broadcast --scope SCOPE --text TEXT [--priority urgent] [--yes]. "
                    "Status: liaison broadcast status ID. Scopes: all, country:VN, country:LA,VN, "
                    "agency:\"Customs\", case:CN-VN-2026-0042, country:VN+case:TAG (+ = or), "
                    "country:VN&agency:Customs (& = and).")
    p.add_argument("action", nargs="*", metavar="status ID", help="show a broadcast's deliveries and acknowledgments")
    p.add_argument("--scope", help="who receives it (see above)")
    p.add_argument("--text", help="the alert's text")
    p.add_argument("--text-file", type=Path, help="read the alert's text from a UTF-8 file")
    p.add_argument("--priority", choices=broadcasts.PRIORITIES, default="normal",
                   help="urgent alerts are re-sent to non-acknowledgers (at most twice)")
    p.add_argument("--lang", choices=LANGUAGES, default="en", help="language the text is written in (default en)")
    p.add_argument("--yes", action="store_true", help="send without asking for confirmation")
    p.set_defaults(func=cmd_broadcast)


def open_core(settings: Settings) -> Core:
    """Return the services with the installed translation engines, on an up-to-date database."""
    from bot.app import check_schema

    core = Core.build(settings)
    try:
        check_schema(core)
    except Exception:
        core.close()
        raise
    return core


def cmd_broadcast(args: argparse.Namespace, settings: Settings) -> int:
    """Send an alert, or show a broadcast's status."""
    if args.action:
        if len(args.action) != 2 or args.action[0] != "status" or not args.action[1].lstrip("#").isdigit():
            raise UserError("usage: liaison broadcast status ID")
        core = open_core(settings)
        try:
            return show_status(core, int(args.action[1].lstrip("#")))
        finally:
            core.close()
    if not args.scope or (args.text is None and args.text_file is None):
        raise UserError("give --scope and --text (or --text-file); see liaison broadcast --help")
    text = args.text if args.text is not None else args.text_file.read_text(encoding="utf-8")
    core = open_core(settings)
    try:
        return send(core, args.scope, text, args.priority, args.lang, args.yes)
    finally:
        core.close()


def send(core: Core, scope: str, text: str, priority: str, lang: str, yes: bool) -> int:
    """Draft, print the preview, ask (unless --yes), then confirm: the bot's worker delivers."""
    preview = broadcasts.draft(core, None, scope, text, priority=priority, source_lang=lang)
    out(f"Broadcast #{preview.id} ({preview.priority}) to {preview.scope}: {preview.total} officers")
    for country, count in sorted(preview.by_country.items(), key=lambda kv: kv[0] or "~"):
        out(f"  {COUNTRY_FLAG.get(country or '', '')} {country or 'no country'}: {count}")
    for code, body in preview.texts.items():
        note = "  (NOT TRANSLATED: the original is sent)" if code in preview.untranslated else ""
        out("")
        out(f"--- {LANGUAGE_LABELS.get(code, code)} [{code}]{note}")
        out(body)
    out("")
    if not yes:
        sys.stdout.write(f"Send broadcast #{preview.id} to {preview.total} officers? [y/N] ")
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            broadcasts.cancel(core, None, preview.id)
            out(f"Broadcast #{preview.id} cancelled; nothing was sent.")
            return 1
    result = broadcasts.confirm(core, None, preview.id)
    if result.already:
        out(f"Broadcast #{result.id} was already {result.status}; nothing more was sent.")
        return 1
    out(f"Broadcast #{result.id} queued for {result.queued} officers; the running bot delivers it.")
    out(f"Follow it with: liaison broadcast status {result.id}")
    return 0


def show_status(core: Core, broadcast_id: int) -> int:
    """Print a broadcast's delivery counts, who acknowledged (UTC times) and who has not."""
    rep = broadcasts.report(core, None, broadcast_id)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(rep.counts.items())) or "nothing queued"
    out(f"Broadcast #{rep.id} ({rep.priority}) to {rep.scope}: {rep.status}; {rep.total} recipients")
    out(f"Copies: {counts}")
    if rep.priority == "urgent":
        out(f"Re-sends done: {rep.resends} of {broadcasts.MAX_RESENDS}")
    out(f"Acknowledged: {len(rep.acked)} of {rep.total}")
    for r in rep.acked:
        out(f"  + {r.officer.display_name} ({r.officer.country or '-'}) at {r.acked_at:%Y-%m-%d %H:%M:%S} UTC")
    if rep.not_acked:
        out("Not acknowledged:")
        for r in rep.not_acked:
            reason = f": {r.reason}" if r.reason else ""
            out(f"  - {r.officer.display_name} ({r.officer.country or '-'}): {r.status}{reason}")
    return 0
