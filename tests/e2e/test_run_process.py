"""`liaison run` as a real process against the emulator: starts, answers, refuses bad set-ups, stops."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from bot import vetting
from bot.config import Settings
from bot.core import Core
from bot.sandbox.emulator import BotApiEmulator
from bot.sandbox.emulator_limits import RateLimits

pytestmark = pytest.mark.e2e
LIAISON = str(Path(sys.executable).with_name("liaison"))


def _env(settings: Settings, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env.update({
        "LIAISON_TELEGRAM_TOKEN": settings.telegram_token.get(),  # type: ignore[union-attr]
        "LIAISON_TELEGRAM_API_URL": url,
        "LIAISON_DATABASE_URL": settings.database_url,
        "LIAISON_DATA_DIR": str(settings.data_dir),
        "LIAISON_DATA_KEY": settings.data_key.get(),  # type: ignore[union-attr]
        "LIAISON_LOG_LEVEL": "INFO",
    })
    return env


async def test_run_answers_and_stops_cleanly(core: Core) -> None:
    """The console command polls the emulator, registers an officer, and exits 0 on SIGTERM."""
    token = core.settings.telegram_token.get()  # type: ignore[union-attr]
    code = vetting.create_invite(core, None, role="officer", country="LA").code
    async with BotApiEmulator(token, rate_limits=RateLimits.unlimited()) as emu:
        url = emu.base_url
        proc = await asyncio.create_subprocess_exec(
            LIAISON, "run", env=_env(core.settings, url),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            user = await emu.create_user("Souk", language_code="lo")
            await emu.send_text(user.id, f"/start {code}")
            (reply,) = await emu.wait_for_messages(user.id, 1, timeout=30)
            assert reply.body.startswith("ຍິນດີຕ້ອນຮັບ")
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-2000:]
        log = err.decode()
        assert "Liaison is running as @liaison_bot" in log
        assert token not in log and token.split(":")[1] not in log


async def test_run_refuses_an_old_schema(db_factory, tmp_path: Path, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """On a database that was never upgraded, `liaison run` says what to do in one line."""
    url = db_factory.empty(tmp_path)
    try:
        async with BotApiEmulator(settings.telegram_token.get(), rate_limits=RateLimits.unlimited()) as emu:  # type: ignore[union-attr]
            env = _env(settings.with_overrides(database_url=url), emu.base_url)
            proc = await asyncio.create_subprocess_exec(LIAISON, "run", env=env, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE)
            _out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 2
        last = err.decode().strip().splitlines()[-1]
        assert last.startswith("liaison: error: the database is at revision none") and "liaison db upgrade" in last
        assert "Traceback" not in err.decode()
    finally:
        db_factory.drop(url)
