"""Every Bot API call of the application shares the delivery worker's rate limiter.

Handlers answer users directly (not through the outbox). Their sends and edits are counted by the
same `bot.delivery.RateLimiter` the delivery worker uses, so a relayed copy is never sent to a chat
within a second of a reply (and the reverse); a reply that still meets a 429 is sent again once after
Telegram's retry_after instead of being lost. The worker's own calls are already counted and pass
straight through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from bot import delivery
from bot.config import Settings

logger = logging.getLogger(__name__)

#: Bot API methods that put something into a chat (the ones Telegram's limits count)
_LIMITED = ("send", "edit", "copy", "forward")


class SharedRateLimiter(BaseRateLimiter[None]):
    """python-telegram-bot's rate limiter hook over our `RateLimiter` (per chat and overall)."""

    def __init__(self, limiter: delivery.RateLimiter) -> None:
        self.limiter = limiter

    @classmethod
    def for_settings(cls, settings: Settings) -> SharedRateLimiter:
        """Return the limiter for a process with these delivery settings."""
        return cls(delivery.RateLimiter(rate=settings.delivery_rate, chat_interval=settings.delivery_chat_interval))

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        """Count a handler's send or edit (waiting for a worker call just made to the chat); retry a 429 once."""
        chat_id = data.get("chat_id")
        if delivery.counted_call() or not isinstance(chat_id, int) or not endpoint.startswith(_LIMITED):
            return await callback(*args, **kwargs)
        stamp = await self.limiter.acquire_reply(chat_id)
        try:
            return await callback(*args, **kwargs)
        except RetryAfter as exc:
            after = exc.retry_after
            seconds = after.total_seconds() if hasattr(after, "total_seconds") else float(after)
            logger.info("a reply to chat %s met a 429; sending it again in %.1f s", chat_id, seconds)
            self.limiter.pause(chat_id, seconds)
        finally:
            self.limiter.finished(chat_id, stamp, reply=True)
        await asyncio.sleep(seconds)
        stamp = await self.limiter.acquire_reply(chat_id)
        try:
            return await callback(*args, **kwargs)
        finally:
            self.limiter.finished(chat_id, stamp, reply=True)
