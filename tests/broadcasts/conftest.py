"""Fixtures of the broadcast tests: officers of the three countries registered through real invites."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest

from bot import vetting
from bot.core import Core
from bot.officers import OfficerInfo

#: agencies per country used by the tests
AGENCIES = {"CN": "Customs", "LA": "Forest Inspection", "VN": "Customs"}


@dataclass
class People:
    """Registers officers through real invites; Telegram ids count up from `first_id`."""

    core: Core
    first_id: int = 5001
    _ids: itertools.count = field(init=False)  # type: ignore[type-arg]

    def __post_init__(self) -> None:
        self._ids = itertools.count(self.first_id)

    def add(self, name: str, country: str | None = "VN", role: str = "officer", *, agency: str | None = None,
            language: str | None = None, telegram_id: int | None = None) -> OfficerInfo:
        """Register one officer and return them."""
        invite = vetting.create_invite(self.core, None, role=role, country=country,
                                       agency=agency or (AGENCIES[country] if country else None), language=language)
        return vetting.register(self.core, telegram_id=telegram_id or next(self._ids), code=invite.code,
                                display_name=name, username=name.lower().replace(" ", "_"))

    def many(self, per_country: int, *, ids: list[int] | None = None) -> list[OfficerInfo]:
        """Register `per_country` officers in each of CN, LA, VN (in that order)."""
        out = []
        it = iter(ids) if ids is not None else None
        for country in ("CN", "LA", "VN"):
            for i in range(per_country):
                out.append(self.add(f"{country} Officer {i}", country,
                                    telegram_id=next(it) if it is not None else None))
        return out


@pytest.fixture
def people(core: Core) -> People:
    """Return the officer factory."""
    return People(core)
