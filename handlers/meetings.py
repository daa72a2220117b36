"""Meetings: the /meeting conversation for coordinators, /actions, /done, /item, the reminder buttons, and
the lifecycle service that ticks the reminder schedule."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot import meetings, reminders
from bot.core import Core
from bot.errors import InvalidInput, LiaisonError
from bot.i18n import N_
from handlers import lifecycle
from handlers.context import BotContext
from handlers.labels import local_time
from handlers.outbound import TelegramOutbound

logger = logging.getLogger(__name__)

TITLE, DATE, PLACE, PARTICIPANTS, ITEM_TEXT, ITEM_OWNERS, ITEM_DUE, ITEM_CASE = range(8)
DRAFT = "meeting_draft"

ASK_TITLE = N_("New joint meeting. What is its title? (Send /cancel at any time to stop.)")
ASK_DATE = N_("On what date was the meeting held? For example 30/08/2026.")
ASK_PLACE = N_("Where was it held? (Send - to skip.)")
ASK_PARTICIPANTS = N_("Who took part? Agencies or names, in one message. (Send - to skip.)")
ASK_ITEM = N_("Action item {n}: what was agreed? (Send /finish when all items are entered.)")
ASK_OWNERS = N_("Who is responsible for it? One or more @usernames.")
ASK_DUE = N_("By when? The due date, for example 30/09/2026.")
ASK_CASE = N_("Case tag, for example CN-VN-2026-0042? (Send - for none.)")
ITEM_NOTED = N_("Item {n} noted: {owners}, due {due}.")
NEED_ITEM = N_("Enter at least one complete action item first, or send /cancel.")
RECORDED = N_(
    "Meeting #{id} “{title}” is recorded with its action items ({n}). Their owners have been told "
    "and will be reminded."
)
RECORDED_ITEM = N_("#{id} {text} — {owners}, due {due}")
CANCELLED = N_("Cancelled. Nothing was recorded.")
ACTIONS_HEADER = N_("Your open action items:")
ACTIONS_LINE = N_("#{id} {text}\n   due {due} · {meeting}")
ACTIONS_OVERDUE = N_("#{id} {text}\n   ⚠️ overdue since {due} · {meeting}")
ACTIONS_FOOTER = N_("Close one with /done ID, or with the buttons under its reminder.")
NO_ACTIONS = N_("You have no open action items.")
MEETINGS_HEADER = N_("Meetings you coordinate:")
MEETING_LINE = N_("#{id} {title} ({date}) — open: {open}, overdue: {overdue}, done: {done}")
DONE_USAGE = N_("Usage: /done ID (the number shown by /actions).")
DONE_OK = N_("Action item #{id} is done. Thank you!")
SNOOZED = N_("I will remind you again on {when}.")
HELP_SENT = N_("{name} has been told that you need help with action item #{id}.")
ITEM_USAGE = N_("Usage: /item ID due DATE, /item ID owners @username …, or /item ID cancel")
ITEM_CHANGED = N_("Action item #{id} is updated: due {due}, owners: {owners}.")
ITEM_CANCELLED = N_("Action item #{id} is cancelled; its owners are no longer reminded.")


def _draft(context: BotContext) -> dict[str, Any]:
    return context.user_data.setdefault(DRAFT, {"items": []})  # type: ignore[union-attr]


async def _ask(update: Update, context: BotContext, msgid: str, **values: Any) -> None:
    await update.effective_message.reply_text(context.texts(msgid, **values))  # type: ignore[union-attr]


async def _step(
    update: Update,
    context: BotContext,
    state: int,
    read: Any,
    store: str,
    next_state: int,
    question: str,
    **values: Any,
) -> int:
    """Read one answer with a service function; on a bad answer say why and stay in the same step."""
    text = update.effective_message.text or ""  # type: ignore[union-attr]
    try:
        _draft(context)[store] = await context.run(read, text)
    except LiaisonError as exc:
        await update.effective_message.reply_text(context.texts.error(exc))  # type: ignore[union-attr]
        return state
    await _ask(update, context, question, **values)
    return next_state


async def meeting_start(update: Update, context: BotContext) -> int:
    """Start recording a meeting (coordinators and admins)."""
    meetings.require_staff(context.me)
    context.user_data[DRAFT] = {"items": []}  # type: ignore[index]
    await _ask(update, context, ASK_TITLE)
    return TITLE


async def meeting_title(update: Update, context: BotContext) -> int:
    """Take the title."""
    read = lambda t: meetings.clean_text(t, meetings.EMPTY_TITLE, meetings.MAX_TITLE)  # noqa: E731
    return await _step(update, context, TITLE, read, "title", DATE, ASK_DATE)


async def meeting_date(update: Update, context: BotContext) -> int:
    """Take the meeting's date."""
    read = lambda t: meetings.read_meeting_date(context.core, context.me, t)  # noqa: E731
    return await _step(update, context, DATE, read, "held_on", PLACE, ASK_PLACE)


async def meeting_place(update: Update, context: BotContext) -> int:
    """Take the place (optional)."""
    return await _step(
        update, context, PLACE, meetings.optional_text, "place", PARTICIPANTS, ASK_PARTICIPANTS
    )


