"""Room commands and buttons: /newcase, /add, /remove, /rooms, /room, /dm, /handling, /introduce."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot import rooms
from bot.i18n import N_, Texts
from bot.models import COUNTRY_FLAG
from bot.officers import OfficerInfo
from bot.render import handling_line
from handlers.context import BotContext
from handlers.labels import country_name

NEWCASE_USAGE = N_("Usage: /newcase CASE-TAG title, e.g. /newcase CN-VN-2026-0042 Pangolin scales via Lao Cai")
CASE_OPENED = N_("Case room {case} — {title} is open and your messages now go there. Add officers with /add.")
ADDED = N_("{name} was added to {case}.")
REMOVED = N_("{name} was removed from {case}.")
NO_ROOMS = N_("You are not in any room yet. A coordinator adds you to case rooms; /dm starts a one-to-one chat.")
ROOMS_HEADER = N_("Your rooms (▶ marks the one your messages go to). Tap one to write there:")
ROOM_LINE_CASE = N_("{case} — {title} · members: {members} · {code}")
ROOM_LINE_DM = N_("one-to-one with {name}")
ROOM_CHOSEN = N_("Your messages now go to {case}.")
DM_CHOSEN = N_("Your messages now go to {name} (one-to-one).")
PICK_COUNTRY = N_("Choose a country:")
PICK_AGENCY = N_("Choose an agency:")
PICK_OFFICER = N_("Choose an officer:")
PICK_MEMBER = N_("Choose the member to remove from {case}:")
NOBODY_VISIBLE = N_("There is nobody you can write to yet. You can write to officers you share a case room with, or whom a coordinator introduced.")
NOBODY_TO_ADD = N_("Every registered officer is already in this room.")
HANDLING_NOW = N_("Handling code of {case}:")
HANDLING_USAGE = N_("Set it with /handling H0|H1|H2|H3 [conditions]. A single message can raise it with H2: at its start.")
INTRODUCE_USAGE = N_("Usage: /introduce @officer1 @officer2 — the two can then open a one-to-one room with /dm.")
INTRODUCED_DONE = N_("{first} and {second} can now write to each other with /dm.")


def _buttons(rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    """Return one button per row."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data)] for label, data in rows])


def _picker(t: Texts, prefix: str, people: list[OfficerInfo], country: str | None = None,
            agency: int | None = None) -> tuple[str, InlineKeyboardMarkup]:
    """Return the next step of choosing an officer: country, then agency, then the officer."""
    if country is None:
        return t(PICK_COUNTRY), _buttons([(f"{COUNTRY_FLAG.get(c, '')} {country_name(t, c)} ({n})", f"{prefix}:c:{c}")
                                          for c, n in rooms.countries_of(people)])
    if agency is None:
        return t(PICK_AGENCY), _buttons([(f"{name} ({n})", f"{prefix}:a:{country}:{aid}")
                                         for aid, name, n in rooms.agencies_of(people)])
    return t(PICK_OFFICER), _buttons([(f"{o.flag} {o.display_name}", f"{prefix}:o:{o.id}") for o in people])


