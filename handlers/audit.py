"""Audit: `/export` for auditors and administrators, and the area's lifecycle service (key check at start,
daily retention purge)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import Application, CommandHandler

from bot import exports, keys, retention
from bot.core import Core
from bot.i18n import N_
from handlers import lifecycle
from handlers.context import BotContext

logger = logging.getLogger(__name__)

PREPARING = N_("Preparing the signed export. This can take a minute for a long period…")
READY = N_(
    "Signed audit export: {rows} rows ({messages} messages) and {events} audit events.\n"
    "Signing key: {fingerprint}\nCheck it on a computer with: liaison audit verify-export FILE"
)
UNREADABLE = N_("Warning: {count} texts could not be decrypted; they are marked in the bundle.")
TOO_LARGE = N_(
    "The export is {size} MB, more than the bot may send here ({limit} MB). Ask the administrator to "
    "run on the server: liaison audit export"
)


async def export(update: Update, context: BotContext) -> None:
    """Make a signed bundle of a case or a period and send it to the auditor as a document."""
    message, t, me = update.effective_message, context.texts, context.me
    assert message is not None
    flt = await context.run(exports.chat_request, context.core, me, context.args or [])  # role check, audited
    await message.reply_text(t(PREPARING))
    await context.bot.send_chat_action(message.chat_id, ChatAction.UPLOAD_DOCUMENT)
    result = await context.run(exports.export_for_chat, context.core, me, flt)
    try:
        limit = exports.telegram_limit(context.core)
        if result.size > limit:
            await message.reply_text(t(TOO_LARGE, size=result.size // 2**20, limit=limit // 2**20))
            return
        caption = t(
            READY,
            rows=result.rows,
            messages=result.messages,
            events=result.events,
            fingerprint=result.fingerprint,
        )
        if result.unreadable:
            caption += "\n" + t(UNREADABLE, count=result.unreadable)
        with result.path.open("rb") as fh:
            await message.reply_document(fh, filename=result.path.name, caption=caption)
    finally:
        await context.run(result.path.unlink, True)


class AuditService:
    """Refuses to start when stored data cannot be decrypted; purges old bodies once a day."""

    async def start(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Check the keys against the data, then schedule the retention purge if a period is set."""
        core: Core = app.bot_data["core"]
        await asyncio.to_thread(keys.check_keys, core)
        scheduler = core.extras.get("scheduler")
        if scheduler is not None and core.settings.retention_days is not None:
            scheduler.add_job(
                retention.scheduled_purge,
                "interval",
                hours=24,
                args=[core],
                id="retention-purge",
                coalesce=True,
                max_instances=1,
                next_run_time=datetime.now(UTC) + timedelta(minutes=5),
            )
            logger.info("retention: bodies older than %s days are purged daily", core.settings.retention_days)

    async def stop(self) -> None:
        """Nothing to stop (the scheduler belongs to the application)."""


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Add /export and the audit service."""
    app.add_handler(CommandHandler("export", export))
    lifecycle.add(app, AuditService())
