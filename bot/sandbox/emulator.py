"""A local Telegram Bot API server for tests, benchmarks and the sandbox.

It speaks the Bot API wire format at `{base}/bot{token}/{method}` (files at `{base}/file/bot{token}/...`),
enforces the Telegram rules a bot can trip over (HTML parse errors, 4096-character texts, 403 for users
who blocked the bot, 429 with retry_after when flood limits are exceeded) and lets a test or a web page
play the users through a control API (`{base}/control/...`, or the async methods below in-process).

Run it alone with `python -m bot.sandbox.emulator --port 8081`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import logging
import signal
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from aiohttp import web

from bot.sandbox.emulator_control import add_control_routes
from bot.sandbox.emulator_files import FileStore, image_size, media_object
from bot.sandbox.emulator_html import detect_entities, utf16_len
from bot.sandbox.emulator_limits import RateLimiter, RateLimits, RateMeter
from bot.sandbox.emulator_methods import MAX_CAPTION, MAX_TEXT, BotApiMethods, Params, Upload
from bot.sandbox.emulator_records import (
    ApiError,
    CallbackRecord,
    ControlError,
    Fault,
    MessageRecord,
    StoredFile,
    User,
    bad_request,
)
from bot.sandbox.emulator_state import BotState, ChatState, message_to_api, now_date, scope_key

logger = logging.getLogger(__name__)

#: A token that looks like a real one (so log redaction treats it as a secret) but is not.
DEFAULT_TOKEN = "1234567890:EMULATOR-token-not-a-real-one-0000"
_MAX_REQUEST_BYTES = 60 * 1024 * 1024
_FIRST_USER_ID = 100_000_001
_FIRST_GROUP_ID = -100_001
_dumps = partial(json.dumps, ensure_ascii=False)
T = TypeVar("T")


class BotApiEmulator:
    """An in-process Telegram Bot API server with a control API to play the users."""

    def __init__(
        self,
        token: str | None = None,
        *,
        username: str = "liaison_bot",
        first_name: str = "Liaison",
        rate_limits: RateLimits | None = None,
        strict_html: bool = True,
    ) -> None:
        self.rate_limits = rate_limits or RateLimits.telegram()
        #: Refuse an unescaped '&' in HTML (Telegram would show it literally; it is nearly always a bug).
        self.strict_html = strict_html
        self.limiter = RateLimiter(self.rate_limits)
        self.meter = RateMeter()
        self.files = FileStore()
        self.users_by_id: dict[int, User] = {}
        self.stopping = False
        self.base_url = ""
        self._bots: dict[str, BotState] = {}
        self._default_token: str | None = None
        self._methods = BotApiMethods(self)
        self._faults: list[Fault] = []
        self._fault_counter = 0
        self._next_user_id = _FIRST_USER_ID
        self._next_group_id = _FIRST_GROUP_ID
        self._subscribers: list[tuple[asyncio.Queue[dict[str, Any] | None], int | None]] = []
        self._event_seq = 0
        self._change = asyncio.Event()
        self._stop_event = asyncio.Event()
        self._runner: web.AppRunner | None = None
        if token:
            self.add_bot(token, username=username, first_name=first_name)

    # ----------------------------------------------------------------- server

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving; return the base URL (e.g. http://127.0.0.1:PORT)."""
        app = web.Application(client_max_size=_MAX_REQUEST_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        add_control_routes(app, self)
        self.stopping = False
        self._stop_event = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound_port}"
        logger.info("Bot API emulator listening on %s", self.base_url)
        return self.base_url

    async def stop(self) -> None:
        """Stop serving; pending long polls, delays and event streams end at once."""
        self.stopping = True
        self._stop_event.set()
        for bot in self._bots.values():
            bot.wake()
        for queue, _chat in self._subscribers:
            queue.put_nowait(None)
        self._changed()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BotApiEmulator:
        if not self.base_url or self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def add_bot(self, token: str, username: str = "liaison_bot", first_name: str = "Liaison") -> User:
        """Create a bot reachable with this token (the first one is the default for control calls)."""
        prefix = token.split(":", 1)[0]
        bot_id = int(prefix) if prefix.isdigit() else 9_000_000_000 + len(self._bots)
        user = User(id=bot_id, first_name=first_name, username=username, is_bot=True)
        self._bots[token] = BotState(token, user)
        self._default_token = self._default_token or token
        return user

    def bot_user(self, bot: str | None = None) -> User:
        """Return the bot's own User (what getMe answers)."""
        return self._bot(bot).user

    @property
    def bots(self) -> list[User]:
        """Return every bot's User."""
        return [state.user for state in self._bots.values()]

    def _bot(self, bot: str | None) -> BotState:
        """Return a bot by token or username (None: the default bot)."""
        if bot is None:
            if self._default_token is None:
                raise ControlError("no bot: call add_bot(token) first")
            return self._bots[self._default_token]
        if bot in self._bots:
            return self._bots[bot]
        for state in self._bots.values():
            if state.user.username == bot.lstrip("@"):
                return state
        raise ControlError(f"unknown bot {bot!r}")

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        """Answer one Bot API call."""
        bot = self._bots.get(request.match_info["token"])
        if bot is None:
            return _api_response(ApiError(401, "Unauthorized").payload(), 401)
        found = self._methods.find(request.match_info["method"])
        if found is None:
            return _api_response(ApiError(404, "Not Found").payload(), 404)
        name, method = found
        self.meter.calls[name] += 1
        try:
            params = await _read_params(request)
            fault = self._take_fault(name, params)
            if fault is not None:
                return await self._faulty_call(request, bot, name, method, params, fault)
            result = await method(bot, params)
        except ApiError as error:
            logger.debug("%s %s -> %s %s", bot.user.username, name, error.code, error.description)
            return _api_response(error.payload(), error.code)
        except Exception:
            # A bug in the emulator must not look like a network failure to the bot under test.
            logger.exception("emulator failure in %s", name)
            return _api_response(
                ApiError(500, f"Internal Server Error: emulator failure in {name}").payload(), 500
            )
        return _api_response({"ok": True, "result": result}, 200)

    async def _faulty_call(
        self, request: web.Request, bot: BotState, name: str, method: Any, params: Params, fault: Fault
    ) -> web.StreamResponse:
        """Carry out a call an injected fault applies to: delay, maybe process, then fail or drop."""
        if fault.delay:
            await self._sleep(fault.delay)
        error = fault.error()
        result = None
        if fault.process or (error is None and not fault.drop):
            result = await method(bot, params)
        if fault.drop:
            if request.transport is not None:
                request.transport.close()
            # aiohttp ends a cancelled handler quietly; the client sees a closed connection.
            raise asyncio.CancelledError
        if error is not None:
            if error.code == 429:
                self.meter.rejections["fault"] += 1
            raise error
        return _api_response({"ok": True, "result": result}, 200)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        """Serve a file download."""
        if request.match_info["token"] not in self._bots:
            return _api_response(ApiError(401, "Unauthorized").payload(), 401)
        stored = self.files.by_path(request.match_info["path"])
        if stored is None or stored.data is None:
            return _api_response(ApiError(404, "Not Found").payload(), 404)
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the emulator stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    # ----------------------------------------------------------------- notifications

    def _changed(self) -> None:
        """Wake everything waiting for a change (wait_for and friends)."""
        old, self._change = self._change, asyncio.Event()
        old.set()

    def emit(
        self, kind: str, bot: BotState, chat_id: int, record: MessageRecord | None = None, **data: Any
    ) -> None:
        """Publish an event to subscribers (in-process queues and GET /control/events); wake waiters."""
        self._event_seq += 1
        event: dict[str, Any] | None = None
        for queue, wanted_chat in self._subscribers:
            # A subscriber that stops reading loses events rather than filling the memory.
            if wanted_chat not in (None, chat_id) or queue.qsize() >= 10_000:
                continue
            if event is None:  # built only when someone listens: sends stay cheap in benchmarks
                event = {
                    "seq": self._event_seq,
                    "type": kind,
                    "bot": bot.user.username,
                    "time": time.time(),
                    "chat_id": chat_id,
                    **data,
                }
                if record is not None:
                    event["message"] = record.to_dict()
            queue.put_nowait(event)
        self._changed()

    def record_bot_message(self, bot: BotState, chat: ChatState, record: MessageRecord) -> None:
        """Note a message the bot sent."""
        self.emit("bot_message", bot, chat.id, record)

    def record_bot_edit(self, bot: BotState, chat: ChatState, record: MessageRecord) -> None:
        """Note an edit by the bot."""
        self.emit("bot_edit", bot, chat.id, record)

    def record_bot_delete(self, bot: BotState, chat: ChatState, record: MessageRecord) -> None:
        """Note a deletion by the bot."""
        self.emit("bot_delete", bot, chat.id, record, message_id=record.message_id)

    def subscribe(self, chat_id: int | None = None) -> asyncio.Queue[dict[str, Any] | None]:
        """Return a queue receiving every event (or those of one chat); None marks the emulator's stop."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._subscribers.append((queue, chat_id))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        """Stop sending events to a queue."""
        self._subscribers = [(q, c) for q, c in self._subscribers if q is not queue]

    # ----------------------------------------------------------------- users and their actions

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

    # ----------------------------------------------------------------- reading what happened

    def messages(
        self, chat_id: int, *, include_user: bool = False, bot: str | None = None
    ) -> list[MessageRecord]:
        """Return the bot's messages in a chat, oldest first (with include_user, the whole conversation).

        Records are live: later edits and deletions show in them (`history`, `deleted`).
        """
        chat = self._bot(bot).chats.get(chat_id)
        if chat is None:
            return []
        return [record for record in chat.messages.values() if include_user or record.from_bot]

    def message(self, chat_id: int, message_id: int, *, bot: str | None = None) -> MessageRecord:
        """Return one message of a chat (deleted ones included)."""
        chat = self._bot(bot).chats.get(chat_id)
        record = chat.messages.get(message_id) if chat else None
        if record is None:
            raise ControlError(f"no message {message_id} in chat {chat_id}")
        return record

    def set_message_date(self, chat_id: int, message_id: int, date: int, *, bot: str | None = None) -> None:
        """Pretend a message was sent at another time (e.g. to test the 48-hour deletion limit)."""
        self.message(chat_id, message_id, bot=bot).date = int(date)

    def callback(self, callback_id: str, *, bot: str | None = None) -> CallbackRecord:
        """Return a button press and the bot's answer to it (answered, text, show_alert)."""
        query = self._bot(bot).callbacks.get(callback_id)
        if query is None:
            raise ControlError(f"unknown callback query {callback_id}")
        return query

    def file_bytes(self, file_id: str) -> bytes:
        """Return the bytes of a file (sent by the bot or by a user)."""
        stored = self.files.get(file_id)
        if stored is None or stored.data is None:
            raise ControlError(f"unknown file {file_id}")
        return stored.data

    def file(self, file_id: str) -> StoredFile:
        """Return a stored file (with its bytes)."""
        stored = self.files.get(file_id)
        if stored is None:
            raise ControlError(f"unknown file {file_id}")
        return stored

    def pending_updates(self, *, bot: str | None = None) -> list[dict[str, Any]]:
        """Return the updates the bot has not confirmed yet."""
        return copy.deepcopy(self._bot(bot).updates)

    def chat_state(self, chat_id: int, *, bot: str | None = None) -> dict[str, Any]:
        """Return a chat's flags: type, started, blocked, last chat action."""
        chat = self._bot(bot).chats.get(chat_id)
        if chat is None:
            raise ControlError(f"unknown chat {chat_id}")
        return {
            "id": chat.id,
            "type": chat.type,
            "title": chat.title,
            "started": chat.started,
            "blocked": chat.blocked,
            "last_action": chat.last_action,
            "members": sorted(chat.member_ids),
        }

    def commands(
        self, scope: dict[str, Any] | None = None, language_code: str = "", *, bot: str | None = None
    ) -> list[dict[str, Any]]:
        """Return the command menu the bot set for a scope and language."""
        return copy.deepcopy(self._bot(bot).commands.get((scope_key(scope), language_code), []))

    def all_commands(self, *, bot: str | None = None) -> list[dict[str, Any]]:
        """Return every command menu the bot set, with its scope and language."""
        return [
            {"scope": json.loads(scope), "language_code": lang, "commands": copy.deepcopy(commands)}
            for (scope, lang), commands in self._bot(bot).commands.items()
        ]

    async def wait_for(
        self, predicate: Callable[[], T], timeout: float = 5.0, message: str | None = None
    ) -> T:
        """Wait until predicate() returns something truthy and return it; TimeoutError after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0 or self.stopping:
                raise TimeoutError(message or f"condition not met within {timeout} s")
            event = self._change
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def wait_for_messages(
        self, chat_id: int, n: int = 1, timeout: float = 5.0, *, bot: str | None = None
    ) -> list[MessageRecord]:
        """Wait until the bot has sent at least n messages to the chat; return all of them."""

        def enough() -> list[MessageRecord]:
            found = self.messages(chat_id, bot=bot)
            return found if len(found) >= n else []

        try:
            return await self.wait_for(enough, timeout)
        except TimeoutError:
            got = [record.body[:80] for record in self.messages(chat_id, bot=bot)]
            raise TimeoutError(
                f"chat {chat_id}: expected {n} bot messages within {timeout} s, got {len(got)}: {got}"
            ) from None

    async def wait_for_callback_answer(
        self, callback_id: str, timeout: float = 5.0, *, bot: str | None = None
    ) -> CallbackRecord:
        """Wait until the bot answered a button press; return the press with the answer."""
        query = self.callback(callback_id, bot=bot)
        await self.wait_for(
            lambda: query.answered, timeout, f"callback {callback_id} not answered in {timeout} s"
        )
        return query

    # ----------------------------------------------------------------- faults, limits, reset

    def inject_fault(
        self,
        method: str,
        *,
        times: int = 1,
        chat_id: int | None = None,
        error_code: int | None = None,
        description: str | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
        drop: bool = False,
        process: bool = False,
    ) -> Fault:
        """Make the next `times` calls of a Bot API method ("*" for any) misbehave; see Fault."""
        if error_code is None and retry_after is None and not drop and not delay:
            raise ControlError("a fault needs an error_code, retry_after, drop or delay")
        self._fault_counter += 1
        fault = Fault(
            method=method,
            times=times,
            chat_id=chat_id,
            error_code=error_code,
            description=description,
            retry_after=retry_after,
            delay=delay,
            drop=drop,
            process=process,
            id=self._fault_counter,
        )
        self._faults.append(fault)
        return fault

    def faults(self) -> list[Fault]:
        """Return the injected faults that still have calls to spoil."""
        return [fault for fault in self._faults if fault.times > 0]

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._faults.clear()

    def _take_fault(self, method: str, params: Params) -> Fault | None:
        """Return (and use up once) the first fault matching this call."""
        try:
            chat_id = params.integer("chat_id")
        except ApiError:
            chat_id = None
        for fault in self._faults:
            if fault.matches(method.lower(), chat_id):
                fault.times -= 1
                fault.used += 1
                return fault
        return None

    def set_rate_limits(self, limits: RateLimits) -> None:
        """Change the enforced limits (counts already in the windows stay)."""
        self.rate_limits = limits
        self.limiter.limits = limits

    def stats(self) -> dict[str, Any]:
        """Return the meter's figures plus a few counts."""
        return {
            **self.meter.summary(),
            "users": len(self.users_by_id),
            "pending_updates": {state.user.username: len(state.updates) for state in self._bots.values()},
            "faults": [fault.to_dict() for fault in self.faults()],
        }

    async def reset(self) -> None:
        """Forget users, chats, messages, files, faults and measurements; keep the bots and the limits."""
        for state in self._bots.values():
            state.reset()
        self.users_by_id.clear()
        self.files.clear()
        self._faults.clear()
        self.meter.reset()
        self.limiter.reset()
        self._changed()


