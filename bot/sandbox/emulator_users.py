"""The users' side of the emulator: people who write to the bot, press its buttons, send files, block it.

`UserActions` is mixed into BotApiEmulator; each action stores what the user did and queues the
update Telegram would send the bot (message, edited_message, callback_query, my_chat_member).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.sandbox.emulator_files import FileStore, image_size, media_object
from bot.sandbox.emulator_html import detect_entities, utf16_len
from bot.sandbox.emulator_methods import MAX_CAPTION, MAX_TEXT
from bot.sandbox.emulator_records import CallbackRecord, ControlError, MessageRecord, User
from bot.sandbox.emulator_state import BotState, ChatState, message_to_api, now_date

#: Ids given to users and groups created without an explicit id.
FIRST_USER_ID = 100_000_001
FIRST_GROUP_ID = -100_001


class UserActions:
    """Create users and act as them (the in-process half of the control API)."""

    # Provided by BotApiEmulator.
    users_by_id: dict[int, User]
    files: FileStore
    _next_user_id: int
    _next_group_id: int

    if TYPE_CHECKING:

        def _bot(self, bot: str | None) -> BotState: ...

        def emit(
            self, kind: str, bot: BotState, chat_id: int, record: MessageRecord | None = None, **data: Any
        ) -> None: ...

    async def create_user(
        self,
        first_name: str = "Test",
        *,
        user_id: int | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        started: bool = False,
        bot: str | None = None,
    ) -> User:
        """Create a Telegram user; with `started`, as if they had already opened the bot's chat."""
        if user_id is None:
            while self._next_user_id in self.users_by_id:
                self._next_user_id += 1
            user_id = self._next_user_id
            self._next_user_id += 1
        if user_id in self.users_by_id or user_id <= 0:
            raise ControlError(f"user id {user_id} is taken or invalid")
        user = User(
            id=user_id,
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
        )
        self.users_by_id[user_id] = user
        state = self._bot(bot)
        state.private_chat(user_id).started = started
        self.emit("user_created", state, user_id, user=user.to_dict())
        return user

    def users(self) -> list[User]:
        """Return every user."""
        return list(self.users_by_id.values())

    async def create_group(
        self, title: str, member_ids: Sequence[int], *, chat_id: int | None = None, bot: str | None = None
    ) -> int:
        """Create a group chat with the bot and these users in it; return its (negative) id."""
        state = self._bot(bot)
        if chat_id is None:
            chat_id = self._next_group_id
            self._next_group_id -= 1
        if chat_id >= 0 or chat_id in state.chats:
            raise ControlError(f"group id {chat_id} is taken or invalid")
        for member in member_ids:
            self._user(member)
        state.chats[chat_id] = ChatState(id=chat_id, type="group", title=title, member_ids=set(member_ids))
        return chat_id

    def _user(self, user_id: int) -> User:
        """Return a user or fail with a clear control error."""
        user = self.users_by_id.get(int(user_id))
        if user is None:
            raise ControlError(f"unknown user {user_id}: create_user first")
        return user

    def _user_chat(self, state: BotState, user_id: int, chat_id: int | None) -> ChatState:
        """Return the chat a user writes in: their private chat with the bot, or a group they belong to."""
        self._user(user_id)
        if chat_id is None or chat_id == user_id:
            chat = state.private_chat(user_id)
            if chat.blocked:
                raise ControlError(
                    f"user {user_id} blocked the bot: unblock first (Telegram shows 'Restart')"
                )
            return chat
        group = state.chats.get(chat_id)
        if group is None or user_id not in group.member_ids:
            raise ControlError(f"user {user_id} is not in chat {chat_id}")
        return group

    def _reply_target(self, chat: ChatState, reply_to: int | None) -> int | None:
        """Check that a user's reply points at an existing message."""
        if reply_to is not None and chat.live(reply_to) is None:
            raise ControlError(f"message {reply_to} does not exist in chat {chat.id}")
        return reply_to

    def _user_post(self, state: BotState, chat: ChatState, record: MessageRecord) -> MessageRecord:
        """Store a user's message and send the bot its update."""
        record.date = now_date()
        record.method = "user"
        chat.add(record)
        if not chat.is_group:
            chat.started = True
        if self._bot_sees(state, chat, record):
            state.enqueue("message", message_to_api(state, chat, record, self.users_by_id))
        self.emit("user_message", state, chat.id, record)
        return record

    def _bot_sees(self, state: BotState, chat: ChatState, record: MessageRecord) -> bool:
        """Apply group privacy mode: a bot sees commands, replies to it and mentions of it only."""
        if not chat.is_group or not state.privacy_mode:
            return True
        target = chat.live(record.reply_to_message_id)
        return (
            record.body.startswith("/")
            or f"@{state.user.username}" in record.body
            or (target is not None and target.from_bot)
        )

    def _user_record(
        self, chat: ChatState, user_id: int, kind: str, reply_to: int | None, **fields: Any
    ) -> MessageRecord:
        """Return a new, unsaved message record of a user."""
        return MessageRecord(
            chat_id=chat.id,
            message_id=0,
            from_bot=False,
            sender_id=user_id,
            date=0,
            kind=kind,
            reply_to_message_id=self._reply_target(chat, reply_to),
            **fields,
        )

    async def send_text(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        reply_to: int | None = None,
        entities: list[dict[str, Any]] | None = None,
        bot: str | None = None,
    ) -> MessageRecord:
        """Send a text as the user (commands such as "/start CODE" get a bot_command entity)."""
        state = self._bot(bot)
        chat = self._user_chat(state, user_id, chat_id)
        if not text.strip():
            raise ControlError("Telegram clients do not send empty messages")
        if utf16_len(text) > MAX_TEXT:
            raise ControlError("longer than 4096 UTF-16 code units: Telegram clients split such texts")
        record = self._user_record(
            chat,
            user_id,
            "text",
            reply_to,
            text=text,
            entities=detect_entities(text) if entities is None else entities,
        )
        return self._user_post(state, chat, record)

    async def edit_text(
        self, user_id: int, message_id: int, text: str, *, chat_id: int | None = None, bot: str | None = None
    ) -> MessageRecord:
        """Edit, as the user, an earlier text (or a media caption); the bot gets an edited_message."""
        state = self._bot(bot)
        chat = self._user_chat(state, user_id, chat_id)
        record = chat.live(message_id)
        if record is None or record.from_bot or record.sender_id != user_id:
            raise ControlError(f"user {user_id} has no message {message_id} in chat {chat.id}")
        if record.kind in ("location", "contact", "sticker"):
            raise ControlError(f"a {record.kind} has no text to edit")
        if text == record.body or (record.kind == "text" and not text.strip()):
            raise ControlError("the new text is empty or unchanged")
        limit = MAX_TEXT if record.kind == "text" else MAX_CAPTION
        if utf16_len(text) > limit:
            raise ControlError(f"longer than {limit} UTF-16 code units")
        record.history.append(record.version())
        if record.kind == "text":
            record.text = text
        else:
            record.caption = text
        record.entities, record.edit_date = detect_entities(text), now_date()
        if self._bot_sees(state, chat, record):
            state.enqueue("edited_message", message_to_api(state, chat, record, self.users_by_id))
        self.emit("user_edit", state, chat.id, record)
        return record

    async def press_button(
        self,
        user_id: int,
        message_id: int,
        callback_data: str | None = None,
        *,
        button_text: str | None = None,
        chat_id: int | None = None,
        bot: str | None = None,
    ) -> str:
        """Press an inline button (found by callback_data or label) as the user; return the callback id."""
        state = self._bot(bot)
        chat = self._user_chat(state, user_id, chat_id)
        record = chat.live(message_id)
        if record is None or not record.from_bot:
            raise ControlError(f"no bot message {message_id} in chat {chat.id}")
        for button in record.buttons:
            if (callback_data is not None and button.get("callback_data") == callback_data) or (
                callback_data is None and button_text is not None and button.get("text") == button_text
            ):
                break
        else:
            raise ControlError(
                f"message {message_id} has no button {callback_data or button_text!r}; "
                f"buttons: {record.button_texts}"
            )
        if "callback_data" not in button:
            raise ControlError(f"button {button.get('text')!r} opens a link, it sends no callback query")
        query = CallbackRecord(
            id=state.next_callback_id(),
            user_id=user_id,
            chat_id=chat.id,
            message_id=message_id,
            data=button["callback_data"],
        )
        state.callbacks[query.id] = query
        payload = {
            "id": query.id,
            "from": self._user(user_id).to_api(),
            "message": message_to_api(state, chat, record, self.users_by_id),
            "chat_instance": str(abs(hash((state.user.id, chat.id)))),
            "data": query.data,
        }
        state.enqueue("callback_query", payload)
        self.emit("callback_query", state, chat.id, callback=query.to_dict())
        return query.id

    def _caption(self, caption: str | None) -> dict[str, Any]:
        """Return the caption fields of a user's media message."""
        if caption and utf16_len(caption) > MAX_CAPTION:
            raise ControlError("caption longer than 1024 UTF-16 code units")
        return {"caption": caption or "", "entities": detect_entities(caption or "")}

    async def _send_file(
        self,
        user_id: int,
        kind: str,
        data: bytes,
        file_name: str | None,
        mime_type: str | None,
        caption: str | None,
        chat_id: int | None,
        reply_to: int | None,
        bot: str | None,
        **extra: Any,
    ) -> MessageRecord:
        """Send a document, voice note or video as the user."""
        state = self._bot(bot)
        chat = self._user_chat(state, user_id, chat_id)
        if not data:
            raise ControlError("a file must not be empty")
        stored = self.files.add(kind, data, file_name, mime_type)
        record = self._user_record(
            chat,
            user_id,
            kind,
            reply_to,
            media={kind: media_object(stored, **extra)},
            file=stored,
            **self._caption(caption),
        )
        return self._user_post(state, chat, record)

    async def send_photo(
        self,
        user_id: int,
        data: bytes,
        *,
        caption: str | None = None,
        width: int | None = None,
        height: int | None = None,
        chat_id: int | None = None,
        reply_to: int | None = None,
        bot: str | None = None,
    ) -> MessageRecord:
        """Send a photo as the user (PNG/JPEG/GIF/WebP; several sizes, the largest holds the bytes)."""
        state = self._bot(bot)
        chat = self._user_chat(state, user_id, chat_id)
        size = image_size(data) or ((width, height) if width and height else None)
        if size is None:
            raise ControlError("not a PNG, JPEG, GIF or WebP image: give width and height")
        sizes, largest = self.files.photo_sizes(data, *size)
        record = self._user_record(
            chat, user_id, "photo", reply_to, media={"photo": sizes}, file=largest, **self._caption(caption)
        )
        return self._user_post(state, chat, record)

    async def send_document(
        self,
        user_id: int,
        data: bytes,
        file_name: str,
        *,
        mime_type: str | None = None,
        caption: str | None = None,
        chat_id: int | None = None,
        reply_to: int | None = None,
        bot: str | None = None,
    ) -> MessageRecord:
        """Send a document as the user."""
        return await self._send_file(
            user_id, "document", data, file_name, mime_type, caption, chat_id, reply_to, bot
        )

    async def send_voice(
        self,
        user_id: int,
        data: bytes,
        *,
        duration: int = 1,
        mime_type: str = "audio/ogg",
        caption: str | None = None,
        chat_id: int | None = None,
        reply_to: int | None = None,
        bot: str | None = None,
    ) -> MessageRecord:
        """Send a voice note as the user."""
        return await self._send_file(
            user_id, "voice", data, None, mime_type, caption, chat_id, reply_to, bot, duration=duration
        )

    async def send_video(
        self,
        user_id: int,
        data: bytes,
        *,
        width: int = 640,
        height: int = 360,
        duration: int = 1,
        mime_type: str = "video/mp4",
        file_name: str | None = None,
        caption: str | None = None,
        chat_id: int | None = None,
        reply_to: int | None = None,
        bot: str | None = None,
    ) -> MessageRecord:
        """Send a video as the user."""
        return await self._send_file(
            user_id,
            "video",
            data,
            file_name,
            mime_type,
            caption,
            chat_id,
            reply_to,
            bot,
            width=width,
            height=height,
            duration=duration,
        )

    async def send_location(
        self,
        user_id: int,
        latitude: float,
        longitude: float,
        *,
        chat_id: int | None = None,
        reply_to: int | None = None,
        bot: str | None = None,
    ) -> MessageRecord:
        """Share a location as the user."""
        state = self._bot(bot)
        chat = self._user_chat(state, user_id, chat_id)
        record = self._user_record(
            chat,
            user_id,
            "location",
            reply_to,
            media={"location": {"latitude": float(latitude), "longitude": float(longitude)}},
        )
        return self._user_post(state, chat, record)

    async def send_contact(
        self,
        user_id: int,
        phone_number: str,
        first_name: str,
        *,
        last_name: str | None = None,
        contact_user_id: int | None = None,
        chat_id: int | None = None,
        reply_to: int | None = None,
        bot: str | None = None,
    ) -> MessageRecord:
        """Share a phone contact as the user."""
        state = self._bot(bot)
        chat = self._user_chat(state, user_id, chat_id)
        contact: dict[str, Any] = {"phone_number": phone_number, "first_name": first_name}
        if last_name:
            contact["last_name"] = last_name
        if contact_user_id:
            contact["user_id"] = contact_user_id
        record = self._user_record(chat, user_id, "contact", reply_to, media={"contact": contact})
        return self._user_post(state, chat, record)

    async def send_sticker(
        self,
        user_id: int,
        *,
        emoji: str = "🙂",
        data: bytes = b"RIFF\0\0\0\0WEBP",
        chat_id: int | None = None,
        reply_to: int | None = None,
        bot: str | None = None,
    ) -> MessageRecord:
        """Send a sticker as the user."""
        state = self._bot(bot)
        chat = self._user_chat(state, user_id, chat_id)
        stored = self.files.add("sticker", data, None, "image/webp")
        sticker = media_object(
            stored, type="regular", width=512, height=512, is_animated=False, is_video=False, emoji=emoji
        )
        sticker.pop("mime_type", None)
        record = self._user_record(
            chat, user_id, "sticker", reply_to, media={"sticker": sticker}, file=stored
        )
        return self._user_post(state, chat, record)

    async def block(self, user_id: int, *, bot: str | None = None) -> None:
        """Block the bot as the user: sends then fail with 403; the bot gets a my_chat_member update."""
        await self._set_blocked(user_id, True, bot)

    async def unblock(self, user_id: int, *, bot: str | None = None) -> None:
        """Unblock (restart) the bot as the user."""
        await self._set_blocked(user_id, False, bot)

    async def _set_blocked(self, user_id: int, blocked: bool, bot: str | None) -> None:
        """Change the blocked flag of a private chat and tell the bot, as Telegram does."""
        state = self._bot(bot)
        user = self._user(user_id)
        chat = state.private_chat(user_id)
        if chat.blocked == blocked:
            return
        chat.blocked = blocked
        chat.started = chat.started or not blocked
        old, new = ("member", "kicked") if blocked else ("kicked", "member")
        member = {"user": state.user.to_api()}
        payload = {
            "chat": {"id": user.id, "type": "private", "first_name": user.first_name},
            "from": user.to_api(),
            "date": now_date(),
            "old_chat_member": {**member, "status": old, **_until(old)},
            "new_chat_member": {**member, "status": new, **_until(new)},
        }
        state.enqueue("my_chat_member", payload)
        self.emit("block" if blocked else "unblock", state, user_id)


def _until(status: str) -> dict[str, Any]:
    """Return the extra field a banned ("kicked") chat member carries."""
    return {"until_date": 0} if status == "kicked" else {}
