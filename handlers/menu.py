"""The command menu shown by Telegram clients, per language and per role."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from telegram.error import TelegramError
from telegram.ext import ExtBot

from bot.i18n import N_, Catalogs
from bot.officers import OfficerInfo

logger = logging.getLogger(__name__)

OFFICER = ("officer", "coordinator", "auditor", "admin")
STAFF = ("coordinator", "admin")
AUDIT = ("auditor", "admin")


@dataclass(frozen=True)
class Command:
    """One entry of the menu and who sees it."""

    name: str
    description: str
    roles: tuple[str, ...] = OFFICER


#: The menu, in the order clients show it. Every area's commands are listed here.
COMMANDS: tuple[Command, ...] = (
    Command("help", N_("What I can do for you")),
    Command("rooms", N_("Your case rooms")),
    Command("room", N_("Choose the room you write to")),
    Command("dm", N_("Talk one-to-one with a counterpart")),
    Command("actions", N_("Your open action items")),
    Command("done", N_("Mark an action item as done")),
    Command("retract", N_("Retract a message you sent (reply to it)")),
    Command("language", N_("Change your language")),
    Command("newcase", N_("Open a case room"), STAFF),
    Command("add", N_("Add an officer to the current room"), STAFF),
    Command("remove", N_("Remove an officer from the current room"), STAFF),
    Command("handling", N_("Set the room's handling code"), STAFF),
    Command("introduce", N_("Introduce two officers so they can write one-to-one"), STAFF),
    Command("broadcast", N_("Send an alert to many officers"), STAFF),
    Command("meeting", N_("Record a joint meeting and its action items"), STAFF),
    Command("item", N_("Change an action item's due date or owners, or cancel it"), STAFF),
    Command("glossary", N_("Add a term to the enforcement glossary"), STAFF),
    Command("invite", N_("Create an invite code"), STAFF),
    Command("officers", N_("List registered officers"), STAFF + ("auditor",)),
    Command("revoke", N_("Revoke an officer's access"), STAFF),
    Command("export", N_("Export the audit log as a signed bundle"), AUDIT),
    Command("cancel", N_("Cancel what you are doing")),
)


def commands_for(role: str, catalogs: Catalogs, lang: str) -> list[BotCommand]:
    """Return the menu for a role in a language."""
    texts = catalogs.get(lang)
    return [BotCommand(c.name, texts.plain(c.description)) for c in COMMANDS if role in c.roles]


async def publish_default_menus(bot: ExtBot[None], catalogs: Catalogs) -> None:
    """Register the officers' menu once per language (Telegram picks it by the user's app language)."""
    for lang in catalogs.languages():
        await bot.set_my_commands(commands_for("officer", catalogs, lang), scope=BotCommandScopeDefault(),
                                  language_code=lang)
    await bot.set_my_commands(commands_for("officer", catalogs, "en"), scope=BotCommandScopeDefault())


async def publish_officer_menu(bot: ExtBot[None], catalogs: Catalogs, officer: OfficerInfo) -> None:
    """Give one officer the menu of their role in their language (chat-scoped)."""
    try:
        await bot.set_my_commands(
            commands_for(officer.role, catalogs, officer.language),
            scope=BotCommandScopeChat(officer.telegram_id),
        )
    except TelegramError as exc:
        logger.warning("could not set the menu for officer %s: %s", officer.id, exc)