def _until(status: str) -> dict[str, Any]:
    """Return the extra field a banned ("kicked") chat member carries."""
    return {"until_date": 0} if status == "kicked" else {}


def _api_response(payload: dict[str, Any], status: int) -> web.Response:
    """Return a JSON response in the Bot API's shape."""
    return web.json_response(payload, status=status, dumps=_dumps)


async def _read_params(request: web.Request) -> Params:
    """Collect a call's parameters from the query string and a JSON, form or multipart body."""
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if not request.body_exists:
        return Params(values, uploads)
    content_type = request.content_type
    try:
        if content_type == "application/json":
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise bad_request("can't parse JSON encoded request body") from None
                if not isinstance(body, dict):
                    raise bad_request("JSON request body must be an object")
                values.update(body)
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    with value.file as handle:
                        uploads[key] = Upload(value.filename, value.content_type, handle.read())
                else:
                    values[key] = value
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "Request Entity Too Large") from None
    return Params(values, uploads)


async def _serve(args: argparse.Namespace) -> None:
    """Run the emulator until SIGINT or SIGTERM."""
    from bot.cli import out

    limits = RateLimits.unlimited() if args.unlimited else RateLimits.telegram()
    emulator = BotApiEmulator(
        args.token, username=args.username, first_name=args.first_name, rate_limits=limits
    )
    url = await emulator.start(args.host, args.port)
    out(url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await emulator.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator as a separate process; print its base URL on the first line."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.sandbox.emulator",
        description="Local Telegram Bot API emulator with a control API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument(
        "--token", default=DEFAULT_TOKEN, help="the bot token it accepts (a fake one by default)"
    )
    parser.add_argument("--username", default="liaison_bot")
    parser.add_argument("--first-name", default="Liaison")
    parser.add_argument("--unlimited", action="store_true", help="do not enforce Telegram's rate limits")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
