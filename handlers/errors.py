"""One error handler: domain errors become a localized answer; anything else is logged and reported."""

from __future__ import annotations

import asyncio
import html
import logging

from telegram import Update
from telegram.error import TelegramError

from bot import vetting
from bot.errors import LiaisonError
from bot.i18n import N_
from handlers.context import BotContext

logger = logging.getLogger(__name__)

UNEXPECTED = N_("Sorry, something went wrong on our side. What you sent has been kept; please try again.")


async def on_error(update: object, context: BotContext) -> None:
    """Answer the user in their language and tell the admin chat; never let an error stop the bot."""
    error = context.error
    user_id = update.effective_user.id if isinstance(update, Update) and update.effective_user else None
    texts = context.core.catalogs.get(None)
    if user_id is not None:
        officer = await asyncio.to_thread(vetting.active_officer, context.core, user_id)
        lang = officer.language if officer else update.effective_user.language_code  # type: ignore[union-attr]
        texts = context.core.catalogs.get(lang)
    if isinstance(error, LiaisonError):
        reply = texts.error(error)
    else:
        logger.error("unhandled error in a handler", exc_info=error)
        reply = texts(UNEXPECTED)
        if context.settings.admin_chat_id:
            try:
                await context.bot.send_message(
                    context.settings.admin_chat_id,
                    f"Liaison error: <code>{html.escape(type(error).__name__)}: "
                    f"{html.escape(str(error))[:500]}</code>",
                )
            except TelegramError:
                logger.warning("could not report the error to the admin chat")
    if not isinstance(update, Update):
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(texts.plain(error.message, **error.params)
                                               if isinstance(error, LiaisonError) else texts.plain(UNEXPECTED),
                                               show_alert=True)
        elif update.effective_message is not None:
            await update.effective_message.reply_text(reply)
    except TelegramError:
        logger.warning("could not tell the user about an error", exc_info=True)
