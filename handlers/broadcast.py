"""Broadcast handlers: the guided /broadcast (scope → text → priority → preview → confirm), acks, /acks.

The guide's step is kept in `user_data` only until the draft exists; from then on the database holds
the state (draft → sending), so Confirm pressed twice, or on two devices, sends once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot import broadcasts
from bot.core import Core
from bot.errors import InvalidInput, LiaisonError
from bot.i18n import N_, Texts
from bot.render import split_html
from handlers import lifecycle
from handlers.context import BotContext
from handlers.labels import COUNTRY_NAMES, LANGUAGE_NAMES, country_name, local_time

#: runs after the gate (-100) and before every area's group-0 handlers: the guide's typed answers
GUIDE_GROUP = -10
STATE = "broadcast"
#: seconds between two scheduler ticks (re-sends, unfinished reports)
TICK_SECONDS = 30

ASK_SCOPE = N_("📢 New broadcast. Who should receive it? Choose below, or type a scope such as "
               "<code>country:LA,VN</code>, <code>agency:\"Customs\"</code> or <code>case:CN-VN-2026-0042</code>.")
EVERYONE = N_("Everyone (all officers)")
ASK_TEXT = N_("Recipients: <code>{scope}</code>. Now send the text of the alert (or /cancel).")
ASK_PRIORITY = N_("How urgent is it? Urgent alerts are re-sent to those who have not acknowledged them.")
NORMAL = N_("Normal priority")
URGENT = N_("🚨 Urgent priority")
PREVIEW_HEAD = N_("<b>Preview of broadcast #{id}</b> ({priority}) to <code>{scope}</code>: {total} officers.")
PREVIEW_COUNTRY = N_("{flag} {country}: {count}")
NO_COUNTRY = N_("without a country")
PREVIEW_UNTRANSLATED = N_("⚠️ No translation into {language}: those officers will receive the original.")
CONFIRM = N_("✅ Send")
CANCEL = N_("✖️ Cancel")
PRIORITY_NAMES = {"normal": N_("normal priority"), "urgent": N_("🚨 urgent")}
SENDING = N_("✅ Broadcast #{id} is being sent to {count} officers. Its progress is shown below the preview.")
ALREADY = N_("Broadcast #{id} has already been sent; it was not sent again.")
CANCELLED = N_("Broadcast #{id} was cancelled; nothing was sent.")
GUIDE_CANCELLED = N_("Broadcast cancelled; nothing was sent.")
ACKED = N_("✅ Acknowledged at {time}. Thank you.")
ACKED_BEFORE = N_("You already acknowledged this alert at {time}.")
ACKS_HEAD = N_("<b>Broadcast #{id}</b> ({priority}, <code>{scope}</code>): {acked} of {total} acknowledged.")
ACKS_YES = N_("<b>Acknowledged:</b>")
ACKS_NO = N_("<b>Not yet acknowledged:</b>")
ACKS_LINE_YES = N_("• {name} — {time}")
ACKS_LINE_NO = N_("• {name} — {status}")
STATUS_NAMES = {"sent": N_("delivered, not acknowledged"), "failed": N_("delivery failed"),
                "blocked": N_("has blocked the bot"), "cancelled": N_("not sent: access revoked"),
                "pending": N_("waiting to be sent"), "sending": N_("being sent now"),
                "not-queued": N_("not sent")}


def _markup(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    """Return an inline keyboard from (label, callback data) rows."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d) for t, d in row] for row in rows])


