"""Fixtures for the sandbox tests: a running sandbox (emulator + real bot + page) on free ports."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import Secret, Settings
from bot.sandbox.runner import Sandbox, SandboxOptions
from tests.support.translators import TagTranslator

#: Lao <-> Chinese has "no model" in the tests, so the page's honesty about it can be checked.
MISSING = {("zh", "lo"), ("lo", "zh")}


def base_settings(home: Path) -> Settings:
    """Return the settings `liaison sandbox` would start from (the sandbox overrides database and token)."""
    return Settings(
        data_dir=home,
        database_url=f"sqlite:///{home / 'unused.db'}",
        data_key=Secret(base64.urlsafe_b64encode(os.urandom(32)).decode()),
    )


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    """Start a seeded sandbox with the tag translator (without the sample conversation); stop it after the test."""
    options = SandboxOptions(
        data_dir=tmp_path / "sandbox", port=0, translator=TagTranslator(missing=MISSING), conversation=False
    )
    box = Sandbox(base_settings(tmp_path / "home"), options)
    await box.start()
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Return an HTTP client session."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


class EventReader:
    """Read the page's server-sent events."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self) -> tuple[str, dict[str, Any]]:
        """Return the next (event name, data)."""
        name, data = "message", []
        async for raw in self.response.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line and data:
                return name, json.loads("\n".join(data))
        raise EOFError("the event stream ended")

    async def until(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Return the first update event whose data matches."""
        while True:
            name, data = await self.next()
            if name == "update" and predicate(data):
                return data
