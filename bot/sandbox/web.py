"""The sandbox's web page: one phone-like chat pane per officer, played through the Bot API emulator.

The page talks only to this app; this app talks to the emulator over its HTTP control API (the same
whether the emulator runs in this process or elsewhere, see `liaison sandbox --emulator-url`):

- `GET /` and `/static/...`: the page (no external resources);
- `GET /api/state`: the panes, every message of each pane's chat, and the translation status;
- `GET /api/events`: server-sent events, proxied from the emulator's `GET /control/events`
  (first `hello` once the emulator stream is live, then `update` events: message, toast, panes);
- `POST /api/panes/{user_id}/send` `{"text", "reply_to"?}`: write as that officer (optionally as a reply);
- `POST /api/panes/{user_id}/upload` (multipart `file`, `caption`?, `reply_to`?; header `X-Sandbox: 1`):
  send a photo or a document as that officer;
- `POST /api/panes/{user_id}/press` `{"message_id", "data"}`: press an inline button as that officer;
- `GET /api/files/{file_id}`: download a document the bot sent (an audit export, ...).

POSTs must be JSON, so a page from another origin cannot drive them without a CORS preflight.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
from aiohttp import web

from bot.sandbox.web_render import render_message

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
INSTALL_COMMAND = "liaison models install FILE"
_LANGS = ("zh", "lo", "vi", "en")
_LANG_NAMES = {"zh": "Chinese", "lo": "Lao", "vi": "Vietnamese", "en": "English"}
_MESSAGE_EVENTS = ("bot_message", "bot_edit", "bot_delete", "user_message", "user_edit")
_MAX_TEXT = 4096
_MAX_UPLOAD = 20 * 1024 * 1024  # what a bot can download from Telegram


class EmulatorUnavailable(RuntimeError):
    """The emulator did not answer, or refused a control call; the text says why."""


@dataclass(frozen=True)
class Pane:
    """One officer's chat on the page."""

    id: int  # the emulator user id (= the private chat id)
    key: str  # short stable name for the element id, e.g. "zh-officer"
    name: str
    subtitle: str = ""
    flag: str = ""
    country: str = ""
    lang: str = "en"
    placeholder: str = "Message"

    def to_dict(self) -> dict[str, Any]:
        """Return the pane as JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class TranslationStatus:
    """Which translation directions the bot can really translate, for the page's banner."""

    installed: tuple[tuple[str, str], ...] = ()
    known: bool = True
    note: str = ""
    languages: tuple[str, ...] = field(default=("zh", "lo", "vi", "en"))

    @classmethod
    def from_directions(cls, directions: set[tuple[str, str]]) -> TranslationStatus:
        """Build the status from a translator's `directions()`."""
        return cls(installed=tuple(sorted(d for d in directions if d[0] in _LANGS and d[1] in _LANGS)))

    def missing(self) -> list[tuple[str, str]]:
        """Return the directions between the officers' languages that no model covers."""
        have = set(self.installed)
        return [(a, b) for a in self.languages for b in self.languages if a != b and (a, b) not in have]

    def to_dict(self) -> dict[str, Any]:
        """Return what the page's banner shows."""
        missing = self.missing() if self.known else []
        if not self.known:
            summary = self.note or "Translation models: those of the bot this page is attached to."
        elif not self.installed:
            summary = (
                "No translation model is installed: every message is relayed in its original "
                "language with the bot's “untranslated” note."
            )
        elif not missing:
            summary = "Translation models are installed for every direction between the demo's languages."
        else:
            summary = (
                f"Translation models cover {len(self.installed)} direction(s): "
                + ", ".join(f"{a}→{b}" for a, b in self.installed)
                + f". Not covered ({len(missing)}): "
                + ", ".join(f"{a}→{b}" for a, b in missing)
                + "."
            )
        return {
            "known": self.known,
            "installed": [f"{a}→{b}" for a, b in self.installed],
            "missing": [f"{a}→{b}" for a, b in missing],
            "summary": summary,
            "install_command": INSTALL_COMMAND,
        }


