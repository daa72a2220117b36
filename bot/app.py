"""Build the Telegram application: the one function that wires bot, database, translator and scheduler."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import Application, ApplicationBuilder, ContextTypes, Defaults
from telegram.request import BaseRequest, HTTPXRequest

from bot import inbox, migrate, vetting
from bot.config import ConfigError, Settings, require_token
from bot.core import Core

logger = logging.getLogger(__name__)


class SchemaOutOfDate(ConfigError):
    """The database is not at the code's migration head."""


def check_schema(core: Core) -> None:
    """Refuse to start on a database that `liaison db upgrade` has not brought up to date."""
    current, head = migrate.current(core.settings.database_url), migrate.head()
    if current != head:
        raise SchemaOutOfDate(
            f"the database is at revision {current or 'none'} but this version needs {head}: "
            "run `liaison db upgrade`"
        )


def build_application(
    settings: Settings, *, core: Core | None = None, request: BaseRequest | None = None
) -> Application:  # type: ignore[type-arg]
    """Return the application `liaison run` polls with; `core` and `request` may be given (tests, sandbox)."""
    from handlers import register
    from handlers.context import BotContext
    from handlers.inbox import InboxRequest
    from handlers.ratelimit import SharedRateLimiter

    token = require_token(settings).get()
    api = settings.telegram_api_url
    builder = ApplicationBuilder()
    if request is not None:
        fetching = InboxRequest(request)
        builder = builder.request(request).get_updates_request(fetching)
    else:
        # Weak mobile links at border posts mean slow Bot API answers; be patient before retrying.
        fetching = InboxRequest(HTTPXRequest(connection_pool_size=1, read_timeout=35))
        builder = builder.connect_timeout(10).read_timeout(20).write_timeout(20).get_updates_request(fetching)
    app = (
        builder.token(token)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .defaults(Defaults(parse_mode=ParseMode.HTML))
        .context_types(ContextTypes(context=BotContext))
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        # Replies and the delivery worker's copies share one limiter (Telegram's per-chat and overall limits).
        .rate_limiter(SharedRateLimiter.for_settings(settings))
        .build()
    )
    app.bot_data["settings"] = settings
    # Fetched updates go to the inbox before python-telegram-bot confirms them to Telegram (bot.inbox).
    fetching.bind(lambda: app.bot_data.get("core"))
    if core is not None:
        app.bot_data["core"] = core
        app.bot_data["owns_core"] = False
    register(app)
    return app


async def _post_init(app: Application) -> None:  # type: ignore[type-arg]
    """Create the services once, learn the bot's username, publish menus, start workers."""
    from handlers.lifecycle import services
    from handlers.menu import publish_default_menus

    if "core" not in app.bot_data:
        # Loading keys, catalogs and translation models blocks: keep it off the event loop.
        app.bot_data["core"] = await asyncio.to_thread(Core.build, app.bot_data["settings"])
        app.bot_data["owns_core"] = True
    core: Core = app.bot_data["core"]
    await asyncio.to_thread(check_schema, core)
    await asyncio.to_thread(vetting.remember, core, "bot_username", app.bot.username)
    await publish_default_menus(app.bot, core.catalogs)
    scheduler = AsyncIOScheduler(timezone="UTC")
    core.extras["scheduler"] = scheduler
    scheduler.add_job(vetting.prune_processed_updates, "interval", hours=6, args=[core],
                      id="prune-updates", coalesce=True, max_instances=1)
    scheduler.add_job(inbox.prune, "interval", hours=1, args=[core], id="prune-inbox", coalesce=True,
                      max_instances=1)
    scheduler.start()
    for service in services(app):
        await service.start(app)
    await _replay_inbox(app, core)
    logger.info("Liaison is running as @%s", app.bot.username)


async def _replay_inbox(app: Application, core: Core) -> None:  # type: ignore[type-arg]
    """Queue the updates fetched before the last stop but never handled (they go before new ones)."""
    replayed = await asyncio.to_thread(inbox.replay, core)
    for data in replayed:
        await app.update_queue.put(Update.de_json(data, app.bot))
    if replayed:
        logger.warning("handling %d updates fetched before the last stop but never handled", len(replayed))
    await asyncio.to_thread(inbox.prune, core)


async def _post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
    """Stop the workers and the scheduler, then release the services if we created them."""
    from handlers.lifecycle import services

    for service in reversed(services(app)):
        try:
            await service.stop()
        except Exception:
            logger.exception("a service failed to stop cleanly")
    core: Core | None = app.bot_data.get("core")
    if core is None:
        return
    scheduler: Any = core.extras.pop("scheduler", None)
    if scheduler is not None and scheduler.running:
        scheduler.shutdown(wait=False)
    if app.bot_data.get("owns_core"):
        core.close()


async def start_application(app: Application, *, polling: bool = True) -> None:  # type: ignore[type-arg]
    """Start an application inside a running event loop (tests, sandbox), as run_polling would."""
    await app.initialize()
    if app.post_init is not None:
        await app.post_init(app)
    await app.start()
    if polling and app.updater is not None:
        await app.updater.start_polling(
            poll_interval=0.0, timeout=10, allowed_updates=Update.ALL_TYPES, drop_pending_updates=False
        )


async def stop_application(app: Application) -> None:  # type: ignore[type-arg]
    """Stop an application started with `start_application`."""
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    if app.post_shutdown is not None:
        await app.post_shutdown(app)
    await app.shutdown()


def run_polling(settings: Settings) -> None:
    """Run the bot until interrupted; pending updates are kept (never dropped) across restarts."""
    app = build_application(settings)
    app.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
