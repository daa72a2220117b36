"""The vetting gate: runs before every other handler and stops anything that is not an officer's."""

from __future__ import annotations

import logging

from telegram import Chat, Update
from telegram.ext import Application, ApplicationHandlerStop, TypeHandler

from bot import vetting
from bot.i18n import N_
from handlers.context import BotContext

logger = logging.getLogger(__name__)

STRANGER = N_("This bot is for registered officers only.")

#: the gate's handler group: lower groups run first, so nothing can run before it
GATE_GROUP = -100


def _is_registration(update: Update) -> bool:
    message = update.message
    if message is None or message.text is None:
        return False
    parts = message.text.split()
    return len(parts) == 2 and parts[0].split("@")[0] == "/start"


async def gate(update: Update, context: BotContext) -> None:
    """Let active officers through; strangers (and revoked officers) get one short reply, nothing else."""
    core = context.core
    user, chat = update.effective_user, update.effective_chat
    new, officer = await context.run(vetting.admit, core, update.update_id, user.id if user else None)
    if not new:
        logger.info("update %s was already handled; ignoring the redelivery", update.update_id)
        raise ApplicationHandlerStop
    if user is None or user.is_bot or (chat is not None and chat.type != Chat.PRIVATE):
        # The bot works in private chats only; group and channel traffic is ignored.
        raise ApplicationHandlerStop
    context.officer = officer
    context.texts = core.catalogs.get(officer.language if officer else user.language_code)
    if officer is not None or _is_registration(update):
        return
    await context.run(vetting.note_stranger, core, user.id, _kind(update))
    if update.callback_query is not None:
        await update.callback_query.answer(context.texts.plain(STRANGER), show_alert=True)
    elif update.effective_message is not None and update.edited_message is None:
        await update.effective_message.reply_text(context.texts(STRANGER))
    raise ApplicationHandlerStop


def _kind(update: Update) -> str:
    if update.callback_query is not None:
        return "button"
    if update.edited_message is not None:
        return "edit"
    if update.message is not None and update.message.text:
        return "command" if update.message.text.startswith("/") else "text"
    return "other"


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Install the gate in its own group, ahead of every other handler."""
    app.add_handler(TypeHandler(Update, gate), group=GATE_GROUP)