class EmulatorLink:
    """The emulator's control API over HTTP (`{base}/control/...`)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """Return the HTTP session (created on first use, inside the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
        return self._session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()

    async def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, str] | None = None
    ) -> Any:
        """Call a control endpoint and return its `result` (EmulatorUnavailable on any failure)."""
        url = f"{self.base_url}/control{path}"
        try:
            async with self.session.request(
                method, url, json=body, params=params, timeout=aiohttp.ClientTimeout(total=30)
            ) as resp:
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise EmulatorUnavailable(
                f"the Bot API emulator at {self.base_url} did not answer ({exc})"
            ) from None
        if not isinstance(data, dict) or not data.get("ok"):
            raise EmulatorUnavailable(str(data.get("error") if isinstance(data, dict) else data))
        return data.get("result")

    async def users(self) -> list[dict[str, Any]]:
        """Return the emulator's users (people, not bots)."""
        return [u for u in await self.call("GET", "/users") if not u.get("is_bot")]

    async def messages(self, chat_id: int) -> list[dict[str, Any]]:
        """Return the whole conversation of a chat, oldest first."""
        return list(await self.call("GET", f"/chats/{chat_id}/messages", params={"include_user": "1"}))

    async def send_text(self, user_id: int, text: str, reply_to: int | None = None) -> dict[str, Any]:
        """Send a text as the user (optionally as a Telegram reply); return the stored message."""
        body: dict[str, Any] = {"text": text}
        if reply_to is not None:
            body["reply_to"] = reply_to
        return dict(await self.call("POST", f"/users/{user_id}/text", body))

    async def send_file(
        self,
        user_id: int,
        kind: str,
        data: bytes,
        file_name: str,
        mime_type: str,
        caption: str | None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """Send a photo or a document as the user; return the stored message."""
        # JSON with base64 keeps non-ASCII file names intact (multipart clients percent-encode them).
        body: dict[str, Any] = {
            "data_base64": base64.b64encode(data).decode("ascii"),
            "file_name": file_name,
            "mime_type": mime_type,
        }
        if caption:
            body["caption"] = caption
        if reply_to is not None:
            body["reply_to"] = reply_to
        return dict(await self.call("POST", f"/users/{user_id}/{kind}", body))

    async def press(self, user_id: int, message_id: int, data: str) -> str:
        """Press an inline button as the user; return the callback query id."""
        result = await self.call(
            "POST", f"/users/{user_id}/press", {"message_id": message_id, "callback_data": data}
        )
        return str(result["callback_query_id"])

    async def file(self, file_id: str) -> tuple[bytes, str]:
        """Return a file's bytes and content type."""
        url = f"{self.base_url}/control/files/{quote(file_id, safe='')}"
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=60)) as resp:
                if resp.status != 200:
                    raise EmulatorUnavailable(f"no such file ({resp.status})")
                return await resp.read(), resp.content_type or "application/octet-stream"
        except aiohttp.ClientError as exc:
            raise EmulatorUnavailable(
                f"the Bot API emulator at {self.base_url} did not answer ({exc})"
            ) from None

    async def events(self, ready: Callable[[], Awaitable[None]]) -> AsyncIterator[dict[str, Any]]:
        """Yield the emulator's events; `ready` is awaited once the stream is subscribed."""
        url = f"{self.base_url}/control/events"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60)
        async with self.session.get(url, timeout=timeout) as resp:
            if resp.status != 200:
                raise EmulatorUnavailable(f"the emulator refused its event stream ({resp.status})")
            announced = False
            data_lines: list[str] = []
            async for raw in resp.content:
                line = raw.decode("utf-8").rstrip("\r\n")
                if not announced and line.startswith(":"):
                    # The emulator writes ": connected" once it has subscribed us: nothing is missed after.
                    announced = True
                    await ready()
                    continue
                if line.startswith("data:"):
                    data_lines.append(line[5:].lstrip())
                elif not line and data_lines:
                    yield json.loads("\n".join(data_lines))
                    data_lines = []


PaneSource = Callable[[], Awaitable[list[Pane]]]


