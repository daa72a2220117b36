"""`liaison sandbox`: try the whole bot on one machine, in a web page, without Telegram."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from bot.config import Settings

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this area's subcommands to the parser."""
    p = sub.add_parser(
        "sandbox",
        help="local demo: Bot API emulator, the bot and a web page of officers' chats",
        description="Start the Bot API emulator, the real bot against it (SQLite, installed translation "
        "models) and a web page with one chat pane per demo officer; print the page's address. "
        "Ctrl-C stops everything.",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="keep the sandbox's database here (default: a temporary folder removed at exit)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address of the web page (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port of the web page (default 8080; 0 = any free)")
    p.add_argument(
        "--emulator-url",
        metavar="URL",
        help="attach the page to an emulator and bot already running there; start nothing else",
    )
    p.set_defaults(func=cmd_sandbox)


def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    """Run the sandbox until interrupted; the page's address is the only line on standard output."""
    from bot.cli import UserError, out
    from bot.sandbox.runner import SandboxError, SandboxOptions, run

    if not 0 <= args.port <= 65535:
        raise UserError("--port must be between 0 and 65535")
    options = SandboxOptions(
        data_dir=args.data_dir, host=args.host, port=args.port, emulator_url=args.emulator_url
    )
    try:
        asyncio.run(run(settings, options, lambda url: (out(url), sys.stdout.flush())))
    except SandboxError as exc:
        raise UserError(str(exc)) from None
    except (KeyboardInterrupt, UserError):
        raise
    except Exception as exc:  # a failing area must not end a workshop with a bare traceback
        logger.exception("the sandbox stopped on an error")
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(f"the sandbox could not run: {first_line} (details above)") from None
    return 0
