"""What the core sends to Telegram, described without Telegram types (the adapter is in handlers/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Button:
    """An inline button: its label and the callback data it sends back (≤ 64 bytes)."""

    text: str
    data: str


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One text message to one chat (HTML)."""

    chat_id: int
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    reply_to: int | None = None
    #: Telegram's protect_content: the copy cannot be forwarded or saved
    protect: bool = False
    silent: bool = False


@dataclass(frozen=True, slots=True)
class OutFile:
    """A document, photo, voice note or video to one chat (HTML caption)."""

    chat_id: int
    kind: str  # "document", "photo", "voice", "video", "audio"
    #: an existing Telegram file_id to reuse, or the bytes to upload
    file_id: str | None = None
    content: bytes | None = None
    filename: str | None = None
    caption: str | None = None
    buttons: tuple[tuple[Button, ...], ...] = ()
    reply_to: int | None = None
    protect: bool = False


@dataclass
class SendError(Exception):
    """A send failed; `kind` says what to do about it."""

    #: "retry" (429, 5xx, timeout, network), "blocked" (403: the user blocked the bot),
    #: "gone" (message to edit/delete no longer exists), "rejected" (400: the request itself is wrong)
    kind: str
    reason: str
    #: seconds Telegram asked us to wait (429), else None
    retry_after: float | None = None
    details: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason}"


class Outbound(Protocol):
    """Sends to Telegram; raises `SendError` on failure. Implemented over python-telegram-bot."""

    async def send(self, message: OutMessage) -> int:
        """Send a text; return Telegram's message id."""
        ...

    async def send_file(self, file: OutFile) -> int:
        """Send a file; return Telegram's message id."""
        ...

    async def edit(self, chat_id: int, message_id: int, text: str,
                   buttons: tuple[tuple[Button, ...], ...] | None = None) -> None:
        """Replace a sent message's text (and buttons when given)."""
        ...

    async def delete(self, chat_id: int, message_id: int) -> None:
        """Delete a sent message."""
        ...

    async def edit_caption(self, chat_id: int, message_id: int, caption: str | None,
                           buttons: tuple[tuple[Button, ...], ...] | None = None) -> None:
        """Replace a sent file's caption (and buttons when given)."""
        ...

    async def send_location(self, chat_id: int, latitude: float, longitude: float, *,
                            reply_to: int | None = None, protect: bool = False) -> int:
        """Send a map pin; return Telegram's message id."""
        ...

    async def send_contact(self, chat_id: int, phone_number: str, first_name: str, last_name: str | None = None,
                           *, reply_to: int | None = None, protect: bool = False) -> int:
        """Send a contact card; return Telegram's message id."""
        ...
