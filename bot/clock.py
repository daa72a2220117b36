"""Time: one source of 'now' so that schedules can be tested without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time in UTC."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current time in UTC."""
        return datetime.now(UTC)


class FakeClock:
    """A clock that tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 8, 1, 0, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """Return the clock's current time."""
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to a time (must be timezone-aware)."""
        if when.tzinfo is None:
            raise ValueError("FakeClock needs timezone-aware datetimes")
        self._now = when

    def advance(self, delta: timedelta) -> None:
        """Move forward by delta."""
        self._now += delta


def utcnow() -> datetime:
    """Return the real current time in UTC (for records where a fake clock makes no sense)."""
    return datetime.now(UTC)
