"""The `Outbound` adapter over python-telegram-bot: maps Telegram's errors to `SendError` kinds."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, ReplyParameters
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import ExtBot

from bot.outbound import Button, OutFile, OutMessage, SendError

T = TypeVar("T")


def keyboard(buttons: tuple[tuple[Button, ...], ...] | None) -> InlineKeyboardMarkup | None:
    """Return Telegram's inline keyboard for our buttons."""
    if not buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.text, callback_data=b.data) for b in row]
                                 for row in buttons])


async def _call(fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return await fn()
    except RetryAfter as exc:
        after = exc.retry_after
        seconds = after.total_seconds() if hasattr(after, "total_seconds") else float(after)
        raise SendError("retry", "rate limited (429)", retry_after=seconds) from exc
    except Forbidden as exc:
        raise SendError("blocked", exc.message) from exc
    except BadRequest as exc:
        text = exc.message.lower()
        if "not found" in text or "can't be deleted" in text or "can't be edited" in text:
            raise SendError("gone", exc.message) from exc
        if "not modified" in text:
            raise SendError("unchanged", exc.message) from exc
        raise SendError("rejected", exc.message) from exc
    except (TimedOut, NetworkError) as exc:
        raise SendError("retry", f"{type(exc).__name__}: {exc.message}") from exc


class TelegramOutbound:
    """Sends through the application's bot; never retries by itself (the delivery queue does)."""

    def __init__(self, bot: ExtBot[Any]) -> None:
        self.bot = bot

    async def send(self, message: OutMessage) -> int:
        """Send a text message."""
        reply = ReplyParameters(message.reply_to, allow_sending_without_reply=True) if message.reply_to else None
        sent: Message = await _call(lambda: self.bot.send_message(
            message.chat_id, message.text, reply_markup=keyboard(message.buttons), reply_parameters=reply,
            protect_content=message.protect, disable_notification=message.silent,
        ))
        return sent.message_id

    async def send_file(self, file: OutFile) -> int:
        """Send a document, photo, voice note, video or audio file."""
        payload: Any = file.file_id or InputFile(io.BytesIO(file.content or b""), filename=file.filename)
        method = {"document": self.bot.send_document, "photo": self.bot.send_photo,
                  "voice": self.bot.send_voice, "video": self.bot.send_video,
                  "audio": self.bot.send_audio}[file.kind]
        reply = ReplyParameters(file.reply_to, allow_sending_without_reply=True) if file.reply_to else None
        sent: Message = await _call(lambda: method(  # type: ignore[operator]
            file.chat_id, payload, caption=file.caption, reply_markup=keyboard(file.buttons),
            reply_parameters=reply, protect_content=file.protect,
        ))
        return sent.message_id

    async def edit(self, chat_id: int, message_id: int, text: str,
                   buttons: tuple[tuple[Button, ...], ...] | None = None) -> None:
        """Edit a sent text message."""
        await _call(lambda: self.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id,
                                                       reply_markup=keyboard(buttons)))

    async def delete(self, chat_id: int, message_id: int) -> None:
        """Delete a sent message."""
        await _call(lambda: self.bot.delete_message(chat_id, message_id))

    async def edit_caption(self, chat_id: int, message_id: int, caption: str | None,
                           buttons: tuple[tuple[Button, ...], ...] | None = None) -> None:
        """Edit a sent file's caption."""
        await _call(lambda: self.bot.edit_message_caption(chat_id=chat_id, message_id=message_id, caption=caption,
                                                          reply_markup=keyboard(buttons)))

    async def send_location(self, chat_id: int, latitude: float, longitude: float, *,
                            reply_to: int | None = None, protect: bool = False) -> int:
        """Send a map pin."""
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        sent: Message = await _call(lambda: self.bot.send_location(
            chat_id, latitude=latitude, longitude=longitude, reply_parameters=reply, protect_content=protect))
        return sent.message_id

    async def send_contact(self, chat_id: int, phone_number: str, first_name: str, last_name: str | None = None,
                           *, reply_to: int | None = None, protect: bool = False) -> int:
        """Send a contact card."""
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        sent: Message = await _call(lambda: self.bot.send_contact(
            chat_id, phone_number=phone_number, first_name=first_name, last_name=last_name,
            reply_parameters=reply, protect_content=protect))
        return sent.message_id
