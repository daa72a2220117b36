"""The typed context every handler receives: the core's services and the sender's texts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from telegram.ext import Application, CallbackContext, ExtBot

from bot.config import Settings
from bot.core import Core
from bot.db import Database
from bot.i18n import Texts
from bot.officers import OfficerInfo
from bot.translation.base import Translator

T = TypeVar("T")


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """Handlers' context: `core`, `db`, `settings`, `translator`, and per update `officer` and `texts`."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)
        #: set by the vetting gate: the active officer who sent the update (None for a registration)
        self.officer: OfficerInfo | None = None
        self._texts: Texts | None = None

    @property
    def core(self) -> Core:
        """Return the process's services (built in post_init)."""
        return self.application.bot_data["core"]  # type: ignore[no-any-return]

    @property
    def db(self) -> Database:
        """Return the database."""
        return self.core.db

    @property
    def settings(self) -> Settings:
        """Return the settings."""
        return self.core.settings

    @property
    def translator(self) -> Translator:
        """Return the message translator."""
        return self.core.translator

    @property
    def texts(self) -> Texts:
        """Return the texts in the sender's language (English until the gate has chosen)."""
        if self._texts is None:
            self._texts = self.core.catalogs.get(None)
        return self._texts

    @texts.setter
    def texts(self, value: Texts) -> None:
        self._texts = value

    @property
    def me(self) -> OfficerInfo:
        """Return the sending officer; only handlers behind the gate call this."""
        if self.officer is None:
            raise RuntimeError("handler reached without an officer; the gate should have stopped it")
        return self.officer

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a blocking service call in a worker thread so the bot keeps answering."""
        return await asyncio.to_thread(fn, *args, **kwargs)
