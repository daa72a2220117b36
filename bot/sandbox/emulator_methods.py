"""The Bot API methods the emulator implements, with Telegram's checks and error messages."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.sandbox.emulator_files import MAX_DOWNLOAD_BYTES, MAX_UPLOAD_BYTES, image_size, media_object
from bot.sandbox.emulator_html import EntityParseError, detect_entities, parse_html, trim, utf16_len
from bot.sandbox.emulator_records import ApiError, MessageRecord, StoredFile, bad_request, too_many_requests
from bot.sandbox.emulator_state import (
    DEFAULT_ALLOWED_UPDATES,
    BotState,
    ChatState,
    chat_to_api,
    message_to_api,
    now_date,
    scope_key,
)

if TYPE_CHECKING:
    from bot.sandbox.emulator import BotApiEmulator

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_CALLBACK_ANSWER = 200
DELETE_WINDOW = 48 * 3600
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"


@dataclass
class Upload:
    """A file part of a multipart/form-data request."""

    filename: str | None
    content_type: str | None
    data: bytes


class Params:
    """The parameters of one Bot API call, whatever their encoding (query, JSON, form, multipart).

    Form and multipart requests carry every value as a string (python-telegram-bot sends numbers as
    "123", booleans as "true" and objects such as reply_markup as JSON text); JSON bodies carry real
    types. The accessors accept both, like the Bot API server does.
    """

    def __init__(self, values: dict[str, Any], uploads: dict[str, Upload] | None = None) -> None:
        self.values = values
        self.uploads = uploads or {}

    def has(self, name: str) -> bool:
        """Tell whether the parameter was given with a non-empty value."""
        return self.values.get(name) not in (None, "")

    def text(self, name: str, default: str | None = None) -> str | None:
        """Return a parameter as text."""
        value = self.values.get(name)
        if value is None:
            return default
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    def integer(self, name: str, default: int | None = None) -> int | None:
        """Return a parameter as an integer (400 if it is not one)."""
        value = self.values.get(name)
        if value in (None, ""):
            return default
        if isinstance(value, bool):
            raise bad_request(f"invalid {name} specified")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def number(self, name: str) -> float:
        """Return a required parameter as a number."""
        value = self.values.get(name)
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise bad_request(
                f"{name} is empty" if value in (None, "") else f"invalid {name} specified"
            ) from None

    def flag(self, name: str, default: bool = False) -> bool:
        """Return a parameter as a boolean ("true"/"false" in forms)."""
        value = self.values.get(name)
        if value in (None, ""):
            return default
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("true", "1", "yes")

    def json_value(self, name: str) -> Any:
        """Return a parameter holding an object or array (JSON text in forms)."""
        value = self.values.get(name)
        if value in (None, ""):
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {name} JSON object") from None
        return value

    def chat_id(self, name: str = "chat_id") -> int:
        """Return the target chat id (the emulator has no public @usernames: those are unknown chats)."""
        value = self.values.get(name)
        if value in (None, ""):
            raise bad_request(f"{name} is empty")
        try:
            return int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise bad_request("chat not found") from None

    def message_id(self, name: str = "message_id") -> int:
        """Return a required message id."""
        value = self.integer(name)
        if value is None:
            raise bad_request("message identifier is not specified")
        return value


Method = Callable[[BotState, Params], Awaitable[Any]]


class BotApiMethods:
    """Implements each Bot API method against the emulator's state."""

    def __init__(self, emulator: BotApiEmulator) -> None:
        self.emu = emulator
        #: lower-case method name -> (canonical name, implementation)
        self.table: dict[str, tuple[str, Method]] = {}
        for name in dir(self):
            if name.startswith("api_"):
                canonical = name[len("api_") :]
                self.table[canonical.lower()] = (canonical, getattr(self, name))

    def find(self, method: str) -> tuple[str, Method] | None:
        """Return (canonical name, implementation) of a method; names are case-insensitive."""
        return self.table.get(method.lower())

    # ----------------------------------------------------------------- helpers

    def _api(self, bot: BotState, chat: ChatState, record: MessageRecord) -> dict[str, Any]:
        """Return the Message object the Bot API answers with."""
        return message_to_api(bot, chat, record, self.emu.users_by_id)

    def _known_chat(self, bot: BotState, chat_id: int) -> ChatState:
        """Return a chat the bot can address (a known user's private chat, or a group), else 400."""
        chat = bot.chats.get(chat_id)
        if chat is None and chat_id in self.emu.users_by_id:
            chat = bot.private_chat(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def _writable_chat(self, bot: BotState, p: Params) -> ChatState:
        """Return the chat a send goes to, refusing users who blocked or never started the bot (403)."""
        chat = self._known_chat(bot, p.chat_id())
        if not chat.is_group:
            if chat.blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if not chat.started:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        return chat

    def _formatted(
        self, p: Params, field: str, entities_field: str, limit: int, too_long: str, empty: str | None
    ) -> tuple[str, list[dict[str, Any]], str | None, str | None]:
        """Parse a text or caption with its parse_mode; return (plain text, entities, raw, parse_mode)."""
        raw = p.text(field)
        parse_mode = p.text("parse_mode") or None
        if raw is None:
            raw = ""
        if parse_mode is None:
            given = p.json_value(entities_field) or []
            if not isinstance(given, list):
                raise bad_request(f"can't parse {entities_field} JSON object")
            plain, entities = trim(raw, given)
        elif parse_mode.lower() == "html":
            try:
                plain, entities = parse_html(raw, strict=self.emu.strict_html)
            except EntityParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from None
        else:
            raise bad_request(f"unsupported parse_mode {parse_mode!r} (the emulator implements HTML only)")
        if empty is not None and not plain:
            raise bad_request(empty)
        if utf16_len(plain) > limit:
            raise bad_request(too_long)
        return plain, _with_detected(plain, entities), raw, parse_mode

    def _markup(self, p: Params) -> dict[str, Any] | None:
        """Return the validated reply_markup, if any."""
        markup = p.json_value("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            _check_inline_keyboard(markup["inline_keyboard"])
        elif not any(key in markup for key in ("keyboard", "remove_keyboard", "force_reply")):
            raise bad_request("can't parse reply keyboard markup JSON object")
        return markup

    def _reply_to(self, chat: ChatState, p: Params) -> int | None:
        """Return the id of the message replied to, checking that it exists (or is allowed to miss)."""
        params = p.json_value("reply_parameters") or {}
        if not isinstance(params, dict):
            raise bad_request("can't parse reply parameters JSON object")
        message_id = params.get("message_id", p.integer("reply_to_message_id"))
        if message_id is None:
            return None
        allow = params.get("allow_sending_without_reply", p.flag("allow_sending_without_reply"))
        other_chat = params.get("chat_id")
        if other_chat not in (None, chat.id):
            raise bad_request("message to be replied not found")
        if chat.live(int(message_id)) is None:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return int(message_id)

    def _deliver(self, bot: BotState, chat: ChatState, method: str, record: MessageRecord) -> MessageRecord:
        """Check the flood limits, then store a message the bot sends and tell the watchers."""
        self._take_rate_slot(bot, chat, method)
        record.date = now_date()
        record.method = method
        chat.add(record)
        self.emu.record_bot_message(bot, chat, record)
        return record

    def _take_rate_slot(self, bot: BotState, chat: ChatState, method: str) -> None:
        """Refuse with 429 when one more message would break a limit; otherwise count it."""
        if not self.emu.rate_limits.applies_to(method.lower()):
            return
        now = time.monotonic()
        refused = self.emu.limiter.acquire(bot.user.id, chat.id, chat.is_group, now)
        if refused is not None:
            scope, retry_after = refused
            self.emu.meter.rejections[scope] += 1
            raise too_many_requests(retry_after)
        self.emu.meter.record_send(now, bot.user.id, chat.id, method)

    def _common(self, p: Params) -> dict[str, Any]:
        """Return the send options every message keeps."""
        preview = p.json_value("link_preview_options")
        if preview is None and p.has("disable_web_page_preview"):
            preview = {"is_disabled": p.flag("disable_web_page_preview")}
        return {
            "protect_content": p.flag("protect_content"),
            "disable_notification": p.flag("disable_notification"),
            "link_preview_options": preview,
        }

    def _input_file(self, p: Params, field: str, kind: str) -> StoredFile:
        """Return the file given in `field`: a new upload, an attach:// part, or an existing file_id."""
        upload = p.uploads.get(field)
        value = p.values.get(field)
        if upload is None and isinstance(value, str) and value.startswith("attach://"):
            upload = p.uploads.get(value[len("attach://") :])
        if upload is not None:
            if not upload.data:
                raise bad_request("file must be non-empty")
            if len(upload.data) > MAX_UPLOAD_BYTES:
                raise ApiError(413, "Request Entity Too Large")
            return self.emu.files.add(kind, upload.data, upload.filename, upload.content_type)
        if value in (None, ""):
            raise bad_request(f"there is no {field} in the request")
        if not isinstance(value, str):
            raise bad_request("wrong file identifier/HTTP URL specified")
        if value.startswith(("http://", "https://")):
            raise bad_request("failed to get HTTP URL content (the emulator has no internet access)")
        stored = self.emu.files.get(value)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if stored.kind != kind:  # a file_id is bound to its type on Telegram
            raise bad_request(f"can't use file of type {stored.kind.title()} as {kind.title()}")
        return stored

    async def _send_media(self, bot: BotState, p: Params, method: str, kind: str) -> dict[str, Any]:
        """Send a photo, document, voice, video, audio or animation with an optional caption."""
        chat = self._writable_chat(bot, p)
        caption, entities, raw, parse_mode = self._formatted(
            p, "caption", "caption_entities", MAX_CAPTION, "message caption is too long", None
        )
        markup = self._markup(p)
        reply_to = self._reply_to(chat, p)
        stored = self._input_file(p, kind, kind)
        if kind == "photo":
            size = image_size(stored.data or b"")
            if size is None:
                raise bad_request("IMAGE_PROCESS_FAILED")
            sizes, stored = self.emu.files.photo_sizes(stored.data or b"", *size)
            media: dict[str, Any] = {"photo": sizes}
        else:
            extra: dict[str, Any] = {}
            if kind in ("voice", "video", "audio", "animation"):
                extra["duration"] = p.integer("duration", 0)
            if kind in ("video", "animation"):
                extra["width"], extra["height"] = p.integer("width", 0), p.integer("height", 0)
            if kind == "audio":
                extra["performer"], extra["title"] = p.text("performer"), p.text("title")
            media = {kind: media_object(stored, **extra)}
        record = MessageRecord(
            chat_id=chat.id,
            message_id=0,
            from_bot=True,
            sender_id=bot.user.id,
            date=0,
            kind=kind,
            caption=caption,
            entities=entities,
            raw_text=raw,
            parse_mode=parse_mode,
            reply_markup=markup,
            reply_to_message_id=reply_to,
            media=media,
            file=stored,
            **self._common(p),
        )
        return self._api(bot, chat, self._deliver(bot, chat, method, record))

    def _own_message(self, bot: BotState, p: Params, missing: str) -> tuple[ChatState, MessageRecord]:
        """Return the chat and message an edit or delete refers to (400 `missing` if there is none)."""
        if p.has("inline_message_id"):
            raise bad_request("inline messages are not supported by the emulator")
        chat = bot.chats.get(p.chat_id())
        if chat is None:
            raise bad_request("chat not found")
        record = chat.live(p.message_id())
        if record is None:
            raise bad_request(missing)
        return chat, record

    def _editable(self, bot: BotState, p: Params) -> tuple[ChatState, MessageRecord]:
        """Return a message of the bot's that may be edited."""
        chat, record = self._own_message(bot, p, "message to edit not found")
        if not record.from_bot:
            raise bad_request("message can't be edited")
        if not chat.is_group and chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat, record

    def _apply_edit(
        self, bot: BotState, chat: ChatState, record: MessageRecord, method: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Apply an edit unless it changes nothing (400 "not modified"); keep the old version in history."""
        inline = record.reply_markup and "inline_keyboard" in record.reply_markup
        current_markup = record.reply_markup if inline else None
        compared = {
            "reply_markup": current_markup,
            "text": record.text,
            "caption": record.caption,
            "entities": record.entities,
        }
        if all(compared.get(key) == value for key, value in changes.items() if key in compared):
            raise bad_request(
                "message is not modified: specified new message content and reply markup are exactly the "
                "same as a current content and reply markup of the message"
            )
        self._take_rate_slot(bot, chat, method)
        record.history.append(record.version())
        for key, value in changes.items():
            setattr(record, key, value)
        record.edit_date = now_date()
        self.emu.record_bot_edit(bot, chat, record)
        return self._api(bot, chat, record)

    # ----------------------------------------------------------------- bot, updates, settings

    async def api_getMe(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Describe the bot."""
        return {
            **bot.user.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": not bot.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def api_getUpdates(self, bot: BotState, p: Params) -> list[dict[str, Any]]:
        """Long-poll for updates; an update stays (and is sent again) until an offset confirms it."""
        offset = p.integer("offset")
        limit = min(max(p.integer("limit", 100) or 100, 1), 100)
        timeout = max(0, p.integer("timeout", 0) or 0)
        allowed = p.json_value("allowed_updates")
        if isinstance(allowed, list):
            # Like Telegram, the choice is remembered; an empty list means "the default set".
            bot.allowed_updates = frozenset(allowed) if allowed else DEFAULT_ALLOWED_UPDATES
        bot.confirm(offset)
        poll = bot.new_poll()
        deadline = time.monotonic() + timeout
        try:
            while True:
                if poll.superseded:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that "
                        "only one bot instance is running",
                    )
                if self.emu.stopping:
                    return []
                if bot.updates:
                    return copy.deepcopy(bot.updates[:limit])
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                event = bot.wakeup
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            if bot.poll is poll:
                bot.poll = None

    async def api_deleteWebhook(self, bot: BotState, p: Params) -> bool:
        """There is never a webhook; drop_pending_updates empties the queue."""
        if p.flag("drop_pending_updates"):
            bot.updates.clear()
        return True

    async def api_getWebhookInfo(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Report that no webhook is set."""
        return {"url": "", "has_custom_certificate": False, "pending_update_count": len(bot.updates)}

    async def api_setWebhook(self, bot: BotState, p: Params) -> bool:
        """Refuse: the emulator delivers updates through getUpdates only."""
        raise bad_request("the emulator supports getUpdates (polling) only, not webhooks")

    async def api_logOut(self, bot: BotState, p: Params) -> bool:
        """Accept (nothing to log out of)."""
        return True

    async def api_close(self, bot: BotState, p: Params) -> bool:
        """Accept (nothing to close)."""
        return True

    async def api_setMyCommands(self, bot: BotState, p: Params) -> bool:
        """Store the command menu for a scope and language."""
        commands = p.json_value("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            name = str(command.get("command", "")) if isinstance(command, dict) else ""
            if (
                not (1 <= len(name) <= 32)
                or not all(ch.islower() or ch.isdigit() or ch == "_" for ch in name)
                or not name.isascii()
            ):
                raise bad_request("BOT_COMMAND_INVALID")
            if not (1 <= len(str(command.get("description", ""))) <= 256):
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        bot.commands[(scope_key(p.json_value("scope")), _language(p))] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def api_getMyCommands(self, bot: BotState, p: Params) -> list[dict[str, Any]]:
        """Return the command menu stored for exactly this scope and language."""
        return copy.deepcopy(bot.commands.get((scope_key(p.json_value("scope")), _language(p)), []))

    async def api_deleteMyCommands(self, bot: BotState, p: Params) -> bool:
        """Remove the command menu of a scope and language."""
        bot.commands.pop((scope_key(p.json_value("scope")), _language(p)), None)
        return True

    async def api_setChatMenuButton(self, bot: BotState, p: Params) -> bool:
        """Store the menu button of a chat (or the default one)."""
        bot.menu_buttons[p.integer("chat_id")] = p.json_value("menu_button") or {"type": "default"}
        return True

    async def api_getChatMenuButton(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Return a chat's menu button, falling back to the default one."""
        chat_id = p.integer("chat_id")
        button = bot.menu_buttons.get(chat_id) or bot.menu_buttons.get(None) or {"type": "commands"}
        return button if button.get("type") != "default" else {"type": "commands"}

    async def _set_text(self, bot: BotState, p: Params, key: str, limit: int) -> bool:
        """Store the bot's name, description or short description for a language."""
        value = p.text(key) or ""
        if len(value) > limit:
            raise bad_request(f"{key} is too long")
        bot.texts[(key, _language(p))] = value
        return True

    async def api_setMyDescription(self, bot: BotState, p: Params) -> bool:
        """Store the bot's description for a language."""
        return await self._set_text(bot, p, "description", 512)

    async def api_getMyDescription(self, bot: BotState, p: Params) -> dict[str, str]:
        """Return the bot's description for a language (the default one otherwise)."""
        return {
            "description": bot.texts.get(
                ("description", _language(p)), bot.texts.get(("description", ""), "")
            )
        }

    async def api_setMyShortDescription(self, bot: BotState, p: Params) -> bool:
        """Store the bot's short description for a language."""
        return await self._set_text(bot, p, "short_description", 120)

    async def api_getMyShortDescription(self, bot: BotState, p: Params) -> dict[str, str]:
        """Return the bot's short description for a language (the default one otherwise)."""
        key = "short_description"
        return {key: bot.texts.get((key, _language(p)), bot.texts.get((key, ""), ""))}

    async def api_setMyName(self, bot: BotState, p: Params) -> bool:
        """Store the bot's name for a language."""
        return await self._set_text(bot, p, "name", 64)

    async def api_getMyName(self, bot: BotState, p: Params) -> dict[str, str]:
        """Return the bot's name for a language (its first name otherwise)."""
        return {
            "name": bot.texts.get(("name", _language(p)))
            or bot.texts.get(("name", ""))
            or bot.user.first_name
        }

    # ----------------------------------------------------------------- chats

    async def api_getChat(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Describe a chat (ChatFullInfo)."""
        chat = self._known_chat(bot, p.chat_id())
        info = chat_to_api(chat, self.emu.users_by_id)
        info.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        return info

    async def api_sendChatAction(self, bot: BotState, p: Params) -> bool:
        """Show "typing…" and the like."""
        chat = self._writable_chat(bot, p)
        action = p.text("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        chat.last_action = action
        self.emu.emit("chat_action", bot, chat.id, action=action)
        return True

    # ----------------------------------------------------------------- sending

    async def api_sendMessage(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Send a text message."""
        chat = self._writable_chat(bot, p)
        text, entities, raw, parse_mode = self._formatted(
            p, "text", "entities", MAX_TEXT, "message is too long", "message text is empty"
        )
        markup = self._markup(p)
        reply_to = self._reply_to(chat, p)
        record = MessageRecord(
            chat_id=chat.id,
            message_id=0,
            from_bot=True,
            sender_id=bot.user.id,
            date=0,
            kind="text",
            text=text,
            entities=entities,
            raw_text=raw,
            parse_mode=parse_mode,
            reply_markup=markup,
            reply_to_message_id=reply_to,
            **self._common(p),
        )
        return self._api(bot, chat, self._deliver(bot, chat, "sendMessage", record))

    async def api_sendPhoto(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Send a photo (upload or file_id)."""
        return await self._send_media(bot, p, "sendPhoto", "photo")

    async def api_sendDocument(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Send a document (upload or file_id)."""
        return await self._send_media(bot, p, "sendDocument", "document")

    async def api_sendVoice(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Send a voice note (upload or file_id)."""
        return await self._send_media(bot, p, "sendVoice", "voice")

    async def api_sendVideo(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Send a video (upload or file_id)."""
        return await self._send_media(bot, p, "sendVideo", "video")

    async def api_sendAudio(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Send an audio file (upload or file_id)."""
        return await self._send_media(bot, p, "sendAudio", "audio")

    async def api_sendAnimation(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Send an animation (upload or file_id)."""
        return await self._send_media(bot, p, "sendAnimation", "animation")

    async def api_sendLocation(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Send a point on the map."""
        chat = self._writable_chat(bot, p)
        latitude, longitude = p.number("latitude"), p.number("longitude")
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise bad_request("wrong latitude or longitude specified")
        record = MessageRecord(
            chat_id=chat.id,
            message_id=0,
            from_bot=True,
            sender_id=bot.user.id,
            date=0,
            kind="location",
            media={"location": {"latitude": latitude, "longitude": longitude}},
            reply_markup=self._markup(p),
            reply_to_message_id=self._reply_to(chat, p),
            **self._common(p),
        )
        return self._api(bot, chat, self._deliver(bot, chat, "sendLocation", record))

    async def api_sendContact(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Send a phone contact."""
        chat = self._writable_chat(bot, p)
        phone, first_name = p.text("phone_number"), p.text("first_name")
        if not phone:
            raise bad_request("phone_number is empty")
        if not first_name:
            raise bad_request("first_name is empty")
        contact = {"phone_number": phone, "first_name": first_name}
        if p.has("last_name"):
            contact["last_name"] = p.text("last_name") or ""
        record = MessageRecord(
            chat_id=chat.id,
            message_id=0,
            from_bot=True,
            sender_id=bot.user.id,
            date=0,
            kind="contact",
            media={"contact": contact},
            reply_markup=self._markup(p),
            reply_to_message_id=self._reply_to(chat, p),
            **self._common(p),
        )
        return self._api(bot, chat, self._deliver(bot, chat, "sendContact", record))

    def _source(self, bot: BotState, p: Params, verb: str) -> MessageRecord:
        """Return the message that copyMessage/forwardMessage takes from `from_chat_id`."""
        source_chat = bot.chats.get(p.chat_id("from_chat_id"))
        if source_chat is None:
            raise bad_request("chat not found")
        source = source_chat.live(p.message_id())
        if source is None:
            raise bad_request(f"message to {verb} not found")
        if source.protect_content:
            raise bad_request("message has protected content and can't be forwarded")
        return source

    async def api_copyMessage(self, bot: BotState, p: Params) -> dict[str, int]:
        """Send a copy of a message (without a link to the original); return its MessageId."""
        source = self._source(bot, p, "copy")
        chat = self._writable_chat(bot, p)
        record = MessageRecord(
            chat_id=chat.id,
            message_id=0,
            from_bot=True,
            sender_id=bot.user.id,
            date=0,
            kind=source.kind,
            text=source.text,
            caption=source.caption,
            entities=copy.deepcopy(source.entities),
            raw_text=source.raw_text,
            parse_mode=source.parse_mode,
            media=copy.deepcopy(source.media),
            file=source.file,
            reply_to_message_id=self._reply_to(chat, p),
            reply_markup=self._markup(p),
            **self._common(p),
        )
        if "caption" in p.values and source.kind not in ("text", "location", "contact", "sticker"):
            record.caption, record.entities, record.raw_text, record.parse_mode = self._formatted(
                p, "caption", "caption_entities", MAX_CAPTION, "message caption is too long", None
            )
        self._deliver(bot, chat, "copyMessage", record)
        return {"message_id": record.message_id}

    async def api_forwardMessage(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Forward a message, showing where it came from."""
        source = self._source(bot, p, "forward")
        chat = self._writable_chat(bot, p)
        sender = bot.user if source.from_bot else self.emu.users_by_id[source.sender_id]
        record = MessageRecord(
            chat_id=chat.id,
            message_id=0,
            from_bot=True,
            sender_id=bot.user.id,
            date=0,
            kind=source.kind,
            text=source.text,
            caption=source.caption,
            entities=copy.deepcopy(source.entities),
            raw_text=source.raw_text,
            parse_mode=source.parse_mode,
            media=copy.deepcopy(source.media),
            file=source.file,
            forward_origin={"type": "user", "sender_user": sender.to_api(), "date": source.date},
            protect_content=p.flag("protect_content"),
            disable_notification=p.flag("disable_notification"),
        )
        return self._api(bot, chat, self._deliver(bot, chat, "forwardMessage", record))

    # ----------------------------------------------------------------- editing and deleting

    async def api_editMessageText(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Replace the text (and keyboard: omitting reply_markup removes it) of a bot's message."""
        chat, record = self._editable(bot, p)
        if record.kind != "text":
            raise bad_request("there is no text in the message to edit")
        text, entities, raw, parse_mode = self._formatted(
            p, "text", "entities", MAX_TEXT, "MESSAGE_TOO_LONG", "message text is empty"
        )
        changes = {
            "text": text,
            "entities": entities,
            "raw_text": raw,
            "parse_mode": parse_mode,
            "reply_markup": self._markup(p),
        }
        return self._apply_edit(bot, chat, record, "editMessageText", changes)

    async def api_editMessageCaption(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Replace the caption (and keyboard) of a bot's media message."""
        chat, record = self._editable(bot, p)
        if record.kind in ("text", "location", "contact", "sticker"):
            raise bad_request("there is no caption in the message to edit")
        caption, entities, raw, parse_mode = self._formatted(
            p, "caption", "caption_entities", MAX_CAPTION, "message caption is too long", None
        )
        changes = {
            "caption": caption,
            "entities": entities,
            "raw_text": raw,
            "parse_mode": parse_mode,
            "reply_markup": self._markup(p),
        }
        return self._apply_edit(bot, chat, record, "editMessageCaption", changes)

    async def api_editMessageReplyMarkup(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Replace (or, without reply_markup, remove) the inline keyboard of a bot's message."""
        chat, record = self._editable(bot, p)
        markup = self._markup(p)
        if markup is not None and "inline_keyboard" not in markup:
            raise bad_request("inline keyboard expected")
        return self._apply_edit(bot, chat, record, "editMessageReplyMarkup", {"reply_markup": markup})

    def _delete(self, bot: BotState, chat: ChatState, record: MessageRecord) -> None:
        """Mark a message deleted (the record stays, flagged) unless it is too old."""
        if time.time() - record.date > DELETE_WINDOW:
            raise bad_request("message can't be deleted")
        if chat.is_group and not record.from_bot:
            raise bad_request("message can't be deleted")
        record.deleted = True
        self.emu.record_bot_delete(bot, chat, record)

    async def api_deleteMessage(self, bot: BotState, p: Params) -> bool:
        """Delete a message (bots may delete any message in a private chat within 48 hours)."""
        chat, record = self._own_message(bot, p, "message to delete not found")
        self._delete(bot, chat, record)
        return True

    async def api_deleteMessages(self, bot: BotState, p: Params) -> bool:
        """Delete up to 100 messages; those that cannot be found are skipped."""
        chat = bot.chats.get(p.chat_id())
        ids = p.json_value("message_ids")
        if chat is None:
            raise bad_request("chat not found")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message_ids must contain 1-100 message identifiers")
        for message_id in ids:
            record = chat.live(int(message_id))
            if record is not None:
                self._delete(bot, chat, record)
        return True

    # ----------------------------------------------------------------- callbacks and files

    async def api_answerCallbackQuery(self, bot: BotState, p: Params) -> bool:
        """Answer a button press (the text shows as a toast or, with show_alert, an alert)."""
        query = bot.callbacks.get(p.text("callback_query_id") or "")
        if query is None or query.answered:
            raise bad_request(_QUERY_INVALID)
        text = p.text("text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER:
            raise bad_request("MESSAGE_TOO_LONG")
        query.answered, query.text, query.show_alert = True, text, p.flag("show_alert")
        query.url, query.cache_time = p.text("url"), p.integer("cache_time", 0) or 0
        self.emu.emit("callback_answer", bot, query.chat_id, callback=query.to_dict())
        return True

    async def api_getFile(self, bot: BotState, p: Params) -> dict[str, Any]:
        """Return the download path of a file."""
        stored = self.emu.files.get(p.text("file_id") or "")
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.size > MAX_DOWNLOAD_BYTES:
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }


def _language(p: Params) -> str:
    """Return the language_code parameter ('' for all languages), refusing malformed ones."""
    code = p.text("language_code") or ""
    if code and not (len(code) == 2 and code.isascii() and code.isalpha()):
        raise bad_request("invalid language code specified")
    return code.lower()


def _check_inline_keyboard(rows: Any) -> None:
    """Validate an inline keyboard the way Telegram does (buttons need text and exactly one action)."""
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays')
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not str(button.get("text", "")).strip():
                raise bad_request(
                    "BUTTON_TEXT_INVALID"
                    if isinstance(button, dict)
                    else "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
                )
            actions = [key for key in _BUTTON_ACTIONS if key in button]
            if len(actions) != 1:
                raise bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            if "callback_data" in button:
                data = button["callback_data"]
                if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA:
                    raise bad_request("BUTTON_DATA_INVALID")
            if "url" in button and not str(button["url"]).startswith(("http://", "https://", "tg://")):
                raise bad_request(f"inline keyboard button URL '{button['url']}' is invalid: Wrong HTTP URL")


def _with_detected(text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add the entities Telegram detects by itself (URLs, mentions, hashtags, commands) outside code/links."""
    blocking = [e for e in entities if e["type"] in ("code", "pre", "text_link", "text_mention", "url")]
    found = list(entities)
    for entity in detect_entities(text):
        start, end = entity["offset"], entity["offset"] + entity["length"]
        if not any(start < b["offset"] + b["length"] and b["offset"] < end for b in blocking):
            found.append(entity)
    return sorted(found, key=lambda e: (e["offset"], -e["length"]))