async def meeting_participants(update: Update, context: BotContext) -> int:
    """Take the participants (optional), then ask for the first item."""
    return await _step(
        update, context, PARTICIPANTS, meetings.optional_text, "participants", ITEM_TEXT, ASK_ITEM, n=1
    )


async def item_text(update: Update, context: BotContext) -> int:
    """Take an item's text."""
    read = lambda t: meetings.clean_text(t, meetings.EMPTY_TEXT)  # noqa: E731
    return await _step(update, context, ITEM_TEXT, read, "text", ITEM_OWNERS, ASK_OWNERS)


async def item_owners(update: Update, context: BotContext) -> int:
    """Take an item's owners (@usernames of active officers)."""
    text = update.effective_message.text or ""  # type: ignore[union-attr]
    result = await _step(
        update,
        context,
        ITEM_OWNERS,
        lambda t: meetings.read_owners(context.core, t),
        "labels",
        ITEM_DUE,
        ASK_DUE,
    )
    if result == ITEM_DUE:
        _draft(context)["owners"] = tuple(meetings.split_owner_refs(text))
    return result


async def item_due(update: Update, context: BotContext) -> int:
    """Take an item's due date."""
    read = lambda t: meetings.read_due(context.core, context.me, t)  # noqa: E731
    return await _step(update, context, ITEM_DUE, read, "due", ITEM_CASE, ASK_CASE)


async def item_case(update: Update, context: BotContext) -> int:
    """Take the optional case tag, keep the item, and ask for the next one."""
    draft = _draft(context)
    try:
        case = meetings.parse_case_tag(update.effective_message.text)  # type: ignore[union-attr]
    except LiaisonError as exc:
        await update.effective_message.reply_text(context.texts.error(exc))  # type: ignore[union-attr]
        return ITEM_CASE
    draft["items"].append(meetings.ItemDraft(draft.pop("text"), draft.pop("owners"), draft.pop("due"), case))
    n, t = len(draft["items"]), context.texts
    await _ask(
        update,
        context,
        ITEM_NOTED,
        n=n,
        owners=", ".join(draft.pop("labels")),
        due=reminders.format_day(draft["items"][-1].due, t.lang),
    )
    await _ask(update, context, ASK_ITEM, n=n + 1)
    return ITEM_TEXT


async def meeting_finish(update: Update, context: BotContext) -> int:
    """Record the meeting with the complete items (all or nothing) and tell the owners."""
    draft = _draft(context)
    if not draft["items"]:
        await _ask(update, context, NEED_ITEM)
        return ITEM_TEXT
    recorded = (
        await context.run(
            meetings.record_meetings,
            context.core,
            context.me,
            [
                meetings.MeetingDraft(
                    title=draft["title"],
                    held_on=draft["held_on"],
                    place=draft.get("place"),
                    participants=draft.get("participants"),
                    items=tuple(draft["items"]),
                )
            ],
        )
    )[0]
    context.user_data.pop(DRAFT, None)  # type: ignore[union-attr]
    t = context.texts
    lines = [t(RECORDED, id=recorded.id, title=recorded.title, n=len(recorded.items))] + [
        t(
            RECORDED_ITEM,
            id=i.id,
            text=i.text,
            owners=", ".join(i.owners),
            due=reminders.format_day(i.due_on, t.lang),
        )
        for i in recorded.items
    ]
    await update.effective_message.reply_text("\n".join(lines))  # type: ignore[union-attr]
    await kick(context.core)
    return ConversationHandler.END


async def meeting_cancel(update: Update, context: BotContext) -> int:
    """Drop the draft."""
    context.user_data.pop(DRAFT, None)  # type: ignore[union-attr]
    await _ask(update, context, CANCELLED)
    return ConversationHandler.END


async def actions(update: Update, context: BotContext) -> None:
    """List one's open action items (and, for coordinators, their meetings)."""
    me, t = context.me, context.texts
    items = await context.run(meetings.open_items, context.core, me)
    lines = [t(ACTIONS_HEADER)] if items else [t(NO_ACTIONS)]
    for i in items:
        lines.append(
            t(
                ACTIONS_OVERDUE if i.overdue else ACTIONS_LINE,
                id=i.id,
                text=i.text,
                due=reminders.format_day(i.due_on, t.lang),
                meeting=i.meeting_title,
            )
        )
    if items:
        lines += ["", t(ACTIONS_FOOTER)]
    if me.role in meetings.STAFF:
        mine = await context.run(meetings.list_meetings, context.core, me, lang=t.lang)
        if mine:
            lines += ["", t(MEETINGS_HEADER)] + [
                t(
                    MEETING_LINE,
                    id=m.id,
                    title=m.title,
                    date=reminders.format_day(m.held_on, t.lang),
                    open=m.open,
                    overdue=m.overdue,
                    done=m.done,
                )
                for m in mine[:20]
            ]
    await update.effective_message.reply_text("\n".join(lines))  # type: ignore[union-attr]


