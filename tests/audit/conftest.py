"""Helpers of the audit tests: officers of each role, raw access to the chain's rows."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from bot import audit, vetting
from bot.core import Core
from bot.officers import OfficerInfo

Register = Callable[..., OfficerInfo]


@pytest.fixture
def register(core: Core) -> Register:
    """Return a function registering an officer of a role and country through a real invite."""
    counter = iter(range(1000, 100000))

    def make(
        role: str = "officer",
        country: str | None = "VN",
        name: str | None = None,
        agency: str | None = None,
        username: str | None = None,
    ) -> OfficerInfo:
        tid = next(counter)
        inv = vetting.create_invite(core, None, role=role, country=country, agency=agency)
        return vetting.register(
            core,
            telegram_id=tid,
            code=inv.code,
            display_name=name or f"Officer {tid}",
            username=username or f"user{tid}",
        )

    return make


def T_REGISTER(core: Core, country: str, role: str = "officer") -> OfficerInfo:  # noqa: N802
    """Register one officer of a country (for tests without the `register` fixture)."""
    tid = 90_000 + sum(1 for _ in vetting.list_officers(core, None, include_revoked=True))
    inv = vetting.create_invite(core, None, role=role, country=country)
    return vetting.register(
        core, telegram_id=tid, code=inv.code, display_name=f"Officer {tid}", username=f"u{tid}"
    )


def append(core: Core, n: int, *, kind: str = "test.event", case_tag: str | None = None) -> None:
    """Append n events, one transaction each."""
    for i in range(n):
        with core.db.transaction() as s:
            audit.record(
                s, kind, actor_id=i % 3 or None, case_tag=case_tag, data={"i": i, "text": "ສະບາຍດີ 你好"}
            )


def sql(core: Core, statement: str, **params: object) -> None:
    """Run a raw statement in its own transaction (tampering, as someone with database access would)."""
    with core.db.engine.begin() as conn:
        conn.execute(text(statement), params)
