"""Fixtures of the meetings tests: a core on a controllable clock, officers of the three countries, and a
recording `Outbound` (the network edge)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest

from bot import meetings, vetting
from bot.clock import FakeClock
from bot.config import Settings
from bot.core import Core
from bot.i18n import Catalogs
from bot.officers import OfficerInfo
from bot.outbound import Button, OutFile, OutMessage, SendError
from tests.support.translators import TagTranslator

#: the tests' "now": Saturday 1 August 2026, 00:00 UTC
START = datetime(2026, 8, 1, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    """Return a clock the test moves by hand."""
    return FakeClock(START)


@pytest.fixture
def mcore(
    settings: Settings, translator: TagTranslator, catalogs: Catalogs, clock: FakeClock
) -> Iterator[Core]:
    """Return the core services on a fresh database and the fake clock."""
    c = Core.build(settings, translator=translator, clock=clock, catalogs=catalogs)
    yield c
    c.close()


@dataclass
class People:
    """Officers of the three countries, registered through real invites."""

    core: Core
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1001))  # type: ignore[type-arg]

    def add(
        self,
        username: str,
        country: str | None = "VN",
        role: str = "officer",
        language: str | None = None,
        agency: str | None = None,
    ) -> OfficerInfo:
        """Register an officer and return them."""
        invite = vetting.create_invite(
            self.core, None, role=role, country=country, agency=agency, language=language
        )
        return vetting.register(
            self.core,
            telegram_id=next(self._ids),
            code=invite.code,
            display_name=username.replace("_", " ").title(),
            username=username,
        )


@pytest.fixture
def people(mcore: Core) -> People:
    """Return the officer factory."""
    return People(mcore)


@dataclass
class Team:
    """A coordinator (CN) and owners in China, Lao PDR and Viet Nam."""

    coordinator: OfficerInfo
    cn: OfficerInfo
    la: OfficerInfo
    vn: OfficerInfo


@pytest.fixture
def team(people: People) -> Team:
    """Register the usual cast (invented names)."""
    return Team(
        coordinator=people.add("wang_lei", "CN", "coordinator", agency="Guangdong Anti-Smuggling Office"),
        cn=people.add("chen_jing", "CN", agency="Guangdong Anti-Smuggling Office"),
        la=people.add("khamla_s", "LA", agency="Department of Forest Inspection"),
        vn=people.add("nguyen_an", "VN", agency="Standing Office of Steering Committee 389"),
    )


def one_meeting(
    core: Core,
    actor: OfficerInfo | None,
    owners: tuple[str, ...],
    due: str | date = "30/08/2026",
    text: str = "Draft the plan for a joint task force",
    case: str | None = None,
    coordinator: str | None = None,
) -> meetings.RecordedMeeting:
    """Record a meeting with one item and return it."""
    draft = meetings.MeetingDraft(
        title="Tripartite meeting on wildlife trafficking",
        held_on="2026-07-30",
        place="Guangzhou",
        participants="Anti-smuggling, customs, forest inspection",
        coordinator=coordinator,
        items=(meetings.ItemDraft(text=text, owners=owners, due=due, case_tag=case),),
    )
    return meetings.record_meetings(core, actor, [draft])[0]


class RecordingOutbound:
    """The network edge: records what would be sent; can be told to fail for some chats."""

    def __init__(self) -> None:
        self.sent: list[OutMessage] = []
        #: chat id -> error raised for the next sends to it (popped one by one; the last one stays)
        self.failures: dict[int, list[SendError]] = {}
        self._ids = itertools.count(5000)

    async def send(self, message: OutMessage) -> int:
        """Record a text (or raise the configured failure)."""
        errors = self.failures.get(message.chat_id)
        if errors:
            raise errors.pop(0) if len(errors) > 1 else errors[0]
        self.sent.append(message)
        return next(self._ids)

    async def send_file(self, file: OutFile) -> int:
        """Not used by reminders."""
        raise AssertionError("reminders send no files")

    async def edit(
        self, chat_id: int, message_id: int, text: str, buttons: tuple[tuple[Button, ...], ...] | None = None
    ) -> None:
        """Not used by reminders."""

    async def delete(self, chat_id: int, message_id: int) -> None:
        """Not used by reminders."""

    def to(self, chat_id: int) -> list[OutMessage]:
        """Return what was sent to one chat."""
        return [m for m in self.sent if m.chat_id == chat_id]

    def clear(self) -> None:
        """Forget what was sent."""
        self.sent.clear()


@pytest.fixture
def outbound() -> RecordingOutbound:
    """Return the recording outbound."""
    return RecordingOutbound()
