"""Key rotation re-encrypts the meetings' texts too (their columns are declared encrypted)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot import keys, meetings
from bot.clock import FakeClock
from bot.config import Settings
from bot.core import Core
from bot.i18n import Catalogs
from tests.meetings.conftest import People, one_meeting
from tests.support.translators import TagTranslator


@pytest.fixture
def file_core(settings: Settings, catalogs: Catalogs, clock: FakeClock) -> Iterator[Core]:
    """A core whose keys live in the keyring file, as most installations run."""
    c = Core.build(settings.with_overrides(data_key=None), translator=TagTranslator(), catalogs=catalogs,
                   clock=clock)
    yield c
    c.close()


def test_rotation_covers_meeting_texts(file_core: Core) -> None:
    """Titles, places, item texts and their translations are rewritten under the new key and read back."""
    people = People(file_core)
    coord = people.add("wang_lei", "CN", "coordinator")
    owner = people.add("khamla_s", "LA")
    recorded = one_meeting(file_core, coord, ("@khamla_s",), due="2026-09-30")
    before = meetings.open_items(file_core, owner)
    assert before and "[lo]" in repr(before)  # the owner reads the Lao copy
    old = file_core.cipher.active
    report = keys.rotate(file_core, drop_old=True, grace=0)
    rewritten = report.reencrypted.rewritten
    for column in ("meetings.title", "meetings.place", "action_items.text", "meeting_texts.text"):
        assert rewritten.get(column, 0) >= 1, (column, rewritten)
    assert not report.reencrypted.failures and report.dropped == [old]
    assert old not in file_core.cipher.keys
    assert meetings.open_items(file_core, owner) == before and recorded
