"""The request that fetches updates: stores each `getUpdates` answer in the inbox before returning it.

python-telegram-bot hands the answer to the application, and confirms it to Telegram at its next poll,
only after this returns; so an update is in the database before Telegram forgets it (see `bot.inbox`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from telegram.error import NetworkError
from telegram.request import BaseRequest, RequestData

from bot import inbox
from bot.core import Core

logger = logging.getLogger(__name__)


class InboxRequest(BaseRequest):
    """Wraps the request object used for `getUpdates`; everything else is passed through unchanged."""

    def __init__(self, inner: BaseRequest) -> None:
        self.inner = inner
        self._core: Callable[[], Core | None] = lambda: None

    def bind(self, core: Callable[[], Core | None]) -> None:
        """Tell the request where to find the core (it is built after the application)."""
        self._core = core

    @property
    def read_timeout(self) -> float | None:
        """Return the wrapped request's read timeout."""
        return self.inner.read_timeout

    async def initialize(self) -> None:
        """Initialize the wrapped request."""
        await self.inner.initialize()

    async def shutdown(self) -> None:
        """Shut the wrapped request down."""
        await self.inner.shutdown()

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = BaseRequest.DEFAULT_NONE, write_timeout: Any = BaseRequest.DEFAULT_NONE,
                         connect_timeout: Any = BaseRequest.DEFAULT_NONE,
                         pool_timeout: Any = BaseRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        """Make the call; for a successful `getUpdates`, store the updates before handing them on."""
        code, payload = await self.inner.do_request(url, method, request_data, read_timeout=read_timeout,
                                                    write_timeout=write_timeout, connect_timeout=connect_timeout,
                                                    pool_timeout=pool_timeout)
        if code == 200 and url.rsplit("/", 1)[-1] == "getUpdates":
            await self._store(payload)
        return code, payload

    async def _store(self, payload: bytes) -> None:
        try:
            updates = json.loads(payload).get("result") or []
        except (ValueError, AttributeError):
            return  # not an answer python-telegram-bot can use either; it reports it
        if not isinstance(updates, list) or not updates:
            return
        core = self._core()
        if core is None:
            logger.warning("updates fetched before the bot was ready are not in the inbox")
            return
        try:
            await asyncio.to_thread(inbox.store, core, [u for u in updates if isinstance(u, dict) and "update_id" in u])
        except Exception as exc:
            # Not stored means not confirmed either: the answer is dropped and fetched again after a pause.
            logger.exception("could not store %d fetched updates; fetching them again", len(updates))
            raise NetworkError(f"could not store fetched updates: {type(exc).__name__}") from exc