async def _answer(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Reply to a command, or replace the message whose button was pressed."""
    if update.callback_query is not None:
        await update.callback_query.answer()
        await update.callback_query.edit_message_text(text, reply_markup=markup)
    else:
        await update.effective_message.reply_text(text, reply_markup=markup)  # type: ignore[union-attr]


async def newcase(update: Update, context: BotContext) -> None:
    """Open a case room: /newcase TAG title…"""
    args = context.args or []
    if len(args) < 1:
        await _answer(update, context.texts(NEWCASE_USAGE))
        return
    room = await context.run(rooms.create_case, context.core, context.me, args[0], " ".join(args[1:]))
    await _answer(update, context.texts(CASE_OPENED, case=room.case_tag, title=room.title or ""))


async def add(update: Update, context: BotContext) -> None:
    """Add an officer to the current room by @username or Telegram id, or choose one with buttons."""
    args = context.args or []
    if args:
        room, officer = await context.run(rooms.add_member, context.core, context.me, args[0],
                                          args[1] if len(args) > 1 else None)
        await _answer(update, context.texts(ADDED, name=officer.display_name, case=room.case_tag))
        return
    people = await context.run(rooms.add_candidates, context.core, context.me)
    if not people:
        await _answer(update, context.texts(NOBODY_TO_ADD))
        return
    await _answer(update, *_picker(context.texts, "add", people))


async def remove(update: Update, context: BotContext) -> None:
    """Remove an officer from the current room, or choose the member with buttons."""
    args = context.args or []
    if args:
        room, officer = await context.run(rooms.remove_member, context.core, context.me, args[0],
                                          args[1] if len(args) > 1 else None)
        await _answer(update, context.texts(REMOVED, name=officer.display_name, case=room.case_tag))
        return
    room, members = await context.run(rooms.room_members, context.core, context.me)
    rows = [(f"{m.flag} {m.display_name}", f"rm:o:{m.id}:{room.id}") for m in members if m.id != context.me.id]
    await _answer(update, context.texts(PICK_MEMBER, case=room.case_tag), _buttons(rows))


def _room_label(t: Texts, room: rooms.RoomInfo) -> str:
    """Return how a room is listed (plain text, for buttons)."""
    mark = "▶ " if room.current else ""
    if room.is_dm:
        return mark + "\U0001f4ac " + t.plain(ROOM_LINE_DM, name=room.counterpart or "—")
    return mark + "\U0001f5c2 " + t.plain(ROOM_LINE_CASE, case=room.case_tag, title=room.title or "",
                                           members=room.members, code=room.handling)


async def list_rooms(update: Update, context: BotContext) -> None:
    """List the officer's rooms as buttons that choose where messages go."""
    mine = await context.run(rooms.my_rooms, context.core, context.me)
    if not mine:
        await _answer(update, context.texts(NO_ROOMS))
        return
    await _answer(update, context.texts(ROOMS_HEADER),
                  _buttons([(_room_label(context.texts, r), f"room:{r.id}") for r in mine]))


async def room(update: Update, context: BotContext) -> None:
    """Choose the room messages go to: /room TAG, or the list of rooms."""
    if not context.args:
        await list_rooms(update, context)
        return
    chosen = await context.run(rooms.choose_room, context.core, context.me, context.args[0])
    await _answer(update, _chosen_text(context.texts, chosen))


def _chosen_text(t: Texts, chosen: rooms.RoomInfo) -> str:
    """Return the confirmation of a chosen room."""
    if chosen.is_dm:
        return t(DM_CHOSEN, name=chosen.counterpart or "—")
    return t(ROOM_CHOSEN, case=chosen.case_tag)


async def dm(update: Update, context: BotContext) -> None:
    """Open a one-to-one room: /dm @username, or choose by country and agency."""
    if context.args:
        chosen, _other = await context.run(rooms.open_dm, context.core, context.me, context.args[0])
        await _answer(update, _chosen_text(context.texts, chosen))
        return
    people = await context.run(rooms.visible_officers, context.core, context.me)
    if not people:
        await _answer(update, context.texts(NOBODY_VISIBLE))
        return
    await _answer(update, *_picker(context.texts, "dm", people))


async def handling(update: Update, context: BotContext) -> None:
    """Set the current room's handling code (/handling H2 [conditions]), or show it."""
    args = context.args or []
    if not args:
        current = await context.run(rooms.current_room, context.core, context.me)
        if current is None:
            await _answer(update, context.texts(rooms.NO_ROOM))
            return
        text = context.texts(HANDLING_NOW, case=current.case_tag) + "\n" + handling_line(
            context.texts, current.handling) + "\n\n" + context.texts(HANDLING_USAGE)
        await _answer(update, text)
        return
    changed = await context.run(rooms.set_handling, context.core, context.me, args[0], " ".join(args[1:]) or None)
    await _answer(update, context.texts(HANDLING_NOW, case=changed.case_tag) + "\n" + handling_line(
        context.texts, changed.handling, " ".join(args[1:]) if changed.handling == "H3" else None))


async def introduce(update: Update, context: BotContext) -> None:
    """Make two officers visible to each other: /introduce @a @b (coordinators)."""
    args = context.args or []
    if len(args) != 2:
        await _answer(update, context.texts(INTRODUCE_USAGE))
        return
    first, second = await context.run(rooms.introduce, context.core, context.me, args[0], args[1])
    await _answer(update, context.texts(INTRODUCED_DONE, first=first.display_name, second=second.display_name))


async def room_button(update: Update, context: BotContext) -> None:
    """Choose the room whose button was pressed."""
    data = update.callback_query.data  # type: ignore[union-attr]
    chosen = await context.run(rooms.choose_room, context.core, context.me, int(data.split(":")[1]))  # type: ignore[union-attr]
    await _answer(update, _chosen_text(context.texts, chosen))


async def pick_button(update: Update, context: BotContext) -> None:
    """Walk the /dm and /add pickers: country → agency → officer."""
    prefix, step, *rest = update.callback_query.data.split(":")  # type: ignore[union-attr]
    if step == "o":
        if prefix == "dm":
            chosen, _o = await context.run(rooms.open_dm, context.core, context.me, f"id:{rest[0]}")
            await _answer(update, _chosen_text(context.texts, chosen))
        else:
            joined, officer = await context.run(rooms.add_member, context.core, context.me, f"id:{rest[0]}")
            await _answer(update, context.texts(ADDED, name=officer.display_name, case=joined.case_tag))
        return
    country = rest[0]
    agency = int(rest[1]) if step == "a" else None
    lister = rooms.visible_officers if prefix == "dm" else rooms.add_candidates
    people = await context.run(lambda: lister(context.core, context.me, country=country if country != "—" else None,
                                              agency_id=agency))
    await _answer(update, *_picker(context.texts, prefix, people, country, agency))


async def remove_button(update: Update, context: BotContext) -> None:
    """Remove the member whose button was pressed."""
    _rm, _o, officer_id, room_id = update.callback_query.data.split(":")  # type: ignore[union-attr]
    tag = await context.run(rooms.room_tag, context.core, int(room_id))
    room_info, officer = await context.run(rooms.remove_member, context.core, context.me, f"id:{officer_id}", tag)
    await _answer(update, context.texts(REMOVED, name=officer.display_name, case=room_info.case_tag))


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Add the rooms area's commands and buttons."""
    app.add_handler(CommandHandler("newcase", newcase))
    app.add_handler(CommandHandler("add", add))
    app.add_handler(CommandHandler("remove", remove))
    app.add_handler(CommandHandler("rooms", list_rooms))
    app.add_handler(CommandHandler("room", room))
    app.add_handler(CommandHandler("dm", dm))
    app.add_handler(CommandHandler("handling", handling))
    app.add_handler(CommandHandler("introduce", introduce))
    app.add_handler(CallbackQueryHandler(room_button, pattern=r"^room:\d+$"))
    app.add_handler(CallbackQueryHandler(pick_button, pattern=r"^(dm|add):(c|a|o):"))
    app.add_handler(CallbackQueryHandler(remove_button, pattern=r"^rm:o:\d+:\d+$"))
