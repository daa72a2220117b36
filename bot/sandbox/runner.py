"""`liaison sandbox`: the Bot API emulator, the real bot and the web page in one event loop.

With `emulator_url` the page attaches to an emulator (and a bot) already running elsewhere, and
nothing else is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import shutil
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.config import Secret, Settings
from bot.translation.base import Translator

logger = logging.getLogger(__name__)


class SandboxError(RuntimeError):
    """The sandbox cannot start; the message says what to do."""


@dataclass
class SandboxOptions:
    """How to run the sandbox."""

    data_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    emulator_url: str | None = None
    #: None = the installed models (`bot.translation.build_translator`); tests pass a fake one
    translator: Translator | None = None
    seed: bool = True
    conversation: bool = True
    #: enforce flood limits like Telegram's in the emulator (the bot must cope with them as on Telegram)
    telegram_limits: bool = True


@dataclass
class Sandbox:
    """A running sandbox; `start()` returns the page's address, `stop()` releases everything."""

    settings: Settings
    options: SandboxOptions
    url: str = ""
    demo: Any = None
    _emulator: Any = None
    _app: Any = None
    _core: Any = None
    _web_runner: web.AppRunner | None = None
    _link: Any = None
    _tmp_dir: Path | None = None

    async def start(self) -> str:
        """Start everything and return the page's address."""
        from bot.sandbox.web import EmulatorLink, SandboxWeb, TranslationStatus, users_as_panes

        try:
            if self.options.emulator_url:
                self._link = EmulatorLink(self.options.emulator_url)
                await self._check_emulator()
                panes = users_as_panes(self._link)
                status = _attached_status()
            else:
                emulator_url = await self._start_bot()
                self._link = EmulatorLink(emulator_url)
                if self.demo is not None:
                    demo_panes = list(self.demo.panes)

                    async def panes_source() -> list[Any]:
                        return demo_panes

                    panes = panes_source
                else:
                    panes = users_as_panes(self._link)
                status = TranslationStatus.from_directions(self._core.translator.directions())
            site = SandboxWeb(self._link, panes, status)
            self.url = await self._serve(site.app())
        except BaseException:
            await self.stop()
            raise
        return self.url

    async def _check_emulator(self) -> None:
        """Fail early with a clear message when the emulator to attach to does not answer."""
        from bot.sandbox.web import EmulatorUnavailable

        try:
            await self._link.call("GET", "/bots")
        except EmulatorUnavailable as exc:
            raise SandboxError(f"cannot attach: {exc}") from None

    async def _start_bot(self) -> str:
        """Start the emulator and the real bot against it, on a migrated SQLite database; seed the demo."""
        from bot import inbox, migrate, vetting
        from bot.app import build_application, start_application
        from bot.core import Core
        from bot.sandbox.demo import create_users, seed
        from bot.sandbox.emulator import DEFAULT_TOKEN, BotApiEmulator
        from bot.sandbox.emulator_limits import RateLimits

        data_dir = self.options.data_dir
        if data_dir is None:
            data_dir = self._tmp_dir = Path(tempfile.mkdtemp(prefix="liaison-sandbox-"))
        data_dir = data_dir.expanduser().resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        # Telegram's overall limit, and its per-chat one as it behaves in private chats: a short burst
        # (a reply right after a welcome) passes, a sustained flood gets 429 with retry_after.
        limits = (
            RateLimits(per_chat=5, per_chat_window=5.0)
            if self.options.telegram_limits
            else RateLimits.unlimited()
        )
        self._emulator = BotApiEmulator(
            DEFAULT_TOKEN, username="liaison_sandbox_bot", first_name="Liaison", rate_limits=limits
        )
        emulator_url = await self._emulator.start("127.0.0.1", 0)
        settings = self.settings.with_overrides(
            data_dir=data_dir,
            database_url=f"sqlite:///{data_dir / 'liaison.db'}",
            telegram_token=Secret(DEFAULT_TOKEN),
            # The sandbox's own key file in its data directory, never a production LIAISON_DATA_KEY.
            data_key=None,
            telegram_api_url=emulator_url,
            # Models installed with `liaison models install` live in the normal data directory.
            models_dir=self.settings.resolved_models_dir,
            bot_username=None,
            admin_chat_id=None,
        )
        logger.info("sandbox data directory: %s", data_dir)
        await asyncio.to_thread(migrate.upgrade, settings.database_url)
        self._core = await asyncio.to_thread(Core.build, settings, translator=self.options.translator)
        # A new emulator numbers its updates from 1 again: forget the update ids a kept database saw in
        # an earlier run, or the bot would take the new updates for redeliveries and ignore them (and
        # the earlier emulator's updates kept in the inbox, which belong to a Telegram that is gone).
        forgotten = await asyncio.to_thread(vetting.prune_processed_updates, self._core, timedelta(0))
        await asyncio.to_thread(inbox.clear, self._core)
        if forgotten:
            logger.info("sandbox: forgot %d update ids of an earlier run", forgotten)
        users = await create_users(self._core, self._emulator) if self.options.seed else {}
        self._app = build_application(settings, core=self._core)
        await start_application(self._app)
        if self.options.seed:
            self.demo = await seed(self._core, self._emulator, users, conversation=self.options.conversation)
        return emulator_url

    async def _serve(self, app: web.Application) -> str:
        """Serve the page on the chosen host and port; return its address."""
        self._web_runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._web_runner.setup()
        site = web.TCPSite(self._web_runner, self.options.host, self.options.port)
        try:
            await site.start()
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                raise SandboxError(
                    f"cannot listen on {self.options.host}:{self.options.port} ({exc.strerror}): "
                    "choose another with --port (0 picks a free one) or --host"
                ) from None
            raise
        port = self._web_runner.addresses[0][1]
        host = self.options.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
        if host not in ("127.0.0.1", "localhost", "::1"):
            logger.warning(
                "the sandbox page is reachable from other machines on %s: anyone who can open it "
                "can write as the demo officers",
                host,
            )
        return f"http://{shown}:{port}/"

    async def stop(self) -> None:
        """Stop the page, the bot and the emulator; remove a temporary data directory."""
        from bot.app import stop_application
        from bot.sandbox.demo import save_last_message_ids

        if self._web_runner is not None:
            with _logged("the web page"):
                await self._web_runner.cleanup()
            self._web_runner = None
        if self._link is not None:
            with _logged("the emulator link"):
                await self._link.close()
            self._link = None
        if self._app is not None:
            with _logged("the bot"):
                await stop_application(self._app)
            self._app = None
        if self._emulator is not None:
            if self.demo is not None and self._tmp_dir is None:
                with _logged("the chats' numbering"):
                    save_last_message_ids(self._emulator, self._core.settings.data_dir, self.demo.user_ids)
            with _logged("the emulator"):
                await self._emulator.stop()
            self._emulator = None
        if self._core is not None:
            with _logged("the database"):
                await asyncio.to_thread(self._core.close)
            self._core = None
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None


@contextlib.contextmanager
def _logged(what: str) -> Any:
    """Log (and swallow) a failure while stopping one part, so the others still stop."""
    try:
        yield
    except Exception:
        logger.exception("could not stop %s cleanly", what)


def _attached_status() -> Any:
    """Return the banner's status for an attached page (the other bot's models are not known here)."""
    from bot.sandbox.web import TranslationStatus

    note = (
        "Attached to a running bot: its translation models are not known here. Messages without a "
        "model arrive untranslated with the bot's note."
    )
    return TranslationStatus(known=False, note=note)


async def run(settings: Settings, options: SandboxOptions, announce: Callable[[str], None]) -> None:
    """Run the sandbox until SIGINT or SIGTERM; `announce` gets the page's address once it is ready."""
    sandbox = Sandbox(settings, options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    starting = asyncio.ensure_future(sandbox.start())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            announce(starting.result())
            await stopping
        logger.info("stopping the sandbox")
    finally:
        for task in (starting, stopping):
            task.cancel()
        await asyncio.gather(starting, stopping, return_exceptions=True)
        await sandbox.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)
