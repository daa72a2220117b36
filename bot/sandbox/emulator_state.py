"""The world as one bot sees it: its chats and their messages, its queue of updates, its settings."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.emulator_records import CallbackRecord, MessageRecord, User

#: Update types getUpdates delivers when the bot never said which it wants (Telegram's default).
DEFAULT_ALLOWED_UPDATES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)


@dataclass
class ChatState:
    """A chat the bot is in: a private chat with one user (id == user id) or a group."""

    id: int
    type: str  # "private" or "group"
    user_id: int | None = None
    title: str | None = None
    member_ids: set[int] = field(default_factory=set)
    started: bool = False  # the user has written to the bot (private chats)
    blocked: bool = False  # the user blocked the bot (private chats)
    messages: dict[int, MessageRecord] = field(default_factory=dict)
    next_message_id: int = 1
    last_action: str | None = None

    @property
    def is_group(self) -> bool:
        """Tell whether this is a group chat."""
        return self.type != "private"

    def add(self, record: MessageRecord) -> MessageRecord:
        """Give the record the chat's next message id and store it."""
        record.message_id = self.next_message_id
        self.next_message_id += 1
        self.messages[record.message_id] = record
        return record

    def live(self, message_id: int | None) -> MessageRecord | None:
        """Return the message with this id unless it does not exist or was deleted."""
        record = self.messages.get(message_id) if message_id is not None else None
        return record if record is not None and not record.deleted else None


class _Poll:
    """One getUpdates request in progress; a newer request supersedes it, as on Telegram."""

    __slots__ = ("superseded",)

    def __init__(self) -> None:
        self.superseded = False


class BotState:
    """Everything the emulator keeps for one bot token."""

    def __init__(self, token: str, user: User) -> None:
        self.token = token
        self.user = user
        self.privacy_mode = True
        self.chats: dict[int, ChatState] = {}
        self.updates: list[dict[str, Any]] = []  # not yet confirmed by an offset
        self.next_update_id = 1
        self.allowed_updates: frozenset[str] = DEFAULT_ALLOWED_UPDATES
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.texts: dict[tuple[str, str], str] = {}  # (description|short_description|name, lang) -> text
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.callbacks: dict[str, CallbackRecord] = {}
        self.callback_counter = 0
        self.poll: _Poll | None = None
        self.wakeup = asyncio.Event()

    def wake(self) -> None:
        """Wake every getUpdates request waiting on this bot."""
        old, self.wakeup = self.wakeup, asyncio.Event()
        old.set()

    def enqueue(self, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Queue an update of the given kind unless the bot's allowed_updates exclude it."""
        if kind not in self.allowed_updates:
            return None
        update = {"update_id": self.next_update_id, kind: payload}
        self.next_update_id += 1
        self.updates.append(update)
        self.wake()
        return update

    def confirm(self, offset: int | None) -> None:
        """Forget updates confirmed by getUpdates' offset (a negative offset keeps the last -offset)."""
        if offset is None or offset == 0:
            return
        if offset < 0:
            self.updates = self.updates[offset:]
        else:
            self.updates = [update for update in self.updates if update["update_id"] >= offset]

    def new_poll(self) -> _Poll:
        """Register a getUpdates request, superseding the one in progress (it will get 409 Conflict)."""
        if self.poll is not None:
            self.poll.superseded = True
            self.wake()
        self.poll = _Poll()
        return self.poll

    def private_chat(self, user_id: int) -> ChatState:
        """Return the private chat with a user, creating it if needed."""
        chat = self.chats.get(user_id)
        if chat is None:
            chat = self.chats[user_id] = ChatState(id=user_id, type="private", user_id=user_id)
        return chat

    def next_callback_id(self) -> str:
        """Return a new callback query id (a long number as a string, like Telegram's)."""
        self.callback_counter += 1
        return f"{self.user.id % 10**9}{self.callback_counter:09d}"

    def reset(self) -> None:
        """Forget chats, updates and settings; update ids keep growing so a running bot is not confused."""
        self.chats.clear()
        self.updates.clear()
        self.allowed_updates = DEFAULT_ALLOWED_UPDATES
        self.commands.clear()
        self.texts.clear()
        self.menu_buttons.clear()
        self.callbacks.clear()


def scope_key(scope: dict[str, Any] | None) -> str:
    """Return a canonical key for a BotCommandScope (the default scope when None)."""
    return json.dumps(scope or {"type": "default"}, sort_keys=True, separators=(",", ":"))


def chat_to_api(chat: ChatState, users: dict[int, User]) -> dict[str, Any]:
    """Return the Bot API Chat object."""
    if chat.is_group:
        return {"id": chat.id, "type": chat.type, "title": chat.title or ""}
    data: dict[str, Any] = {"id": chat.id, "type": "private"}
    user = users.get(chat.user_id or chat.id)
    if user is not None:
        data["first_name"] = user.first_name
        for key in ("last_name", "username"):
            if getattr(user, key):
                data[key] = getattr(user, key)
    return data


def message_to_api(
    bot: BotState, chat: ChatState, record: MessageRecord, users: dict[int, User], with_reply: bool = True
) -> dict[str, Any]:
    """Return the Bot API Message object for a stored message (its current version)."""
    sender = bot.user if record.from_bot else users[record.sender_id]
    data: dict[str, Any] = {
        "message_id": record.message_id,
        "from": sender.to_api(),
        "chat": chat_to_api(chat, users),
        "date": record.date,
    }
    if record.forward_origin:
        data["forward_origin"] = copy.deepcopy(record.forward_origin)
    if with_reply and record.reply_to_message_id is not None:
        target = chat.live(record.reply_to_message_id)
        if target is not None:
            data["reply_to_message"] = message_to_api(bot, chat, target, users, with_reply=False)
    if record.edit_date:
        data["edit_date"] = record.edit_date
    if record.protect_content:
        data["has_protected_content"] = True
    if record.text is not None:
        data["text"] = record.text
        if record.entities:
            data["entities"] = copy.deepcopy(record.entities)
    data.update(copy.deepcopy(record.media))
    if record.caption:
        data["caption"] = record.caption
        if record.entities:
            data["caption_entities"] = copy.deepcopy(record.entities)
    if record.reply_markup and "inline_keyboard" in record.reply_markup:
        data["reply_markup"] = copy.deepcopy(record.reply_markup)
    return data


def now_date() -> int:
    """Return the current Unix time in whole seconds (Telegram's `date`)."""
    return int(time.time())
