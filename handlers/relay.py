"""Telegram handlers of the relay area."""

from __future__ import annotations

from telegram.ext import Application


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Add this area's handlers."""
