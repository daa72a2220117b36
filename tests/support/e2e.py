"""End-to-end harness: the real application polling the Bot API emulator over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from telegram.ext import Application

from bot.app import build_application, start_application, stop_application
from bot.core import Core
from bot.sandbox.emulator import BotApiEmulator
from bot.sandbox.emulator_limits import RateLimits


@dataclass
class Running:
    """A running emulator and bot."""

    emulator: BotApiEmulator
    app: Application  # type: ignore[type-arg]
    core: Core
    url: str


@asynccontextmanager
async def running_bot(core: Core, *, limits: RateLimits | None = None,
                      emulator: BotApiEmulator | None = None) -> AsyncIterator[Running]:
    """Start the emulator (unless given) and the real bot polling it; stop both at the end."""
    token = core.settings.telegram_token.get()  # type: ignore[union-attr]
    own = emulator is None
    emu = emulator or BotApiEmulator(token, username="liaison_test_bot",
                                     rate_limits=limits or RateLimits.unlimited())
    url = await emu.start() if own else emu.base_url
    settings = core.settings.with_overrides(telegram_api_url=url)
    core.settings = settings
    app = build_application(settings, core=core)
    await start_application(app)
    try:
        yield Running(emu, app, core, url)
    finally:
        await stop_application(app)
        if own:
            await emu.stop()
