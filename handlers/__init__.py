"""Telegram handlers, thin: parse an update, call a service in `bot/`, render localized text."""

from __future__ import annotations

from telegram.ext import Application

from handlers import audit, broadcast, errors, fallback, gate, meetings, relay, rooms, vetting


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Wire every handler; the order matters and is explained beside each line."""
    # The vetting gate runs first, in its own lower group: nothing reaches a handler unvetted.
    gate.register(app)
    # Commands and buttons of each area. Within group 0 the first matching handler wins, so
    # conversations (meetings, broadcasts) come before the relay, which takes any plain message.
    vetting.register(app)
    rooms.register(app)
    audit.register(app)
    meetings.register(app)
    broadcast.register(app)
    relay.register(app)
    # Catch-alls last: unknown commands, unsupported content, stale buttons.
    fallback.register(app)
    app.add_error_handler(errors.on_error)  # type: ignore[arg-type]
