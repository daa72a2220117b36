"""Fast bot tests: real `Update` objects through `Application.process_update`, network replaced.

`RecordingRequest` stands in for the HTTP layer (like python-telegram-bot's own `OfflineRequest`):
it records each Bot API call and answers like Telegram would, so handlers run unmodified.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from telegram import Bot, Update
from telegram.ext import Application
from telegram.request import BaseRequest, RequestData

from bot.app import build_application, start_application, stop_application
from bot.core import Core

BOT_ID = 123456789
BOT_USERNAME = "liaison_test_bot"


@dataclass
class Call:
    """One Bot API call the bot made."""

    method: str
    params: dict[str, Any]

    @property
    def text(self) -> str:
        """Return the text or caption sent."""
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def chat_id(self) -> int | None:
        """Return the target chat."""
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Return the inline buttons, flattened."""
        markup = self.params.get("reply_markup")
        if isinstance(markup, str):
            markup = json.loads(markup)
        return [b for row in (markup or {}).get("inline_keyboard", []) for b in row]


@dataclass
class RecordingRequest(BaseRequest):
    """Answers Bot API calls locally and records them."""

    calls: list[Call] = field(default_factory=list)
    #: what getUpdates answers (Bot API update dicts)
    updates: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1000))  # type: ignore[type-arg]

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = None, write_timeout: Any = None, connect_timeout: Any = None,
                         pool_timeout: Any = None) -> tuple[int, bytes]:
        """Record the call and return a plausible Telegram answer."""
        api_method = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data else {}
        self.calls.append(Call(api_method, params))
        return 200, json.dumps({"ok": True, "result": self._result(api_method, params)}).encode()

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": BOT_ID, "is_bot": True, "first_name": "Liaison", "username": BOT_USERNAME,
                    "can_join_groups": False, "can_read_all_group_messages": False,
                    "supports_inline_queries": False}
        if method.startswith("send") and method != "sendChatAction" or method in ("editMessageText", "copyMessage"):
            chat_id = int(params.get("chat_id", 0))
            message: dict[str, Any] = {
                "message_id": int(params.get("message_id") or next(self._ids)),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Liaison"},
            }
            if "text" in params:
                message["text"] = params["text"]
            if "caption" in params:
                message["caption"] = params["caption"]
            return message
        if method == "getUpdates":
            return self.updates
        return True

    def sent(self, chat_id: int | None = None, method: str | None = None) -> list[Call]:
        """Return the calls that sent something, optionally to one chat or of one method."""
        return [c for c in self.calls
                if (method is None and (c.method.startswith("send") or c.method.startswith("edit")))
                or c.method == method
                if chat_id is None or c.chat_id == chat_id]

    def clear(self) -> None:
        """Forget the calls so far."""
        self.calls.clear()


class Users:
    """Builds real `Update` objects as Telegram would send them."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)

    def _user(self, user_id: int, language: str | None, username: str | None) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": f"User{user_id}",
                "username": username or f"user{user_id}", "language_code": language}

    def message(self, user_id: int, text: str, *, language: str | None = "en", username: str | None = None,
                reply_to: int | None = None) -> Update:
        """Return an update carrying a text message from a user in their private chat."""
        data: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()),
            "chat": {"id": user_id, "type": "private"}, "from": self._user(user_id, language, username),
            "text": text,
        }
        if text.startswith("/"):
            data["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if reply_to is not None:
            data["reply_to_message"] = {"message_id": reply_to, "date": int(time.time()),
                                        "chat": {"id": user_id, "type": "private"},
                                        "from": {"id": BOT_ID, "is_bot": True, "first_name": "Liaison"},
                                        "text": "…"}
        return Update.de_json({"update_id": next(self._update_ids), "message": data}, self.bot)

    def press(self, user_id: int, data: str, *, message_id: int = 1, language: str | None = "en") -> Update:
        """Return an update for a press on an inline button."""
        return Update.de_json({"update_id": next(self._update_ids), "callback_query": {
            "id": str(next(self._message_ids)), "chat_instance": "ci", "data": data,
            "from": self._user(user_id, language, None),
            "message": {"message_id": message_id, "date": int(time.time()),
                        "chat": {"id": user_id, "type": "private"},
                        "from": {"id": BOT_ID, "is_bot": True, "first_name": "Liaison"}, "text": "…"},
        }}, self.bot)

    def raw(self, payload: dict[str, Any]) -> Update:
        """Return an update from a raw payload (the update_id is filled in)."""
        return Update.de_json({"update_id": next(self._update_ids), **payload}, self.bot)


@asynccontextmanager
async def offline_app(core: Core) -> AsyncIterator[tuple[Application, RecordingRequest, Users]]:  # type: ignore[type-arg]
    """Yield the real application on a recording request, initialized with its services started."""
    request = RecordingRequest()
    app = build_application(core.settings, core=core, request=request)
    await start_application(app, polling=False)
    try:
        yield app, request, Users(app.bot)
    finally:
        await stop_application(app)