async def _reply_long(message: Message, html_text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Reply with a text of any length, split cleanly; the buttons go on the last part."""
    parts = split_html(html_text)
    for i, part in enumerate(parts):
        await message.reply_text(part, reply_markup=markup if i == len(parts) - 1 else None)


async def broadcast_cmd(update: Update, context: BotContext) -> None:
    """Start a broadcast: scope from the arguments (and maybe the text), else ask with buttons."""
    message = update.effective_message
    assert message is not None
    await context.run(broadcasts.check_sender, context.core, context.me)
    args = (message.text or "").partition(" ")[2].strip()
    if not args:
        context.user_data[STATE] = {"stage": "scope"}  # type: ignore[index]
        await message.reply_text(context.texts(ASK_SCOPE), reply_markup=_scope_buttons(context.texts))
        return
    scope, rest = broadcasts.parse_scope_prefix(args)
    await _after_scope(message, context, scope.text(), rest)


def _scope_buttons(texts: Texts) -> InlineKeyboardMarkup:
    """Return the scope choices: everyone, then each country."""
    return _markup([[(texts.plain(EVERYONE), "bc:scope:all")],
                    [(f"{broadcasts.COUNTRY_FLAG[c]} {texts.plain(COUNTRY_NAMES[c])}", f"bc:scope:country:{c}")
                     for c in ("CN", "LA", "VN")]])


async def _after_scope(message: Message, context: BotContext, scope: str, text: str) -> None:
    """Ask for the text, or for the priority when the text is known."""
    if text:
        context.user_data[STATE] = {"stage": "priority", "scope": scope, "text": text}  # type: ignore[index]
        await message.reply_text(context.texts(ASK_PRIORITY), reply_markup=_markup(
            [[(context.texts.plain(NORMAL), "bc:prio:normal"), (context.texts.plain(URGENT), "bc:prio:urgent")]]))
    else:
        context.user_data[STATE] = {"stage": "text", "scope": scope}  # type: ignore[index]
        await message.reply_text(context.texts(ASK_TEXT, scope=scope))


async def guide_text(update: Update, context: BotContext) -> None:
    """Take the scope or the alert's text typed during the guide (other messages pass on)."""
    state = (context.user_data or {}).get(STATE)
    message = update.effective_message
    if not state or state.get("stage") not in ("scope", "text") or message is None or context.officer is None:
        return
    try:
        if state["stage"] == "scope":
            scope = broadcasts.parse_scope(message.text or "")
            await _after_scope(message, context, scope.text(), "")
        elif not (message.text or "").strip():
            raise InvalidInput(broadcasts.NO_TEXT)
        else:
            await _after_scope(message, context, state["scope"], message.text or "")
    except LiaisonError as exc:  # answered here: the message must not go on to the relay
        await message.reply_text(context.texts.error(exc))
    raise ApplicationHandlerStop


async def guide_cancel(update: Update, context: BotContext) -> None:
    """Leave the guide on /cancel (other areas' /cancel still runs when no broadcast is being prepared)."""
    if context.user_data and context.user_data.pop(STATE, None) is not None and update.effective_message:
        await update.effective_message.reply_text(context.texts(GUIDE_CANCELLED))
        raise ApplicationHandlerStop


async def button(update: Update, context: BotContext) -> None:
    """Handle the broadcast buttons: scope, priority, confirm, cancel, acknowledge, who acknowledged."""
    query = update.callback_query
    assert query is not None and query.data is not None and isinstance(query.message, Message)
    _bc, action, value = query.data.split(":", 2)
    handler = {"scope": _on_scope, "prio": _on_priority, "ok": _on_confirm, "no": _on_cancel, "ack": _on_ack,
               "acks": _on_acks}[action]
    toast = await handler(query.message, context, value)
    await query.answer(toast)


async def _on_scope(message: Message, context: BotContext, value: str) -> str | None:
    """A scope button: go on to the text."""
    await context.run(broadcasts.check_sender, context.core, context.me)
    await message.edit_reply_markup(None)
    await _after_scope(message, context, broadcasts.parse_scope(value).text(), "")
    return None


async def _on_priority(message: Message, context: BotContext, value: str) -> str | None:
    """A priority button: translate, store the draft and show the preview with Send / Cancel."""
    state = (context.user_data or {}).get(STATE)
    if not state or "text" not in state:
        return None
    context.user_data.pop(STATE, None)  # type: ignore[union-attr]
    await message.edit_reply_markup(None)
    preview = await context.run(broadcasts.draft, context.core, context.me, state["scope"], state["text"],
                                priority=value, status_chat_id=message.chat_id)
    await _reply_long(message, render_preview(context.texts, preview), _markup(
        [[(context.texts.plain(CONFIRM), f"bc:ok:{preview.id}"), (context.texts.plain(CANCEL), f"bc:no:{preview.id}")]]))
    return None


def render_preview(texts: Texts, preview: broadcasts.Preview) -> str:
    """Return the preview: recipients per country, then the alert in each language."""
    lines = [texts(PREVIEW_HEAD, id=preview.id, priority=texts.plain(PRIORITY_NAMES[preview.priority]),
                   scope=preview.scope, total=preview.total)]
    for country, count in sorted(preview.by_country.items(), key=lambda kv: kv[0] or "~"):
        name = country_name(texts, country) if country else texts.plain(NO_COUNTRY)
        lines.append(texts(PREVIEW_COUNTRY, flag=broadcasts.COUNTRY_FLAG.get(country or "", "•"), country=name,
                           count=count))
    for lang, text in preview.texts.items():
        lines += ["", f"<b>{LANGUAGE_NAMES.get(lang, lang)}</b>", broadcasts.escape(text)]
        if lang in preview.untranslated:
            lines.append(texts(PREVIEW_UNTRANSLATED, language=LANGUAGE_NAMES.get(lang, lang)))
    return "\n".join(lines)


async def _on_confirm(message: Message, context: BotContext, value: str) -> str | None:
    """Send: the database lets exactly one press through; the others are told it was already sent."""
    result = await context.run(broadcasts.confirm, context.core, context.me, int(value))
    if result.already:
        msgid = CANCELLED if result.status == broadcasts.BroadcastStatus.CANCELLED else ALREADY
        return context.texts.plain(msgid, id=result.id)
    # No other message here: the outbox's progress message follows, paced with the fan-out.
    return context.texts.plain(SENDING, id=result.id, count=result.queued)


async def _on_cancel(message: Message, context: BotContext, value: str) -> str | None:
    """Cancel a draft (a confirmed broadcast cannot be cancelled here)."""
    dropped = await context.run(broadcasts.cancel, context.core, context.me, int(value))
    await message.edit_reply_markup(None)
    await message.reply_text(context.texts(CANCELLED if dropped else ALREADY, id=int(value)))
    return None


async def _on_ack(message: Message, context: BotContext, value: str) -> str | None:
    """Record an acknowledgment and tell the officer when it was recorded."""
    ack = await context.run(broadcasts.acknowledge, context.core, context.me, int(value))
    when = local_time(ack.at, context.me.timezone)
    return context.texts.plain(ACKED_BEFORE if ack.already else ACKED, time=when)


async def _on_acks(message: Message, context: BotContext, value: str) -> str | None:
    """Show who acknowledged a broadcast (the report's button)."""
    rep = await context.run(broadcasts.report, context.core, context.me, int(value))
    await _reply_long(message, render_acks(context.texts, rep, context.me.timezone))
    return None


async def acks_cmd(update: Update, context: BotContext) -> None:
    """Show who acknowledged a broadcast: /acks [ID] (the latest one by default)."""
    message = update.effective_message
    assert message is not None
    arg = (message.text or "").partition(" ")[2].strip().lstrip("#")
    rep = await context.run(broadcasts.report, context.core, context.me, int(arg) if arg.isdigit() else None)
    await _reply_long(message, render_acks(context.texts, rep, context.me.timezone))


def render_acks(texts: Texts, rep: broadcasts.Report, tz: str) -> str:
    """Return who acknowledged (with the time, in the reader's zone) and who has not (with their copy's state)."""
    lines = [texts(ACKS_HEAD, id=rep.id, priority=texts.plain(PRIORITY_NAMES[rep.priority]), scope=rep.scope,
                   acked=len(rep.acked), total=rep.total)]
    if rep.acked:
        lines += ["", texts(ACKS_YES)]
        lines += [texts(ACKS_LINE_YES, name=_name(r.officer), time=local_time(r.acked_at, tz))
                  for r in rep.acked if r.acked_at]
    if rep.not_acked:
        lines += ["", texts(ACKS_NO)]
        lines += [texts(ACKS_LINE_NO, name=_name(r.officer), status=texts.plain(STATUS_NAMES.get(r.status, r.status)))
                  for r in rep.not_acked]
    return "\n".join(lines)


def _name(officer: broadcasts.OfficerInfo) -> str:
    """Return an officer as listed: flag and name."""
    return f"{officer.flag} {officer.display_name}".strip()


class BroadcastService:
    """Per process: the progress tracker on the outbox's events, and the scheduler's tick."""

    def __init__(self) -> None:
        self._core: Core | None = None

    async def start(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Subscribe the progress tracker and schedule the tick (re-sends, unfinished reports)."""
        core: Core = app.bot_data["core"]
        self._core = core
        broadcasts.tracker(core)
        await asyncio.to_thread(broadcasts.finish_stale, core)
        scheduler = core.extras.get("scheduler")
        if scheduler is not None:
            scheduler.add_job(broadcasts.tick, "interval", seconds=TICK_SECONDS, args=[core], id="broadcast-tick",
                              coalesce=True, max_instances=1, replace_existing=True)

    async def stop(self) -> None:
        """Cancel scheduled progress edits (the next process's tick finishes the reports)."""
        if self._core is not None:
            await broadcasts.release_tracker(self._core)


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Add the broadcast commands, buttons, the guide's text step and the service."""
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, guide_text), group=GUIDE_GROUP)
    app.add_handler(CommandHandler("cancel", guide_cancel), group=GUIDE_GROUP)
    app.add_handler(CommandHandler("broadcast", broadcast_cmd))
    app.add_handler(CommandHandler("acks", acks_cmd))
    app.add_handler(CallbackQueryHandler(button, pattern=r"^bc:(scope|prio|ok|no|ack|acks):"))
    lifecycle.add(app, BroadcastService())
