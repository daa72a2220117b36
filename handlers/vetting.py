"""Registration, help, language, invites, officer list and revocation."""

from __future__ import annotations

import shlex

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot import vetting
from bot.errors import InvalidInput
from bot.i18n import N_
from handlers.context import BotContext
from handlers.labels import LANGUAGE_NAMES, country_name, local_time, role_name
from handlers.menu import COMMANDS, publish_officer_menu

WELCOME = N_("Welcome, {name}. You are registered as {role} ({country}). Send /help to see what you can do.")
HELP_HEADER = N_("Liaison connects vetted officers of China, Lao PDR and Viet Nam. Your commands:")
INVITE_USAGE = N_(
    "Usage: /invite ROLE [COUNTRY] [AGENCY] [lang=xx] [expires=72h]\n"
    "ROLE: officer, coordinator, auditor or admin; COUNTRY: CN, LA or VN."
)
INVITE_CREATED = N_(
    "Invite for {role} ({country}, {agency}), language {language}, valid until {expires}.\n"
    "Code: <code>{code}</code>\nLink: {link}\nIt works once. Send it over a trusted channel."
)
REVOKE_USAGE = N_("Usage: /revoke @username or /revoke TELEGRAM_ID")
REVOKED = N_("{name} can no longer use the bot.")
LANGUAGE_CHOOSE = N_("Choose your language:")
LANGUAGE_SET = N_("Your language is now English.")
NO_OFFICERS = N_("No officers are registered.")
OFFICER_LINE = N_("{flag} {name} — {role}, {agency}")


async def start(update: Update, context: BotContext) -> None:
    """Register with an invite code, or greet an officer who is already registered."""
    user = update.effective_user
    assert user is not None and update.message is not None
    officer = context.officer
    if officer is None:
        officer = await context.run(
            vetting.register, context.core, telegram_id=user.id, code=context.args[0] if context.args else "",
            display_name=user.full_name, username=user.username,
        )
        context.officer, context.texts = officer, context.core.catalogs.get(officer.language)
        await publish_officer_menu(context.bot, context.core.catalogs, officer)
    t = context.texts
    await update.message.reply_text(
        t(WELCOME, name=officer.display_name, role=role_name(t, officer.role),
          country=country_name(t, officer.country))
    )


async def help_command(update: Update, context: BotContext) -> None:
    """List the commands the officer's role can use, in their language."""
    t, role = context.texts, context.me.role
    lines = [t(HELP_HEADER)] + [f"/{c.name} — {t(c.description)}" for c in COMMANDS if role in c.roles]
    await update.effective_message.reply_text("\n".join(lines))  # type: ignore[union-attr]


async def language(update: Update, context: BotContext) -> None:
    """Set the language from the argument, or offer the four languages as buttons."""
    if context.args:
        await _set_language(update, context, context.args[0])
        return
    buttons = [[InlineKeyboardButton(name, callback_data=f"lang:{code}")] for code, name in LANGUAGE_NAMES.items()]
    await update.effective_message.reply_text(  # type: ignore[union-attr]
        context.texts(LANGUAGE_CHOOSE), reply_markup=InlineKeyboardMarkup(buttons)
    )


async def language_button(update: Update, context: BotContext) -> None:
    """Apply the language chosen with a button."""
    query = update.callback_query
    assert query is not None and query.data is not None
    await query.answer()
    await _set_language(update, context, query.data.split(":", 1)[1])


async def _set_language(update: Update, context: BotContext, code: str) -> None:
    officer = await context.run(vetting.set_language, context.core, context.me, code)
    context.officer, context.texts = officer, context.core.catalogs.get(officer.language)
    await publish_officer_menu(context.bot, context.core.catalogs, officer)
    await update.effective_message.reply_text(context.texts(LANGUAGE_SET))  # type: ignore[union-attr]


def parse_invite_args(args: list[str]) -> dict[str, str]:
    """Split `/invite` arguments into role, country, agency, lang and expires."""
    if not args:
        raise InvalidInput(INVITE_USAGE)
    options: dict[str, str] = {}
    rest: list[str] = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key.lower() in ("lang", "expires"):
            options[key.lower()] = value
        else:
            rest.append(arg)
    if not rest:
        raise InvalidInput(INVITE_USAGE)
    options["role"] = rest[0]
    if len(rest) > 1 and rest[1].upper() in ("CN", "LA", "VN"):
        options["country"] = rest[1]
        rest = rest[2:]
    else:
        rest = rest[1:]
    if rest:
        options["agency"] = " ".join(rest)
    return options


async def invite(update: Update, context: BotContext) -> None:
    """Create a one-time invite code (coordinators for their country, admins for anyone)."""
    text = update.effective_message.text or ""  # type: ignore[union-attr]
    try:
        args = shlex.split(text)[1:]
    except ValueError:
        args = text.split()[1:]
    opts = parse_invite_args(args)
    lifetime = vetting.parse_duration(opts["expires"]) if "expires" in opts else vetting.DEFAULT_INVITE_LIFETIME
    created = await context.run(
        vetting.create_invite, context.core, context.me, role=opts["role"], country=opts.get("country"),
        agency=opts.get("agency"), language=opts.get("lang"), lifetime=lifetime,
    )
    t = context.texts
    link = created.link(context.bot.username) or "—"
    await update.effective_message.reply_text(  # type: ignore[union-attr]
        t(INVITE_CREATED, role=role_name(t, created.role), country=country_name(t, created.country),
          agency=created.agency or "—", language=LANGUAGE_NAMES[created.language],
          expires=local_time(created.expires_at, context.me.timezone), code=created.code, link=link),
        protect_content=True,
    )


async def officers(update: Update, context: BotContext) -> None:
    """List active officers (coordinators, auditors and admins)."""
    rows = await context.run(vetting.list_officers, context.core, context.me)
    t = context.texts
    lines = [
        t(OFFICER_LINE, flag=o.flag, name=o.display_name + (f" @{o.username}" if o.username else ""),
          role=role_name(t, o.role), agency=o.agency_name or country_name(t, o.country))
        for o in rows
    ]
    await update.effective_message.reply_text("\n".join(lines) or t(NO_OFFICERS))  # type: ignore[union-attr]


async def revoke(update: Update, context: BotContext) -> None:
    """Revoke an officer named by @username or Telegram id."""
    if not context.args:
        raise InvalidInput(REVOKE_USAGE)
    target = await context.run(vetting.revoke, context.core, context.me, context.args[0],
                               " ".join(context.args[1:]) or None)
    await update.effective_message.reply_text(context.texts(REVOKED, name=target.display_name))  # type: ignore[union-attr]


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Add the vetting commands."""
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("help", help_command))
    app.add_handler(CommandHandler("language", language))
    app.add_handler(CallbackQueryHandler(language_button, pattern=r"^lang:(zh|lo|vi|en)$"))
    app.add_handler(CommandHandler("invite", invite))
    app.add_handler(CommandHandler("officers", officers))
    app.add_handler(CommandHandler("revoke", revoke))
