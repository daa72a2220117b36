"""Long-running parts of areas (delivery workers, schedulers) started after the bot and stopped before it."""

from __future__ import annotations

from typing import Any, Protocol

from telegram.ext import Application

LIFECYCLE_KEY = "lifecycle"


class Service(Protocol):
    """Something that runs beside the handlers for the whole life of the application."""

    async def start(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Start (the core is in app.bot_data['core'])."""
        ...

    async def stop(self) -> None:
        """Stop and wait for in-flight work to settle."""
        ...


def add(app: Application[Any, Any, Any, Any, Any, Any], service: Service) -> None:
    """Register a service; services start in registration order and stop in reverse."""
    app.bot_data.setdefault(LIFECYCLE_KEY, []).append(service)


def services(app: Application[Any, Any, Any, Any, Any, Any]) -> list[Service]:
    """Return the registered services."""
    return list(app.bot_data.get(LIFECYCLE_KEY, []))
