"""A local Telegram Bot API server for tests, benchmarks and the sandbox.

It speaks the Bot API wire format at `{base}/bot{token}/{method}` (files at `{base}/file/bot{token}/...`),
enforces the Telegram rules a bot can trip over (HTML parse errors, 4096-character texts, 403 for users
who blocked the bot, 429 with retry_after when flood limits are exceeded) and lets a test or a web page
play the users through a control API (`{base}/control/...`, or the async methods below in-process).

Run it alone with `python -m bot.sandbox.emulator --port 8081`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import logging
import signal
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from aiohttp import web

from bot.sandbox.emulator_control import add_control_routes
from bot.sandbox.emulator_files import FileStore
from bot.sandbox.emulator_limits import RateLimiter, RateLimits, RateMeter
from bot.sandbox.emulator_methods import BotApiMethods, Params, Upload
from bot.sandbox.emulator_records import (
    ApiError,
    CallbackRecord,
    ControlError,
    Fault,
    MessageRecord,
    StoredFile,
    User,
    bad_request,
)
from bot.sandbox.emulator_state import BotState, ChatState, scope_key
from bot.sandbox.emulator_users import FIRST_GROUP_ID, FIRST_USER_ID, UserActions

logger = logging.getLogger(__name__)

#: A token that looks like a real one (so log redaction treats it as a secret) but is not.
DEFAULT_TOKEN = "1234567890:EMULATOR-token-not-a-real-one-0000"
_MAX_REQUEST_BYTES = 60 * 1024 * 1024
_dumps = partial(json.dumps, ensure_ascii=False)
T = TypeVar("T")


class BotApiEmulator(UserActions):
    """An in-process Telegram Bot API server with a control API to play the users."""

    def __init__(
        self,
        token: str | None = None,
        *,
        username: str = "liaison_bot",
        first_name: str = "Liaison",
        rate_limits: RateLimits | None = None,
        strict_html: bool = True,
    ) -> None:
        self.rate_limits = rate_limits or RateLimits.telegram()
        #: Refuse an unescaped '&' in HTML (Telegram would show it literally; it is nearly always a bug).
        self.strict_html = strict_html
        self.limiter = RateLimiter(self.rate_limits)
        self.meter = RateMeter()
        self.files = FileStore()
        self.users_by_id: dict[int, User] = {}
        self.stopping = False
        self.base_url = ""
        self._bots: dict[str, BotState] = {}
        self._default_token: str | None = None
        self._methods = BotApiMethods(self)
        self._faults: list[Fault] = []
        self._fault_counter = 0
        self._next_user_id = FIRST_USER_ID
        self._next_group_id = FIRST_GROUP_ID
        self._subscribers: list[tuple[asyncio.Queue[dict[str, Any] | None], int | None]] = []
        self._event_seq = 0
        self._change = asyncio.Event()
        self._stop_event = asyncio.Event()
        self._runner: web.AppRunner | None = None
        if token:
            self.add_bot(token, username=username, first_name=first_name)

    # ----------------------------------------------------------------- server

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving; return the base URL (e.g. http://127.0.0.1:PORT)."""
        app = web.Application(client_max_size=_MAX_REQUEST_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        add_control_routes(app, self)
        self.stopping = False
        self._stop_event = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound_port}"
        logger.info("Bot API emulator listening on %s", self.base_url)
        return self.base_url

    async def stop(self) -> None:
        """Stop serving; pending long polls, delays and event streams end at once."""
        self.stopping = True
        self._stop_event.set()
        for bot in self._bots.values():
            bot.wake()
        for queue, _chat in self._subscribers:
            queue.put_nowait(None)
        self._changed()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BotApiEmulator:
        if not self.base_url or self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def add_bot(self, token: str, username: str = "liaison_bot", first_name: str = "Liaison") -> User:
        """Create a bot reachable with this token (the first one is the default for control calls)."""
        prefix = token.split(":", 1)[0]
        bot_id = int(prefix) if prefix.isdigit() else 9_000_000_000 + len(self._bots)
        user = User(id=bot_id, first_name=first_name, username=username, is_bot=True)
        self._bots[token] = BotState(token, user)
        self._default_token = self._default_token or token
        return user

    def bot_user(self, bot: str | None = None) -> User:
        """Return the bot's own User (what getMe answers)."""
        return self._bot(bot).user

    @property
    def bots(self) -> list[User]:
        """Return every bot's User."""
        return [state.user for state in self._bots.values()]

    def _bot(self, bot: str | None) -> BotState:
        """Return a bot by token or username (None: the default bot)."""
        if bot is None:
            if self._default_token is None:
                raise ControlError("no bot: call add_bot(token) first")
            return self._bots[self._default_token]
        if bot in self._bots:
            return self._bots[bot]
        for state in self._bots.values():
            if state.user.username == bot.lstrip("@"):
                return state
        raise ControlError(f"unknown bot {bot!r}")

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        """Answer one Bot API call."""
        bot = self._bots.get(request.match_info["token"])
        if bot is None:
            return _api_response(ApiError(401, "Unauthorized").payload(), 401)
        found = self._methods.find(request.match_info["method"])
        if found is None:
            return _api_response(ApiError(404, "Not Found").payload(), 404)
        name, method = found
        self.meter.calls[name] += 1
        try:
            params = await _read_params(request)
            fault = self._take_fault(name, params)
            if fault is not None:
                return await self._faulty_call(request, bot, name, method, params, fault)
            result = await method(bot, params)
        except ApiError as error:
            logger.debug("%s %s -> %s %s", bot.user.username, name, error.code, error.description)
            return _api_response(error.payload(), error.code)
        except Exception:
            # A bug in the emulator must not look like a network failure to the bot under test.
            logger.exception("emulator failure in %s", name)
            return _api_response(
                ApiError(500, f"Internal Server Error: emulator failure in {name}").payload(), 500
            )
        return _api_response({"ok": True, "result": result}, 200)

    async def _faulty_call(
        self, request: web.Request, bot: BotState, name: str, method: Any, params: Params, fault: Fault
    ) -> web.StreamResponse:
        """Carry out a call an injected fault applies to: delay, maybe process, then fail or drop."""
        if fault.delay:
            await self._sleep(fault.delay)
        error = fault.error()
        result = None
        if fault.process or (error is None and not fault.drop):
            result = await method(bot, params)
        if fault.drop:
            if request.transport is not None:
                request.transport.close()
            # aiohttp ends a cancelled handler quietly; the client sees a closed connection.
            raise asyncio.CancelledError
        if error is not None:
            if error.code == 429:
                self.meter.rejections["fault"] += 1
            raise error
        return _api_response({"ok": True, "result": result}, 200)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        """Serve a file download."""
        if request.match_info["token"] not in self._bots:
            return _api_response(ApiError(401, "Unauthorized").payload(), 401)
        stored = self.files.by_path(request.match_info["path"])
        if stored is None or stored.data is None:
            return _api_response(ApiError(404, "Not Found").payload(), 404)
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the emulator stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    # ----------------------------------------------------------------- notifications

    def _changed(self) -> None:
        """Wake everything waiting for a change (wait_for and friends)."""
        old, self._change = self._change, asyncio.Event()
        old.set()

    def emit(
        self, kind: str, bot: BotState, chat_id: int, record: MessageRecord | None = None, **data: Any
    ) -> None:
        """Publish an event to subscribers (in-process queues and GET /control/events); wake waiters."""
        self._event_seq += 1
        event: dict[str, Any] | None = None
        for queue, wanted_chat in self._subscribers:
            # A subscriber that stops reading loses events rather than filling the memory.
            if wanted_chat not in (None, chat_id) or queue.qsize() >= 10_000:
                continue
            if event is None:  # built only when someone listens: sends stay cheap in benchmarks
                event = {
                    "seq": self._event_seq,
                    "type": kind,
                    "bot": bot.user.username,
                    "time": time.time(),
                    "chat_id": chat_id,
                    **data,
                }
                if record is not None:
                    event["message"] = record.to_dict()
            queue.put_nowait(event)
        self._changed()

    def record_bot_message(self, bot: BotState, chat: ChatState, record: MessageRecord) -> None:
        """Note a message the bot sent."""
        self.emit("bot_message", bot, chat.id, record)

    def record_bot_edit(self, bot: BotState, chat: ChatState, record: MessageRecord) -> None:
        """Note an edit by the bot."""
        self.emit("bot_edit", bot, chat.id, record)

    def record_bot_delete(self, bot: BotState, chat: ChatState, record: MessageRecord) -> None:
        """Note a deletion by the bot."""
        self.emit("bot_delete", bot, chat.id, record, message_id=record.message_id)

    def subscribe(self, chat_id: int | None = None) -> asyncio.Queue[dict[str, Any] | None]:
        """Return a queue receiving every event (or those of one chat); None marks the emulator's stop."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._subscribers.append((queue, chat_id))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        """Stop sending events to a queue."""
        self._subscribers = [(q, c) for q, c in self._subscribers if q is not queue]

    # ----------------------------------------------------------------- reading what happened

    def messages(
        self, chat_id: int, *, include_user: bool = False, bot: str | None = None
    ) -> list[MessageRecord]:
        """Return the bot's messages in a chat, oldest first (with include_user, the whole conversation).

        Records are live: later edits and deletions show in them (`history`, `deleted`).
        """
        chat = self._bot(bot).chats.get(chat_id)
        if chat is None:
            return []
        return [record for record in chat.messages.values() if include_user or record.from_bot]

    def message(self, chat_id: int, message_id: int, *, bot: str | None = None) -> MessageRecord:
        """Return one message of a chat (deleted ones included)."""
        chat = self._bot(bot).chats.get(chat_id)
        record = chat.messages.get(message_id) if chat else None
        if record is None:
            raise ControlError(f"no message {message_id} in chat {chat_id}")
        return record

    def set_message_date(self, chat_id: int, message_id: int, date: int, *, bot: str | None = None) -> None:
        """Pretend a message was sent at another time (e.g. to test the 48-hour deletion limit)."""
        self.message(chat_id, message_id, bot=bot).date = int(date)

    def callback(self, callback_id: str, *, bot: str | None = None) -> CallbackRecord:
        """Return a button press and the bot's answer to it (answered, text, show_alert)."""
        query = self._bot(bot).callbacks.get(callback_id)
        if query is None:
            raise ControlError(f"unknown callback query {callback_id}")
        return query

    def file_bytes(self, file_id: str) -> bytes:
        """Return the bytes of a file (sent by the bot or by a user)."""
        stored = self.files.get(file_id)
        if stored is None or stored.data is None:
            raise ControlError(f"unknown file {file_id}")
        return stored.data

    def file(self, file_id: str) -> StoredFile:
        """Return a stored file (with its bytes)."""
        stored = self.files.get(file_id)
        if stored is None:
            raise ControlError(f"unknown file {file_id}")
        return stored

    def pending_updates(self, *, bot: str | None = None) -> list[dict[str, Any]]:
        """Return the updates the bot has not confirmed yet."""
        return copy.deepcopy(self._bot(bot).updates)

    def chat_state(self, chat_id: int, *, bot: str | None = None) -> dict[str, Any]:
        """Return a chat's flags: type, started, blocked, last chat action."""
        chat = self._bot(bot).chats.get(chat_id)
        if chat is None:
            raise ControlError(f"unknown chat {chat_id}")
        return {
            "id": chat.id,
            "type": chat.type,
            "title": chat.title,
            "started": chat.started,
            "blocked": chat.blocked,
            "last_action": chat.last_action,
            "members": sorted(chat.member_ids),
        }

    def commands(
        self, scope: dict[str, Any] | None = None, language_code: str = "", *, bot: str | None = None
    ) -> list[dict[str, Any]]:
        """Return the command menu the bot set for a scope and language."""
        return copy.deepcopy(self._bot(bot).commands.get((scope_key(scope), language_code), []))

    def all_commands(self, *, bot: str | None = None) -> list[dict[str, Any]]:
        """Return every command menu the bot set, with its scope and language."""
        return [
            {"scope": json.loads(scope), "language_code": lang, "commands": copy.deepcopy(commands)}
            for (scope, lang), commands in self._bot(bot).commands.items()
        ]

    async def wait_for(
        self, predicate: Callable[[], T], timeout: float = 5.0, message: str | None = None
    ) -> T:
        """Wait until predicate() returns something truthy and return it; TimeoutError after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0 or self.stopping:
                raise TimeoutError(message or f"condition not met within {timeout} s")
            event = self._change
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def wait_for_messages(
        self, chat_id: int, n: int = 1, timeout: float = 5.0, *, bot: str | None = None
    ) -> list[MessageRecord]:
        """Wait until the bot has sent at least n messages to the chat; return all of them."""

        def enough() -> list[MessageRecord]:
            found = self.messages(chat_id, bot=bot)
            return found if len(found) >= n else []

        try:
            return await self.wait_for(enough, timeout)
        except TimeoutError:
            got = [record.body[:80] for record in self.messages(chat_id, bot=bot)]
            raise TimeoutError(
                f"chat {chat_id}: expected {n} bot messages within {timeout} s, got {len(got)}: {got}"
            ) from None

    async def wait_for_callback_answer(
        self, callback_id: str, timeout: float = 5.0, *, bot: str | None = None
    ) -> CallbackRecord:
        """Wait until the bot answered a button press; return the press with the answer."""
        query = self.callback(callback_id, bot=bot)
        await self.wait_for(
            lambda: query.answered, timeout, f"callback {callback_id} not answered in {timeout} s"
        )
        return query

    # ----------------------------------------------------------------- faults, limits, reset

    def inject_fault(
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
        """Make the next `times` calls of a Bot API method ("*" for any) misbehave; see Fault."""
        if error_code is None and retry_after is None and not drop and not delay:
            raise ControlError("a fault needs an error_code, retry_after, drop or delay")
        self._fault_counter += 1
        fault = Fault(
            method=method,
            times=times,
            chat_id=chat_id,
            error_code=error_code,
            description=description,
            retry_after=retry_after,
            delay=delay,
            drop=drop,
            process=process,
            id=self._fault_counter,
        )
        self._faults.append(fault)
        return fault

    def faults(self) -> list[Fault]:
        """Return the injected faults that still have calls to spoil."""
        return [fault for fault in self._faults if fault.times > 0]

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._faults.clear()

    def _take_fault(self, method: str, params: Params) -> Fault | None:
        """Return (and use up once) the first fault matching this call."""
        try:
            chat_id = params.integer("chat_id")
        except ApiError:
            chat_id = None
        for fault in self._faults:
            if fault.matches(method.lower(), chat_id):
                fault.times -= 1
                fault.used += 1
                return fault
        return None

    def set_rate_limits(self, limits: RateLimits) -> None:
        """Change the enforced limits (counts already in the windows stay)."""
        self.rate_limits = limits
        self.limiter.limits = limits

    def stats(self) -> dict[str, Any]:
        """Return the meter's figures plus a few counts."""
        return {
            **self.meter.summary(),
            "users": len(self.users_by_id),
            "pending_updates": {state.user.username: len(state.updates) for state in self._bots.values()},
            "faults": [fault.to_dict() for fault in self.faults()],
        }

    async def reset(self) -> None:
        """Forget users, chats, messages, files, faults and measurements; keep the bots and the limits."""
        for state in self._bots.values():
            state.reset()
        self.users_by_id.clear()
        self.files.clear()
        self._faults.clear()
        self.meter.reset()
        self.limiter.reset()
        self._changed()


