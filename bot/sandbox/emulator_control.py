"""The emulator's control API over HTTP: play the users, read what the bot did, inject faults.

Every endpoint answers {"ok": true, "result": ...} or {"ok": false, "error": "..."} (400; 404 for
unknown routes; 408 when a wait times out). Bodies are JSON; file uploads are multipart/form-data
with the bytes in a part named "file" (or JSON with "data_base64"). Any call takes `bot` (token or
username, in the query or the body) when the emulator serves more than one bot.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.sandbox.emulator_limits import RateLimits
from bot.sandbox.emulator_records import ControlError

if TYPE_CHECKING:
    from bot.sandbox.emulator import BotApiEmulator

_dumps = partial(json.dumps, ensure_ascii=False)
Handler = Callable[[web.Request, dict[str, Any]], Awaitable[Any]]


class _Control:
    """Handlers of the control endpoints, each a thin layer over a BotApiEmulator method."""

    def __init__(self, emulator: BotApiEmulator) -> None:
        self.emu = emulator

    async def index(self, request: web.Request, body: dict[str, Any]) -> Any:
        """List the endpoints."""
        return [
            {"method": method, "path": path, "doc": (handler.__doc__ or "").strip()}
            for method, path, handler in self.routes()
        ]

    async def bots(self, request: web.Request, body: dict[str, Any]) -> Any:
        """List the bots."""
        return [user.to_dict() for user in self.emu.bots]

    async def add_bot(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Add a bot token."""
        return self.emu.add_bot(
            _need(body, "token"), body.get("username", "liaison_bot"), body.get("first_name", "Liaison")
        ).to_dict()

    async def users(self, request: web.Request, body: dict[str, Any]) -> Any:
        """List the users."""
        return [user.to_dict() for user in self.emu.users()]

    async def create_user(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Create a user."""
        user = await self.emu.create_user(
            body.get("first_name", "Test"),
            user_id=body.get("user_id", body.get("id")),
            last_name=body.get("last_name"),
            username=body.get("username"),
            language_code=body.get("language_code"),
            started=bool(body.get("started", False)),
            bot=_bot(body),
        )
        return user.to_dict()

    async def text(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Send a text as the user."""
        record = await self.emu.send_text(
            _user_id(request),
            _need(body, "text"),
            chat_id=body.get("chat_id"),
            reply_to=body.get("reply_to"),
            entities=body.get("entities"),
            bot=_bot(body),
        )
        return record.to_dict()

    async def edit(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Edit a text as the user."""
        record = await self.emu.edit_text(
            _user_id(request),
            int(_need(body, "message_id")),
            _need(body, "text"),
            chat_id=body.get("chat_id"),
            bot=_bot(body),
        )
        return record.to_dict()

    async def press(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Press an inline button as the user."""
        callback_id = await self.emu.press_button(
            _user_id(request),
            int(_need(body, "message_id")),
            body.get("callback_data"),
            button_text=body.get("button_text"),
            chat_id=body.get("chat_id"),
            bot=_bot(body),
        )
        return {"callback_query_id": callback_id}

    async def upload(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Send a photo, document, voice note or video as the user."""
        kind, user_id = request.match_info["kind"], _user_id(request)
        data = body.pop("_file_bytes", None)
        if data is None:
            data = base64.b64decode(_need(body, "data_base64"))
        common: dict[str, Any] = {
            "caption": body.get("caption"),
            "chat_id": _int_or_none(body.get("chat_id")),
            "reply_to": _int_or_none(body.get("reply_to")),
            "bot": _bot(body),
        }
        if kind == "photo":
            record = await self.emu.send_photo(
                user_id,
                data,
                width=_int_or_none(body.get("width")),
                height=_int_or_none(body.get("height")),
                **common,
            )
        elif kind == "document":
            record = await self.emu.send_document(
                user_id, data, body.get("file_name") or "file.bin", mime_type=body.get("mime_type"), **common
            )
        elif kind == "voice":
            record = await self.emu.send_voice(
                user_id,
                data,
                duration=int(body.get("duration", 1)),
                mime_type=body.get("mime_type") or "audio/ogg",
                **common,
            )
        else:
            record = await self.emu.send_video(
                user_id,
                data,
                width=int(body.get("width", 640)),
                height=int(body.get("height", 360)),
                duration=int(body.get("duration", 1)),
                mime_type=body.get("mime_type") or "video/mp4",
                file_name=body.get("file_name"),
                **common,
            )
        return record.to_dict()

    async def location(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Share a location as the user."""
        record = await self.emu.send_location(
            _user_id(request),
            float(_need(body, "latitude")),
            float(_need(body, "longitude")),
            chat_id=body.get("chat_id"),
            reply_to=body.get("reply_to"),
            bot=_bot(body),
        )
        return record.to_dict()

    async def contact(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Share a contact as the user."""
        record = await self.emu.send_contact(
            _user_id(request),
            _need(body, "phone_number"),
            _need(body, "first_name"),
            last_name=body.get("last_name"),
            contact_user_id=body.get("contact_user_id"),
            chat_id=body.get("chat_id"),
            reply_to=body.get("reply_to"),
            bot=_bot(body),
        )
        return record.to_dict()

    async def sticker(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Send a sticker as the user."""
        record = await self.emu.send_sticker(
            _user_id(request),
            emoji=body.get("emoji", "🙂"),
            chat_id=body.get("chat_id"),
            reply_to=body.get("reply_to"),
            bot=_bot(body),
        )
        return record.to_dict()

    async def block(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Block the bot as the user."""
        await self.emu.block(_user_id(request), bot=_bot(body))
        return True

    async def unblock(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Unblock the bot as the user."""
        await self.emu.unblock(_user_id(request), bot=_bot(body))
        return True

    async def group(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Create a group chat."""
        chat_id = await self.emu.create_group(
            _need(body, "title"),
            [int(m) for m in body.get("member_ids", [])],
            chat_id=body.get("chat_id"),
            bot=_bot(body),
        )
        return {"chat_id": chat_id}

    async def chat(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Describe a chat (started, blocked, last chat action)."""
        return self.emu.chat_state(_path_int(request, "chat_id"), bot=_bot(body))

    async def messages(self, request: web.Request, body: dict[str, Any]) -> Any:
        """List the bot's messages in a chat (include_user=1 for the whole conversation)."""
        include_user = request.query.get("include_user", "0").lower() in ("1", "true", "yes")
        records = self.emu.messages(_path_int(request, "chat_id"), include_user=include_user, bot=_bot(body))
        return [record.to_dict() for record in records]

    async def message(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Return one message."""
        return self.emu.message(
            _path_int(request, "chat_id"), _path_int(request, "message_id"), bot=_bot(body)
        ).to_dict()

    async def set_date(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Change the date of a message."""
        self.emu.set_message_date(
            _path_int(request, "chat_id"),
            _path_int(request, "message_id"),
            int(_need(body, "date")),
            bot=_bot(body),
        )
        return True

    async def wait(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Wait until the bot has sent n messages to the chat."""
        records = await self.emu.wait_for_messages(
            _path_int(request, "chat_id"),
            int(body.get("n", 1)),
            float(body.get("timeout", 5.0)),
            bot=_bot(body),
        )
        return [record.to_dict() for record in records]

    async def callback(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Return a button press and the bot's answer (wait=seconds waits for the answer)."""
        callback_id = request.match_info["callback_id"]
        wait = float(request.query.get("wait", 0) or 0)
        if wait > 0:
            return (await self.emu.wait_for_callback_answer(callback_id, wait, bot=_bot(body))).to_dict()
        return self.emu.callback(callback_id, bot=_bot(body)).to_dict()

    async def file(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        """Download a file's bytes (sent by the bot or by a user)."""
        stored = self.emu.file(request.match_info["file_id"])
        name = stored.file_name or stored.file_path.rsplit("/", 1)[-1]
        return web.Response(
            body=stored.data or b"",
            content_type=stored.mime_type or "application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{_ascii(name)}"'},
        )

    async def commands(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Return the command menus the bot set (all of them, or one scope/language_code)."""
        if "scope" in request.query or "language_code" in request.query:
            scope = json.loads(request.query["scope"]) if request.query.get("scope") else None
            return self.emu.commands(scope, request.query.get("language_code", ""), bot=_bot(body))
        return self.emu.all_commands(bot=_bot(body))

    async def updates(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Return the updates the bot has not confirmed yet."""
        return self.emu.pending_updates(bot=_bot(body))

    async def faults(self, request: web.Request, body: dict[str, Any]) -> Any:
        """List the active faults."""
        return [fault.to_dict() for fault in self.emu.faults()]

    async def inject(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Inject a fault."""
        fault = self.emu.inject_fault(
            _need(body, "method"),
            times=int(body.get("times", 1)),
            chat_id=_int_or_none(body.get("chat_id")),
            error_code=_int_or_none(body.get("error_code")),
            description=body.get("description"),
            retry_after=_int_or_none(body.get("retry_after")),
            delay=float(body.get("delay", 0.0)),
            drop=bool(body.get("drop", False)),
            process=bool(body.get("process", False)),
        )
        return fault.to_dict()

    async def clear_faults(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Remove every fault."""
        self.emu.clear_faults()
        return True

    async def meter(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Return the rate meter's figures and a few counts."""
        return self.emu.stats()

    async def get_limits(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Return the enforced rate limits."""
        return self.emu.rate_limits.to_dict()

    async def put_limits(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Replace the enforced rate limits ({"preset": "telegram"|"unlimited"} or the fields)."""
        preset = body.pop("preset", None)
        body.pop("bot", None)
        if preset == "telegram":
            limits = RateLimits.telegram()
        elif preset == "unlimited":
            limits = RateLimits.unlimited()
        else:
            try:
                limits = RateLimits.from_dict({**self.emu.rate_limits.to_dict(), **body})
            except TypeError as exc:
                raise ControlError(str(exc)) from None
        self.emu.set_rate_limits(limits)
        return limits.to_dict()

    async def reset(self, request: web.Request, body: dict[str, Any]) -> Any:
        """Forget users, chats, files, faults and measurements."""
        await self.emu.reset()
        return True

    async def events(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """Stream events as server-sent events (chat_id=N for one chat's events only)."""
        chat_id = _int_or_none(request.query.get("chat_id"))
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        queue = self.emu.subscribe(chat_id)
        try:
            await response.write(b": connected\n\n")
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), 15.0)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if event is None:
                    break
                await response.write(f"id: {event['seq']}\ndata: {_dumps(event)}\n\n".encode())
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self.emu.unsubscribe(queue)
        return response

    def routes(self) -> list[tuple[str, str, Handler]]:
        """Return (HTTP method, path, handler) of every endpoint."""
        return [
            ("GET", "/control", self.index),
            ("GET", "/control/bots", self.bots),
            ("POST", "/control/bots", self.add_bot),
            ("GET", "/control/users", self.users),
            ("POST", "/control/users", self.create_user),
            ("POST", "/control/users/{user_id}/text", self.text),
            ("POST", "/control/users/{user_id}/edit", self.edit),
            ("POST", "/control/users/{user_id}/press", self.press),
            ("POST", "/control/users/{user_id}/{kind:photo|document|voice|video}", self.upload),
            ("POST", "/control/users/{user_id}/location", self.location),
            ("POST", "/control/users/{user_id}/contact", self.contact),
            ("POST", "/control/users/{user_id}/sticker", self.sticker),
            ("POST", "/control/users/{user_id}/block", self.block),
            ("POST", "/control/users/{user_id}/unblock", self.unblock),
            ("POST", "/control/groups", self.group),
            ("GET", "/control/chats/{chat_id}", self.chat),
            ("GET", "/control/chats/{chat_id}/messages", self.messages),
            ("GET", "/control/chats/{chat_id}/messages/{message_id}", self.message),
            ("POST", "/control/chats/{chat_id}/messages/{message_id}/date", self.set_date),
            ("POST", "/control/chats/{chat_id}/wait", self.wait),
            ("GET", "/control/callbacks/{callback_id}", self.callback),
            ("GET", "/control/files/{file_id}", self.file),
            ("GET", "/control/commands", self.commands),
            ("GET", "/control/updates", self.updates),
            ("GET", "/control/faults", self.faults),
            ("POST", "/control/faults", self.inject),
            ("DELETE", "/control/faults", self.clear_faults),
            ("GET", "/control/meter", self.meter),
            ("GET", "/control/rate_limits", self.get_limits),
            ("PUT", "/control/rate_limits", self.put_limits),
            ("POST", "/control/reset", self.reset),
            ("GET", "/control/events", self.events),
        ]


def _need(body: dict[str, Any], key: str) -> Any:
    """Return a required field of the request body."""
    if body.get(key) in (None, ""):
        raise ControlError(f"missing {key!r}")
    return body[key]


def _bot(body: dict[str, Any]) -> str | None:
    """Return the bot selector of a call, if any."""
    return body.get("bot") or None


def _int_or_none(value: Any) -> int | None:
    """Return an optional integer field."""
    return None if value in (None, "") else int(value)


def _path_int(request: web.Request, name: str) -> int:
    """Return an integer from the URL path."""
    try:
        return int(request.match_info[name])
    except ValueError:
        raise ControlError(f"{name} must be an integer") from None


def _user_id(request: web.Request) -> int:
    """Return the user id from the URL path."""
    return _path_int(request, "user_id")


def _ascii(name: str) -> str:
    """Return a file name safe for a Content-Disposition header."""
    return "".join(ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else "_" for ch in name)


async def _body(request: web.Request) -> dict[str, Any]:
    """Return the request's JSON or form body merged with its query string."""
    body: dict[str, Any] = dict(request.query)
    if request.method in ("GET", "HEAD") or not request.body_exists:
        return body
    if (
        request.content_type == "multipart/form-data"
        or request.content_type == "application/x-www-form-urlencoded"
    ):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                with value.file as handle:
                    body["_file_bytes"] = handle.read()
                body.setdefault("file_name", value.filename)
                if value.content_type and value.content_type != "application/octet-stream":
                    body.setdefault("mime_type", value.content_type)
            else:
                body[key] = value
        return body
    raw = await request.read()
    if raw.strip():
        try:
            data = json.loads(raw)
        except ValueError:
            raise ControlError("the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ControlError("the body must be a JSON object")
        body.update(data)
    return body


def _wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Turn a control handler into an aiohttp handler with the {"ok": ..., "result"/"error": ...} envelope."""

    async def endpoint(request: web.Request) -> web.StreamResponse:
        try:
            result = await handler(request, await _body(request))
        except TimeoutError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=408, dumps=_dumps)
        except (ControlError, ValueError, TypeError, KeyError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400, dumps=_dumps)
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response({"ok": True, "result": result}, dumps=_dumps)

    return endpoint


def add_control_routes(app: web.Application, emulator: BotApiEmulator) -> None:
    """Mount the control API under /control on the emulator's web application."""
    for method, path, handler in _Control(emulator).routes():
        app.router.add_route(method, path, _wrap(handler))