async def done(update: Update, context: BotContext) -> None:
    """Close an action item: /done ID."""
    if not context.args or not context.args[0].lstrip("#").isdigit():
        raise InvalidInput(DONE_USAGE)
    item_id = int(context.args[0].lstrip("#"))
    await context.run(meetings.complete, context.core, context.me, item_id)
    await _ask(update, context, DONE_OK, id=item_id)
    await kick(context.core)


async def item(update: Update, context: BotContext) -> None:
    """Change an item (its meeting's coordinator): /item ID due DATE | owners @a @b | cancel."""
    args = context.args or []
    if (
        len(args) < 2
        or not args[0].lstrip("#").isdigit()
        or args[1].lower() not in ("due", "owners", "cancel")
    ):
        raise InvalidInput(ITEM_USAGE)
    item_id, what, rest = int(args[0].lstrip("#")), args[1].lower(), " ".join(args[2:])
    changes = {"due": {"due": rest}, "owners": {"owners": [rest]}, "cancel": {"cancel": True}}[what]
    view = await context.run(lambda: meetings.change_item(context.core, context.me, item_id, **changes))
    t = context.texts
    if what == "cancel":
        await _ask(update, context, ITEM_CANCELLED, id=item_id)
    else:
        await _ask(
            update,
            context,
            ITEM_CHANGED,
            id=item_id,
            due=reminders.format_day(view.due_on, t.lang),
            owners=", ".join(view.owners),
        )
    await kick(context.core)


async def button(update: Update, context: BotContext) -> None:
    """Handle Done, Snooze 1 day and Need help under a reminder."""
    query = update.callback_query
    assert query is not None and query.data is not None
    _, action, raw_id = query.data.split(":")
    item_id, t, core = int(raw_id), context.texts, context.core
    if action == "done":
        await context.run(meetings.complete, core, context.me, item_id)
        await query.answer(t.plain(DONE_OK, id=item_id))
        await query.edit_message_reply_markup(None)
        await query.message.reply_text(t(DONE_OK, id=item_id))  # type: ignore[union-attr]
    elif action == "snz":
        until: datetime = await context.run(meetings.snooze, core, context.me, item_id)
        await query.answer(t.plain(SNOOZED, when=local_time(until, context.me.timezone)))
    else:
        name = await context.run(meetings.ask_help, core, context.me, item_id)
        await query.answer(t.plain(HELP_SENT, name=name, id=item_id), show_alert=True)
    await kick(core)


async def kick(core: Core) -> None:
    """Send what became due (a notice to the coordinator) now rather than at the next tick."""
    runner = core.extras.get("meetings")
    if runner is not None:
        await runner.safe_run()


class ReminderService:
    """Ticks the schedule every minute (the database decides what is due) and sends through Telegram."""

    def __init__(self, interval: float = reminders.TICK_SECONDS) -> None:
        self.interval = interval
        self.runner: reminders.Runner | None = None
        self._first: asyncio.Task[None] | None = None

    async def start(self, app: Application) -> None:  # type: ignore[type-arg]
        """Catch up at once (one reminder per owner, whatever the downtime), then tick."""
        core: Core = app.bot_data["core"]
        self.runner = reminders.Runner(core, TelegramOutbound(app.bot))
        core.extras["meetings"] = self.runner
        self._first = asyncio.create_task(self.runner.safe_run())
        core.extras["scheduler"].add_job(
            self.runner.safe_run,
            "interval",
            seconds=self.interval,
            id="meetings-tick",
            coalesce=True,
            max_instances=1,
        )

    async def stop(self) -> None:
        """Stop ticking and let a send in progress finish."""
        if self.runner is None:
            return
        scheduler = self.runner.core.extras.get("scheduler")
        if scheduler is not None and scheduler.get_job("meetings-tick") is not None:
            scheduler.remove_job("meetings-tick")
        if self._first is not None:
            await self._first
        await self.runner.idle()
        self.runner.core.extras.pop("meetings", None)


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Add the meetings handlers and the reminder service."""
    text = filters.TEXT & ~filters.COMMAND
    finish = CommandHandler("finish", meeting_finish)
    app.add_handler(
        ConversationHandler(
            entry_points=[CommandHandler("meeting", meeting_start)],
            states={
                TITLE: [MessageHandler(text, meeting_title)],
                DATE: [MessageHandler(text, meeting_date)],
                PLACE: [MessageHandler(text, meeting_place)],
                PARTICIPANTS: [MessageHandler(text, meeting_participants)],
                ITEM_TEXT: [MessageHandler(text, item_text), finish],
                ITEM_OWNERS: [MessageHandler(text, item_owners)],
                ITEM_DUE: [MessageHandler(text, item_due)],
                ITEM_CASE: [MessageHandler(text, item_case)],
            },
            fallbacks=[CommandHandler("cancel", meeting_cancel), finish],
            name="meeting",
            allow_reentry=True,
            persistent=False,
        )
    )
    app.add_handler(CommandHandler("actions", actions))
    app.add_handler(CommandHandler("done", done))
    app.add_handler(CommandHandler("item", item))
    app.add_handler(CallbackQueryHandler(button, pattern=r"^mi:(done|snz|help):\d+$"))
    lifecycle.add(app, ReminderService())