def _api_response(payload: dict[str, Any], status: int) -> web.Response:
    """Return a JSON response in the Bot API's shape."""
    return web.json_response(payload, status=status, dumps=_dumps)


async def _read_params(request: web.Request) -> Params:
    """Collect a call's parameters from the query string and a JSON, form or multipart body."""
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if not request.body_exists:
        return Params(values, uploads)
    content_type = request.content_type
    try:
        if content_type == "application/json":
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise bad_request("can't parse JSON encoded request body") from None
                if not isinstance(body, dict):
                    raise bad_request("JSON request body must be an object")
                values.update(body)
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    with value.file as handle:
                        uploads[key] = Upload(value.filename, value.content_type, handle.read())
                else:
                    values[key] = value
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "Request Entity Too Large") from None
    return Params(values, uploads)


async def _serve(args: argparse.Namespace) -> None:
    """Run the emulator until SIGINT or SIGTERM."""
    from bot.cli import out

    limits = RateLimits.unlimited() if args.unlimited else RateLimits.telegram()
    emulator = BotApiEmulator(
        args.token, username=args.username, first_name=args.first_name, rate_limits=limits
    )
    url = await emulator.start(args.host, args.port)
    out(url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await emulator.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator as a separate process; print its base URL on the first line."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.sandbox.emulator",
        description="Local Telegram Bot API emulator with a control API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument(
        "--token", default=DEFAULT_TOKEN, help="the bot token it accepts (a fake one by default)"
    )
    parser.add_argument("--username", default="liaison_bot")
    parser.add_argument("--first-name", default="Liaison")
    parser.add_argument("--unlimited", action="store_true", help="do not enforce Telegram's rate limits")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
