"""Relay test helpers: a room of three officers (CN/zh, VN/vi, LA/lo) with their coordinator, and a fake
Telegram edge (`FakeOutbound`) for the delivery worker's own tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot import rooms, vetting
from bot.core import Core
from bot.officers import OfficerInfo
from bot.outbound import Button, OutFile, OutMessage, SendError

CASE = "CN-VN-2026-0042"


def register(core: Core, telegram_id: int, role: str = "officer", country: str | None = "VN",
             agency: str | None = None, name: str | None = None) -> OfficerInfo:
    """Register an officer through a real invite."""
    inv = vetting.create_invite(core, None, role=role, country=country, agency=agency)
    return vetting.register(core, telegram_id=telegram_id, code=inv.code, display_name=name or f"Officer {telegram_id}",
                            username=f"user{telegram_id}")


@dataclass
class Team:
    """A coordinator and three officers of the three countries in one case room."""

    coord: OfficerInfo
    cn: OfficerInfo
    vn: OfficerInfo
    la: OfficerInfo


@pytest.fixture
def team(core: Core) -> Team:
    """Open CN-VN-2026-0042 with a VN coordinator and officers from CN (zh), VN (vi) and LA (lo)."""
    coord = register(core, 1001, "coordinator", "VN", "Customs", "Trần Minh")
    cn = register(core, 2001, "officer", "CN", "Police", "王伟")
    vn = register(core, 3001, "officer", "VN", "Border Guard", "Nguyễn An")
    la = register(core, 4001, "officer", "LA", "Forest Inspection", "ສົມພອນ")
    rooms.create_case(core, coord, CASE, "Pangolin scales via Lao Cai")
    for officer in (cn, vn, la):
        rooms.add_member(core, coord, f"@user{officer.telegram_id}")
    return Team(coord, cn, vn, la)


@dataclass
class FakeOutbound:
    """Telegram as the worker sees it: records calls, numbers messages per chat, fails on demand.

    `fail(chat_id)` returns the error to raise for the next call to that chat, or None.
    """

    calls: list[tuple[str, int, Any]] = field(default_factory=list)
    fail: Callable[[str, int], SendError | None] = lambda method, chat: None
    times: list[tuple[float, int]] = field(default_factory=list)
    _ids: dict[int, itertools.count] = field(default_factory=dict)  # type: ignore[type-arg]
    clock: Callable[[], float] | None = None

    def _next(self, method: str, chat_id: int, what: Any) -> int:
        error = self.fail(method, chat_id)
        if error is not None:
            self.calls.append(("error:" + method, chat_id, error))
            raise error
        if self.clock is not None:
            self.times.append((self.clock(), chat_id))
        self.calls.append((method, chat_id, what))
        return next(self._ids.setdefault(chat_id, itertools.count(500)))

    async def send(self, message: OutMessage) -> int:
        """Send a text."""
        return self._next("send", message.chat_id, message)

    async def send_file(self, file: OutFile) -> int:
        """Send a file."""
        return self._next("send_file", file.chat_id, file)

    async def edit(self, chat_id: int, message_id: int, text: str,
                   buttons: tuple[tuple[Button, ...], ...] | None = None) -> None:
        """Edit a text."""
        self._next("edit", chat_id, (message_id, text, buttons))

    async def edit_caption(self, chat_id: int, message_id: int, caption: str | None,
                           buttons: tuple[tuple[Button, ...], ...] | None = None) -> None:
        """Edit a caption."""
        self._next("edit_caption", chat_id, (message_id, caption, buttons))

    async def delete(self, chat_id: int, message_id: int) -> None:
        """Delete a message."""
        self._next("delete", chat_id, message_id)

    async def send_location(self, chat_id: int, latitude: float, longitude: float, *,
                            reply_to: int | None = None, protect: bool = False) -> int:
        """Send a pin."""
        return self._next("send_location", chat_id, (latitude, longitude, reply_to, protect))

    async def send_contact(self, chat_id: int, phone_number: str, first_name: str, last_name: str | None = None,
                           *, reply_to: int | None = None, protect: bool = False) -> int:
        """Send a contact."""
        return self._next("send_contact", chat_id, (phone_number, first_name, last_name, reply_to, protect))

    def to(self, chat_id: int, method: str | None = None) -> list[Any]:
        """Return what was sent to a chat (successful calls), optionally of one method."""
        return [what for m, chat, what in self.calls if chat == chat_id and (method is None or m == method)]
