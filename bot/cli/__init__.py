"""The `liaison` command line: each area's module registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from bot import __version__
from bot.config import ConfigError, Settings, load_settings
from bot.crypto import DataKeyError
from bot.errors import LiaisonError
from bot.logs import configure_logging

#: Modules with a `register(subparsers)` function; each subcommand sets `func(args, settings) -> int`.
AREAS = (
    "bot.cli.core",
    "bot.cli.models",
    "bot.cli.audit",
    "bot.cli.meetings",
    "bot.cli.broadcast",
    "bot.cli.sandbox",
)

logger = logging.getLogger(__name__)


class UserError(Exception):
    """A mistake on the command line: shown as one line, exit status 2."""


def out(text: str = "") -> None:
    """Write one line of command output to standard output."""
    sys.stdout.write(text + "\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every area's subcommands."""
    parser = argparse.ArgumentParser(prog="liaison", description="Liaison: multilingual liaison bot.")
    parser.add_argument("--version", action="version", version=f"liaison {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML file with settings (env vars override it)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in AREAS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `liaison` command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        settings: Settings = load_settings(args.config)
        configure_logging(settings)
        return int(args.func(args, settings) or 0)
    except (ConfigError, DataKeyError, LiaisonError, UserError) as exc:
        sys.stderr.write(f"liaison: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
