"""Domain errors: each carries a localizable message (a gettext msgid) and its named values."""

from __future__ import annotations

from typing import Any

from bot.i18n import N_


class LiaisonError(Exception):
    """Base of every error a user or administrator can cause; rendered in the reader's language."""

    #: msgid of the message; subclasses override it, instances may pass their own
    message: str = N_("Something went wrong.")

    def __init__(self, message: str | None = None, **params: Any) -> None:
        if message is not None:
            self.message = message
        self.params = params
        super().__init__(self.english())

    def english(self) -> str:
        """Return the message in English, for the CLI and for logs."""
        try:
            return self.message.format(**self.params)
        except (KeyError, IndexError):
            return self.message


class NotAllowed(LiaisonError):
    """The officer's role does not allow the action."""

    message = N_("You are not allowed to do that.")


class NotFound(LiaisonError):
    """What the user named does not exist (or is not visible to them)."""

    message = N_("Not found.")


class InvalidInput(LiaisonError):
    """The user typed something the bot cannot use."""

    message = N_("That input is not valid.")


class Conflict(LiaisonError):
    """The action clashes with the current state (already exists, already done)."""

    message = N_("That has already been done.")
