"""Relay handlers: officers' messages, their edits and /retract; the delivery worker as a lifecycle service."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from telegram import Message, Update
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler, ExtBot, MessageHandler, filters

from bot import delivery, relay
from bot.core import Core
from handlers import lifecycle
from handlers.context import BotContext
from handlers.outbound import TelegramOutbound
from handlers.ratelimit import SharedRateLimiter

logger = logging.getLogger(__name__)

#: what the relay takes: text that is not a command, and the media kinds it can pass on
RELAYABLE = ((filters.TEXT & ~filters.COMMAND) | filters.PHOTO | filters.Document.ALL | filters.VOICE
             | filters.VIDEO | filters.AUDIO | filters.LOCATION | filters.CONTACT)


def incoming_from(message: Message) -> relay.Incoming:
    """Return the relay's view of a Telegram message (kind, text or caption, file, pin, reply)."""
    reply = message.reply_to_message.message_id if message.reply_to_message else None
    base: dict[str, Any] = {"chat_id": message.chat_id, "message_id": message.message_id,
                            "text": message.text or message.caption, "reply_to_message_id": reply}
    media = (message.photo[-1] if message.photo else None) or message.document or message.voice \
        or message.video or message.audio
    if media is not None:
        kind = "photo" if message.photo else "document" if message.document else "voice" if message.voice \
            else "video" if message.video else "audio"
        return relay.Incoming(kind=kind, file_id=media.file_id, file_unique_id=media.file_unique_id,
                              file_name=getattr(media, "file_name", None), mime_type=getattr(media, "mime_type", None),
                              file_size=media.file_size, **base)
    if message.location is not None:
        return relay.Incoming(kind="location", latitude=message.location.latitude,
                              longitude=message.location.longitude, **base)
    if message.contact is not None:
        contact = message.contact
        return relay.Incoming(kind="contact", phone_number=contact.phone_number, first_name=contact.first_name,
                              last_name=contact.last_name, **base)
    return relay.Incoming(kind="text", **base)


async def relay_message(update: Update, context: BotContext) -> None:
    """Relay an officer's message to the other members of the room, each in their own language."""
    message = update.effective_message
    assert message is not None
    result = await context.run(relay.post, context.core, context.me, incoming_from(message))
    if result.file_id and not result.duplicate:
        context.application.create_task(hash_file(context.bot, context.core, result.message_id, result.file_id))
    for note in result.notes:
        await message.reply_text(relay.render_note(context.texts, note))


async def relay_edit(update: Update, context: BotContext) -> None:
    """Re-translate an edited message and edit every delivered copy (both versions are kept)."""
    message = update.edited_message
    assert message is not None
    await context.run(relay.edit, context.core, context.me, message.chat_id, message.message_id,
                      message.text if message.text is not None else message.caption)


async def retract(update: Update, context: BotContext) -> None:
    """Retract the message this command replies to: its copies are deleted where Telegram allows."""
    message = update.effective_message
    assert message is not None
    replied = message.reply_to_message.message_id if message.reply_to_message else None
    count = await context.run(relay.retract, context.core, context.me, message.chat_id, replied)
    await message.reply_text(context.texts(relay.RETRACTED, count=count))


async def hash_file(bot: ExtBot[Any], core: Core, message_id: int, file_id: str) -> None:
    """Download a relayed file through getFile and record its SHA-256 (hashed off the event loop)."""
    try:
        data = bytes(await (await bot.get_file(file_id)).download_as_bytearray())
    except Exception as exc:  # a background task: whatever went wrong is recorded, never lost in a log
        if not isinstance(exc, TelegramError):
            logger.exception("unexpected error downloading the file of message %s", message_id)
        logger.warning("could not download the file of message %s for hashing: %s", message_id, exc)
        await asyncio.to_thread(relay.record_file_hash_failure, core, message_id, f"{type(exc).__name__}: {exc}")
        return
    digest = await asyncio.to_thread(relay.sha256_hex, data)
    await asyncio.to_thread(relay.record_file_hash, core, message_id, digest, len(data))


class RelayService:
    """Runs the delivery worker (every area's outbox) and the relay's recovery for the application's life."""

    def __init__(self) -> None:
        self.worker: delivery.DeliveryWorker | None = None
        self._core: Core | None = None
        self._hashing: set[asyncio.Task[None]] = set()

    async def start(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Start the worker, then relay what a stopped process left half done."""
        core: Core = app.bot_data["core"]
        self._core = core
        delivery.outbox(core).subscribe(relay.KIND, self._on_status)
        shared = app.bot.rate_limiter
        self.worker = delivery.DeliveryWorker(core, TelegramOutbound(app.bot), rate=core.settings.delivery_rate,
                                              chat_interval=core.settings.delivery_chat_interval,
                                              limiter=shared.limiter if isinstance(shared, SharedRateLimiter) else None)
        await self.worker.start()
        await asyncio.to_thread(relay.resume, core, timedelta(0))
        for message_id, file_id in await asyncio.to_thread(relay.unhashed_files, core):
            task = asyncio.create_task(hash_file(app.bot, core, message_id, file_id))
            self._hashing.add(task)
            task.add_done_callback(self._hashing.discard)
        scheduler = core.extras.get("scheduler")
        if scheduler is not None:
            scheduler.add_job(relay.resume, "interval", minutes=1, args=[core], id="relay-resume",
                              coalesce=True, max_instances=1, replace_existing=True)

    async def stop(self) -> None:
        """Stop the worker (in-flight deliveries get a few seconds to finish)."""
        if self._core is not None:
            delivery.outbox(self._core).unsubscribe(relay.KIND, self._on_status)
        if self.worker is not None:
            await self.worker.stop()
        for task in list(self._hashing):
            task.cancel()
        await asyncio.gather(*self._hashing, return_exceptions=True)

    async def _on_status(self, event: delivery.DeliveryEvent) -> None:
        """Tell a sender when a copy of their message failed or was blocked."""
        if self._core is not None and event.status in (delivery.FAILED, delivery.BLOCKED):
            await asyncio.to_thread(relay.notify_sender, self._core, event)


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Add the relay's handlers (after every area's commands and conversations) and its worker."""
    app.add_handler(CommandHandler("retract", retract))
    app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & RELAYABLE, relay_message))
    app.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE & (filters.TEXT | filters.CAPTION)
                                   & ~filters.COMMAND, relay_edit))
    lifecycle.add(app, RelayService())

