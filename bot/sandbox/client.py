"""An async HTTP client for the emulator's control API, for use from another process.

It has the same methods as BotApiEmulator's control side; the reading methods, which are plain
functions in-process, are coroutines here. Records come back as the same dataclasses
(MessageRecord, CallbackRecord, User, Fault), without file bytes: fetch those with file_bytes().
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp

from bot.sandbox.emulator_limits import RateLimits
from bot.sandbox.emulator_records import CallbackRecord, ControlError, Fault, MessageRecord, User


class EmulatorClient:
    """Drive a running emulator over HTTP: play users, read what the bot sent, inject faults."""

    def __init__(
        self, base_url: str, *, bot: str | None = None, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.bot = bot
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> EmulatorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        """Return the HTTP session, creating it on first use."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        data: aiohttp.FormData | None = None,
    ) -> Any:
        """Call a control endpoint; return its result or raise ControlError / TimeoutError."""
        query = {key: str(value) for key, value in (params or {}).items() if value is not None}
        if self.bot:
            query.setdefault("bot", self.bot)
        payload = {key: value for key, value in (body or {}).items() if value is not None} if body else None
        async with self._http().request(
            method,
            f"{self.base_url}/control{path}",
            params=query,
            json=payload if data is None else None,
            data=data,
        ) as response:
            if response.content_type != "application/json":
                raise ControlError(f"HTTP {response.status}: {(await response.text())[:200]}")
            answer = await response.json()
        if answer.get("ok"):
            return answer.get("result")
        if response.status == 408:
            raise TimeoutError(answer.get("error"))
        raise ControlError(answer.get("error") or f"HTTP {response.status}")

    # ----------------------------------------------------------------- bots and users

    async def bots(self) -> list[User]:
        """Return every bot's User."""
        return [User.from_dict(data) for data in await self._call("GET", "/bots")]

    async def add_bot(self, token: str, username: str = "liaison_bot", first_name: str = "Liaison") -> User:
        """Create a bot reachable with this token."""
        return User.from_dict(
            await self._call(
                "POST", "/bots", {"token": token, "username": username, "first_name": first_name}
            )
        )

    async def create_user(
        self,
        first_name: str = "Test",
        *,
        user_id: int | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        started: bool = False,
    ) -> User:
        """Create a Telegram user."""
        return User.from_dict(
            await self._call(
                "POST",
                "/users",
                {
                    "first_name": first_name,
                    "user_id": user_id,
                    "last_name": last_name,
                    "username": username,
                    "language_code": language_code,
                    "started": started,
                },
            )
        )

    async def users(self) -> list[User]:
        """Return every user."""
        return [User.from_dict(data) for data in await self._call("GET", "/users")]

    async def create_group(self, title: str, member_ids: Sequence[int], *, chat_id: int | None = None) -> int:
        """Create a group chat; return its id."""
        result = await self._call(
            "POST", "/groups", {"title": title, "member_ids": list(member_ids), "chat_id": chat_id}
        )
        return int(result["chat_id"])

    # ----------------------------------------------------------------- user actions

    async def send_text(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        reply_to: int | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> MessageRecord:
        """Send a text as the user."""
        return MessageRecord.from_dict(
            await self._call(
                "POST",
                f"/users/{user_id}/text",
                {"text": text, "chat_id": chat_id, "reply_to": reply_to, "entities": entities},
            )
        )

    async def edit_text(
        self, user_id: int, message_id: int, text: str, *, chat_id: int | None = None
    ) -> MessageRecord:
        """Edit one of the user's earlier texts."""
        return MessageRecord.from_dict(
            await self._call(
                "POST", f"/users/{user_id}/edit", {"message_id": message_id, "text": text, "chat_id": chat_id}
            )
        )

    async def press_button(
        self,
        user_id: int,
        message_id: int,
        callback_data: str | None = None,
        *,
        button_text: str | None = None,
        chat_id: int | None = None,
    ) -> str:
        """Press an inline button as the user; return the callback query id."""
        result = await self._call(
            "POST",
            f"/users/{user_id}/press",
            {
                "message_id": message_id,
                "callback_data": callback_data,
                "button_text": button_text,
                "chat_id": chat_id,
            },
        )
        return str(result["callback_query_id"])

    async def _upload(self, user_id: int, kind: str, data: bytes, fields: dict[str, Any]) -> MessageRecord:
        """Send a file as the user through a multipart upload."""
        form = aiohttp.FormData()
        form.add_field(
            "file",
            data,
            filename=fields.pop("file_name", None) or "file",
            content_type=fields.get("mime_type") or "application/octet-stream",
        )
        for key, value in fields.items():
            if value is not None:
                form.add_field(key, str(value))
        return MessageRecord.from_dict(await self._call("POST", f"/users/{user_id}/{kind}", data=form))

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
    ) -> MessageRecord:
        """Send a photo as the user."""
        return await self._upload(
            user_id,
            "photo",
            data,
            {
                "file_name": "photo.jpg",
                "caption": caption,
                "width": width,
                "height": height,
                "chat_id": chat_id,
                "reply_to": reply_to,
            },
        )

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
    ) -> MessageRecord:
        """Send a document as the user."""
        return await self._upload(
            user_id,
            "document",
            data,
            {
                "file_name": file_name,
                "mime_type": mime_type,
                "caption": caption,
                "chat_id": chat_id,
                "reply_to": reply_to,
            },
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
    ) -> MessageRecord:
        """Send a voice note as the user."""
        return await self._upload(
            user_id,
            "voice",
            data,
            {
                "duration": duration,
                "mime_type": mime_type,
                "caption": caption,
                "chat_id": chat_id,
                "reply_to": reply_to,
            },
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
    ) -> MessageRecord:
        """Send a video as the user."""
        return await self._upload(
            user_id,
            "video",
            data,
            {
                "width": width,
                "height": height,
                "duration": duration,
                "mime_type": mime_type,
                "file_name": file_name or "video.mp4",
                "caption": caption,
                "chat_id": chat_id,
                "reply_to": reply_to,
            },
        )

    async def send_location(
        self,
        user_id: int,
        latitude: float,
        longitude: float,
        *,
        chat_id: int | None = None,
        reply_to: int | None = None,
    ) -> MessageRecord:
        """Share a location as the user."""
        return MessageRecord.from_dict(
            await self._call(
                "POST",
                f"/users/{user_id}/location",
                {"latitude": latitude, "longitude": longitude, "chat_id": chat_id, "reply_to": reply_to},
            )
        )

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
    ) -> MessageRecord:
        """Share a phone contact as the user."""
        return MessageRecord.from_dict(
            await self._call(
                "POST",
                f"/users/{user_id}/contact",
                {
                    "phone_number": phone_number,
                    "first_name": first_name,
                    "last_name": last_name,
                    "contact_user_id": contact_user_id,
                    "chat_id": chat_id,
                    "reply_to": reply_to,
                },
            )
        )

    async def send_sticker(
        self, user_id: int, *, emoji: str = "🙂", chat_id: int | None = None, reply_to: int | None = None
    ) -> MessageRecord:
        """Send a sticker as the user."""
        return MessageRecord.from_dict(
            await self._call(
                "POST",
                f"/users/{user_id}/sticker",
                {"emoji": emoji, "chat_id": chat_id, "reply_to": reply_to},
            )
        )

    async def block(self, user_id: int) -> None:
        """Block the bot as the user."""
        await self._call("POST", f"/users/{user_id}/block", {})

    async def unblock(self, user_id: int) -> None:
        """Unblock the bot as the user."""
        await self._call("POST", f"/users/{user_id}/unblock", {})

    # ----------------------------------------------------------------- reading

    async def messages(self, chat_id: int, *, include_user: bool = False) -> list[MessageRecord]:
        """Return the bot's messages in a chat (with include_user, the whole conversation)."""
        result = await self._call(
            "GET", f"/chats/{chat_id}/messages", params={"include_user": int(include_user)}
        )
        return [MessageRecord.from_dict(data) for data in result]

    async def message(self, chat_id: int, message_id: int) -> MessageRecord:
        """Return one message of a chat."""
        return MessageRecord.from_dict(await self._call("GET", f"/chats/{chat_id}/messages/{message_id}"))

    async def set_message_date(self, chat_id: int, message_id: int, date: int) -> None:
        """Pretend a message was sent at another time."""
        await self._call("POST", f"/chats/{chat_id}/messages/{message_id}/date", {"date": date})

    async def chat_state(self, chat_id: int) -> dict[str, Any]:
        """Return a chat's flags (started, blocked, last chat action)."""
        return dict(await self._call("GET", f"/chats/{chat_id}"))

    async def callback(self, callback_id: str) -> CallbackRecord:
        """Return a button press and the bot's answer."""
        return CallbackRecord.from_dict(await self._call("GET", f"/callbacks/{callback_id}"))

    async def wait_for_callback_answer(self, callback_id: str, timeout: float = 5.0) -> CallbackRecord:
        """Wait until the bot answered a button press."""
        return CallbackRecord.from_dict(
            await self._call("GET", f"/callbacks/{callback_id}", params={"wait": timeout})
        )

    async def file_bytes(self, file_id: str) -> bytes:
        """Download the bytes of a file."""
        query = {"bot": self.bot} if self.bot else {}
        async with self._http().get(f"{self.base_url}/control/files/{file_id}", params=query) as response:
            if response.status != 200:
                raise ControlError((await response.json()).get("error", f"HTTP {response.status}"))
            return await response.read()

    async def pending_updates(self) -> list[dict[str, Any]]:
        """Return the updates the bot has not confirmed yet."""
        return list(await self._call("GET", "/updates"))

    async def commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        """Return the command menu the bot set for a scope and language."""
        return list(
            await self._call(
                "GET",
                "/commands",
                params={"scope": json.dumps(scope) if scope else "", "language_code": language_code},
            )
        )

    async def all_commands(self) -> list[dict[str, Any]]:
        """Return every command menu the bot set."""
        return list(await self._call("GET", "/commands"))

    async def wait_for_messages(self, chat_id: int, n: int = 1, timeout: float = 5.0) -> list[MessageRecord]:
        """Wait until the bot has sent at least n messages to the chat; return them."""
        result = await self._call("POST", f"/chats/{chat_id}/wait", {"n": n, "timeout": timeout})
        return [MessageRecord.from_dict(data) for data in result]

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05
    ) -> Any:
        """Poll predicate() (a function or coroutine function) until it returns something truthy."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if loop.time() >= deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(interval)

    async def events(self, chat_id: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """Yield events as they happen (server-sent events from GET /control/events)."""
        query = {
            key: str(value) for key, value in (("chat_id", chat_id), ("bot", self.bot)) if value is not None
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self._http().get(
            f"{self.base_url}/control/events", params=query, timeout=timeout
        ) as response:
            data: list[str] = []
            async for raw in response.content:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    yield json.loads("\n".join(data))
                    data = []

    # ----------------------------------------------------------------- faults, limits, meter

    async def inject_fault(
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
        """Make the next calls of a Bot API method misbehave."""
        return Fault.from_dict(
            await self._call(
                "POST",
                "/faults",
                {
                    "method": method,
                    "times": times,
                    "chat_id": chat_id,
                    "error_code": error_code,
                    "description": description,
                    "retry_after": retry_after,
                    "delay": delay,
                    "drop": drop,
                    "process": process,
                },
            )
        )

    async def faults(self) -> list[Fault]:
        """Return the active faults."""
        return [Fault.from_dict(data) for data in await self._call("GET", "/faults")]

    async def clear_faults(self) -> None:
        """Remove every fault."""
        await self._call("DELETE", "/faults")

    async def rate_limits(self) -> RateLimits:
        """Return the enforced rate limits."""
        return RateLimits.from_dict(await self._call("GET", "/rate_limits"))

    async def set_rate_limits(self, limits: RateLimits) -> None:
        """Replace the enforced rate limits."""
        await self._call("PUT", "/rate_limits", limits.to_dict())

    async def stats(self) -> dict[str, Any]:
        """Return the rate meter's figures (max_per_second_overall, count_429, calls, ...)."""
        return dict(await self._call("GET", "/meter"))

    async def reset(self) -> None:
        """Forget users, chats, files, faults and measurements."""
        await self._call("POST", "/reset", {})
