"""`liaison run`, `liaison db ...`, `liaison invite create`, `liaison officers list|revoke`."""

from __future__ import annotations

import argparse
import json
import logging

from bot import migrate, vetting
from bot.config import Settings
from bot.core import Core
from bot.translation.base import PassThroughTranslator

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the foundation's subcommands."""
    p = sub.add_parser("run", help="run the bot (long polling)")
    p.set_defaults(func=cmd_run)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", metavar="ACTION")
    db.required = True
    db.add_parser("upgrade", help="apply migrations up to the newest").set_defaults(func=cmd_db_upgrade)
    db.add_parser("current", help="show the database's revision").set_defaults(func=cmd_db_current)
    p = db.add_parser("downgrade", help="revert migrations down to REVISION ('base' = empty)")
    p.add_argument("revision")
    p.set_defaults(func=cmd_db_downgrade)
    p = db.add_parser("revision", help="(developers) autogenerate a migration from the models")
    p.add_argument("-m", "--message", required=True)
    p.set_defaults(func=cmd_db_revision)

    inv = sub.add_parser("invite", help="invite codes").add_subparsers(dest="invite_command", metavar="ACTION")
    inv.required = True
    p = inv.add_parser("create", help="create a one-time invite code")
    p.add_argument("--role", required=True, choices=["officer", "coordinator", "auditor", "admin"])
    p.add_argument("--country", type=str.upper, choices=["CN", "LA", "VN"])
    p.add_argument("--agency")
    p.add_argument("--lang", choices=["zh", "lo", "vi", "en"])
    p.add_argument("--expires", default="72h", help="lifetime, e.g. 30m, 72h, 7d (at most 30 days)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_invite_create)

    off = sub.add_parser("officers", help="registered officers").add_subparsers(dest="officers_command",
                                                                                metavar="ACTION")
    off.required = True
    p = off.add_parser("list", help="list officers")
    p.add_argument("--all", action="store_true", help="include revoked officers")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_officers_list)
    p = off.add_parser("revoke", help="revoke an officer (@username, Telegram id or id:N)")
    p.add_argument("officer")
    p.add_argument("--reason")
    p.set_defaults(func=cmd_officers_revoke)


def open_core(settings: Settings) -> Core:
    """Return the services for a CLI command, on a database that is up to date."""
    from bot.app import check_schema

    core = Core.build(settings, translator=PassThroughTranslator())
    try:
        check_schema(core)
    except Exception:
        core.close()
        raise
    return core


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the bot."""
    from bot.app import run_polling
    from bot.config import require_token

    require_token(settings)
    run_polling(settings)
    return 0


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    """Apply all migrations."""
    from bot.cli import out

    migrate.upgrade(settings.database_url)
    out(f"database at revision {migrate.current(settings.database_url)} (head)")
    return 0


def cmd_db_current(args: argparse.Namespace, settings: Settings) -> int:
    """Print the current revision and whether it is the newest."""
    from bot.cli import out

    current, head = migrate.current(settings.database_url), migrate.head()
    out(f"{current or 'none'}{' (head)' if current == head else f' (head is {head}: run liaison db upgrade)'}")
    return 0


def cmd_db_downgrade(args: argparse.Namespace, settings: Settings) -> int:
    """Revert migrations."""
    from bot.cli import out

    migrate.downgrade(settings.database_url, args.revision)
    out(f"database at revision {migrate.current(settings.database_url) or 'none'}")
    return 0


def cmd_db_revision(args: argparse.Namespace, settings: Settings) -> int:
    """Autogenerate a migration."""
    migrate.revision(settings.database_url, args.message)
    return 0


def bot_username(core: Core) -> str | None:
    """Return the bot's username: setting, then what the running bot stored, then getMe."""
    if core.settings.bot_username:
        return core.settings.bot_username
    stored = vetting.recall(core, "bot_username")
    if stored:
        return stored
    if core.settings.telegram_token is None:
        return None
    import asyncio

    from telegram import Bot
    from telegram.error import TelegramError

    async def get_me() -> str | None:
        api = core.settings.telegram_api_url
        bot = Bot(core.settings.telegram_token.get(), base_url=f"{api}/bot",  # type: ignore[union-attr]
                  base_file_url=f"{api}/file/bot")
        async with bot:
            return bot.username

    try:
        return asyncio.run(get_me())
    except (TelegramError, OSError) as exc:
        logger.warning("could not ask Telegram for the bot's username: %s", type(exc).__name__)
        return None


def cmd_invite_create(args: argparse.Namespace, settings: Settings) -> int:
    """Create an invite as the server's administrator."""
    from bot.cli import out

    core = open_core(settings)
    try:
        created = vetting.create_invite(
            core, None, role=args.role, country=args.country, agency=args.agency, language=args.lang,
            lifetime=vetting.parse_duration(args.expires),
        )
        link = created.link(bot_username(core))
    finally:
        core.close()
    if args.json:
        out(json.dumps({"code": created.code, "link": link, "role": created.role, "country": created.country,
                        "agency": created.agency, "language": created.language,
                        "expires_at": created.expires_at.isoformat()}, ensure_ascii=False))
    else:
        out(f"code:    {created.code}")
        out(f"link:    {link or '(unknown bot username: set LIAISON_BOT_USERNAME or run the bot once)'}")
        out(f"role:    {created.role}  country: {created.country or '-'}  agency: {created.agency or '-'}  "
            f"language: {created.language}")
        out(f"expires: {created.expires_at.isoformat()}")
    return 0


def cmd_officers_list(args: argparse.Namespace, settings: Settings) -> int:
    """List officers."""
    from bot.cli import out

    core = open_core(settings)
    try:
        rows = vetting.list_officers(core, None, include_revoked=args.all)
    finally:
        core.close()
    if args.json:
        for o in rows:
            out(json.dumps({"id": o.id, "telegram_id": o.telegram_id, "username": o.username,
                            "name": o.display_name, "role": o.role, "country": o.country,
                            "agency": o.agency_name, "language": o.language,
                            "status": "active" if o.active else "revoked"}, ensure_ascii=False))
        return 0
    if not rows:
        out("no officers")
    for o in rows:
        out(f"{o.id:>5}  {o.telegram_id:>12}  {o.role:<11} {o.country or '--'}  {o.language}  "
            f"{'active ' if o.active else 'revoked'}  {o.display_name}"
            f"{' @' + o.username if o.username else ''}  {o.agency_name or ''}")
    return 0


def cmd_officers_revoke(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke an officer."""
    from bot.cli import out

    core = open_core(settings)
    try:
        info = vetting.revoke(core, None, args.officer, args.reason)
    finally:
        core.close()
    out(f"revoked: {info.display_name} (telegram id {info.telegram_id})")
    return 0