class SandboxWeb:
    """The page and its API, over one emulator."""

    def __init__(
        self,
        link: EmulatorLink,
        panes: PaneSource,
        translation: TranslationStatus | None = None,
        title: str = "Liaison sandbox",
    ) -> None:
        self.link = link
        self.panes = panes
        self.translation = translation
        self.title = title
        self._closing = asyncio.Event()

    def app(self) -> web.Application:
        """Return the aiohttp application serving the page."""
        app = web.Application(middlewares=[_errors], client_max_size=_MAX_UPLOAD)
        app.on_response_prepare.append(_security_headers)
        app.router.add_get("/", self.index)
        app.router.add_static("/static/", STATIC_DIR, show_index=False)
        app.router.add_get("/api/state", self.state)
        app.router.add_get("/api/events", self.events)
        app.router.add_post("/api/panes/{user_id}/send", self.send)
        app.router.add_post("/api/panes/{user_id}/press", self.press)
        app.router.add_post("/api/panes/{user_id}/upload", self.upload)
        app.router.add_get("/api/files/{file_id}", self.download)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        """End the open event streams so the server can stop at once."""
        self._closing.set()

    async def index(self, request: web.Request) -> web.StreamResponse:
        """Serve the page."""
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def _pane_map(self) -> dict[int, Pane]:
        """Return the current panes by user id."""
        return {pane.id: pane for pane in await self.panes()}

    async def state(self, request: web.Request) -> web.Response:
        """Return the panes, their conversations and the translation status."""
        panes = await self.panes()
        chats = await asyncio.gather(*(self.link.messages(pane.id) for pane in panes))
        messages = {
            str(pane.id): [render_message(m, pane.lang) for m in chat if not m.get("deleted")]
            for pane, chat in zip(panes, chats, strict=True)
        }
        return web.json_response(
            {
                "title": self.title,
                "panes": [pane.to_dict() for pane in panes],
                "messages": messages,
                "translation": self.translation.to_dict() if self.translation else None,
            },
            dumps=_dumps,
        )

    async def _user(self, request: web.Request) -> Pane:
        """Return the pane named in the URL (404 if it is not one of the page's panes)."""
        try:
            user_id = int(request.match_info["user_id"])
        except ValueError:
            raise web.HTTPNotFound(text="no such pane") from None
        pane = (await self._pane_map()).get(user_id)
        if pane is None:
            raise web.HTTPNotFound(text="no such pane")
        return pane

    async def send(self, request: web.Request) -> web.Response:
        """Send a text as the pane's officer, through the emulator (the bot sees a Telegram update)."""
        pane = await self._user(request)
        body = await _json_body(request)
        text = str(body.get("text") or "").strip()
        if not text:
            raise _bad("the message is empty")
        if len(text) > _MAX_TEXT:
            raise _bad("the message is longer than Telegram's 4096 characters")
        record = await self.link.send_text(pane.id, text, _reply_to(body.get("reply_to")))
        return web.json_response({"ok": True, "message": render_message(record, pane.lang)}, dumps=_dumps)

    async def upload(self, request: web.Request) -> web.Response:
        """Send a file as the pane's officer: images as photos, anything else as a document."""
        pane = await self._user(request)
        if request.headers.get("X-Sandbox") != "1":
            # A form post from another origin could not set this header without a CORS preflight.
            raise web.HTTPForbidden(
                text=_dumps({"error": "missing X-Sandbox header"}), content_type="application/json"
            )
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            raise _bad("no file")
        data = upload.file.read()
        if not data:
            raise _bad("the file is empty")
        mime = upload.content_type or "application/octet-stream"
        kind = "photo" if mime in ("image/jpeg", "image/png") else "document"
        caption = str(form.get("caption") or "").strip() or None
        name = unquote(upload.filename or "") or "file"  # browsers send UTF-8, other clients %-encode
        record = await self.link.send_file(
            pane.id, kind, data, name, mime, caption, _reply_to(form.get("reply_to"))
        )
        return web.json_response({"ok": True, "message": render_message(record, pane.lang)}, dumps=_dumps)

    async def press(self, request: web.Request) -> web.Response:
        """Press an inline button of a bot message as the pane's officer."""
        pane = await self._user(request)
        body = await _json_body(request)
        try:
            message_id = int(body["message_id"])
            data = str(body["data"])
        except (KeyError, TypeError, ValueError):
            raise _bad("message_id and data are required") from None
        callback_id = await self.link.press(pane.id, message_id, data)
        return web.json_response({"ok": True, "callback_query_id": callback_id})

    async def download(self, request: web.Request) -> web.Response:
        """Return a file the bot sent, as an attachment with its name."""
        file_id = request.match_info["file_id"]
        try:
            data, content_type = await self.link.file(file_id)
        except EmulatorUnavailable:
            raise web.HTTPNotFound(text="no such file") from None
        name = request.query.get("name") or "download"
        name = (
            name.replace("/", "_").replace("\\", "_").replace("\r", "").replace("\n", "")[:200] or "download"
        )
        ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in name)
        disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
        return web.Response(
            body=data,
            content_type=content_type,
            headers={"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"},
        )

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Stream live updates to the page, translated from the emulator's events."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        await response.write(b"retry: 1500\n\n")

        async def ready() -> None:
            await response.write(b"event: hello\ndata: {}\n\n")

        async def pump() -> None:
            panes = await self._pane_map()
            async for event in self.link.events(ready):
                if event.get("type") == "user_created":
                    panes = await self._pane_map()
                out = self._translate_event(event, panes)
                if out is not None:
                    await response.write(f"event: update\ndata: {_dumps(out)}\n\n".encode())

        task = asyncio.ensure_future(pump())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
            if task.done() and not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                if not isinstance(exc, ConnectionResetError | ConnectionError):
                    logger.warning("the emulator's event stream ended: %s", exc)
        finally:
            for pending in (task, closing):
                pending.cancel()
            await asyncio.gather(task, closing, return_exceptions=True)
        return response

    def _translate_event(self, event: dict[str, Any], panes: dict[int, Pane]) -> dict[str, Any] | None:
        """Return the page's update for an emulator event, or None if no pane shows it."""
        kind = event.get("type")
        if kind == "user_created":
            return {"type": "panes"}
        pane = panes.get(int(event.get("chat_id") or 0))
        if pane is None:
            return None
        if kind in _MESSAGE_EVENTS and isinstance(event.get("message"), dict):
            message = render_message(event["message"], pane.lang)
            if kind == "bot_delete":
                message["deleted"] = True
            return {"type": "message", "pane": pane.id, "message": message}
        if kind == "callback_answer":
            text = str((event.get("callback") or {}).get("text") or "")
            return {"type": "toast", "pane": pane.id, "text": text} if text else None
        return None


