"""Answers for what no other handler took: unknown commands, unsupported content, stale buttons."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, MessageHandler, filters

from bot.i18n import N_
from handlers.context import BotContext

UNKNOWN_COMMAND = N_("I do not know that command. Send /help to see what you can do.")
UNSUPPORTED = N_("I cannot relay this kind of message. Send text, photos, documents, voice, video, locations or contacts.")
STALE_BUTTON = N_("This button is no longer active.")


async def unknown_command(update: Update, context: BotContext) -> None:
    """Point the officer to /help."""
    await update.effective_message.reply_text(context.texts(UNKNOWN_COMMAND))  # type: ignore[union-attr]


async def unsupported(update: Update, context: BotContext) -> None:
    """Say which kinds of message the bot relays."""
    if update.effective_message is not None and update.edited_message is None:
        await update.effective_message.reply_text(context.texts(UNSUPPORTED))


async def stale_button(update: Update, context: BotContext) -> None:
    """Answer a button nobody handles any more, so the client stops spinning."""
    await update.callback_query.answer(context.texts.plain(STALE_BUTTON))  # type: ignore[union-attr]


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Add the catch-all handlers; they must be registered after every other area's."""
    app.add_handler(MessageHandler(filters.COMMAND, unknown_command))
    app.add_handler(MessageHandler(filters.ALL, unsupported))
    app.add_handler(CallbackQueryHandler(stale_button))