def users_as_panes(link: EmulatorLink) -> PaneSource:
    """Return a pane source listing every user of the emulator (for a page attached to a running bot)."""

    async def panes() -> list[Pane]:
        users = await link.users()
        out = []
        for user in users:
            lang = str(user.get("language_code") or "en")[:2]
            name = " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p)
            subtitle = f"@{user['username']}" if user.get("username") else f"user {user['id']}"
            out.append(
                Pane(
                    id=int(user["id"]),
                    key=f"user-{user['id']}",
                    name=name,
                    subtitle=subtitle,
                    lang=lang if lang in _LANGS else "en",
                )
            )
        return out

    return panes


def _dumps(value: Any) -> str:
    """Return compact JSON that keeps non-ASCII text readable."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _reply_to(value: Any) -> int | None:
    """Return the message id a text answers (Telegram's reply), or None."""
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError:
        raise _bad("reply_to must be a message id") from None


def _bad(reason: str) -> web.HTTPBadRequest:
    """Return a 400 error with a JSON body."""
    return web.HTTPBadRequest(text=_dumps({"error": reason}), content_type="application/json")


async def _json_body(request: web.Request) -> dict[str, Any]:
    """Return the JSON object of a POST (415 for other content types, which skip the CORS preflight)."""
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(
            text=_dumps({"error": "send JSON"}), content_type="application/json"
        )
    try:
        body = await request.json()
    except ValueError:
        raise _bad("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    return body


#: The page loads nothing from elsewhere and runs no inline code; the bot's HTML is sanitized anyway.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Add the security headers to every answer, streams included (aiohttp's on_response_prepare)."""
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Answer API failures as JSON {"error": ...} so the page can show them."""
    try:
        return await handler(request)
    except EmulatorUnavailable as exc:
        return web.json_response({"error": str(exc)}, status=502, dumps=_dumps)
    except web.HTTPException as exc:
        if request.path.startswith("/api/") and exc.status >= 400 and exc.content_type != "application/json":
            return web.json_response({"error": exc.text or exc.reason}, status=exc.status, dumps=_dumps)
        raise


def language_name(code: str) -> str:
    """Return the English name of one of the four languages."""
    return _LANG_NAMES.get(code, code)
