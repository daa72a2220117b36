"""What the emulator stores: users, files, messages, callback queries, injected faults, API errors."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.emulator_html import render_html


class ApiError(Exception):
    """A Bot API failure, answered as {"ok": false, "error_code": ..., "description": ...}."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        """Return the JSON body Telegram sends for this error."""
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> ApiError:
    """Return a 400 error with Telegram's "Bad Request: ..." wording."""
    return ApiError(400, f"Bad Request: {detail}")


def too_many_requests(retry_after: int) -> ApiError:
    """Return the 429 error Telegram sends when a flood limit is hit."""
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


class ControlError(ValueError):
    """A control-API call that cannot be done (unknown user, no such button, ...)."""


@dataclass
class User:
    """A Telegram account: a person driven through the control API, or a bot."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False

    def to_api(self) -> dict[str, Any]:
        """Return the Bot API User object."""
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    def to_dict(self) -> dict[str, Any]:
        """Return the user as a JSON-ready dict (same shape as the Bot API User)."""
        return self.to_api()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> User:
        """Build a user from its dict form."""
        return cls(
            id=int(data["id"]),
            first_name=data["first_name"],
            last_name=data.get("last_name"),
            username=data.get("username"),
            language_code=data.get("language_code"),
            is_bot=bool(data.get("is_bot", False)),
        )

    @property
    def full_name(self) -> str:
        """Return first and last name joined."""
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@dataclass
class StoredFile:
    """The bytes of an uploaded file, addressable by file_id and downloadable at file_path."""

    file_id: str
    file_unique_id: str
    kind: str
    file_path: str
    data: bytes | None = field(default=None, repr=False)
    file_name: str | None = None
    mime_type: str | None = None
    size: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the file's description without its bytes (they are at `url`)."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "kind": self.kind,
            "file_path": self.file_path,
            "file_name": self.file_name,
            "mime_type": self.mime_type,
            "size": self.size,
            "url": f"/control/files/{self.file_id}",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredFile:
        """Build a file description (without bytes) from its dict form."""
        return cls(
            file_id=data["file_id"],
            file_unique_id=data["file_unique_id"],
            kind=data["kind"],
            file_path=data["file_path"],
            file_name=data.get("file_name"),
            mime_type=data.get("mime_type"),
            size=int(data.get("size", 0)),
        )


#: Fields of a message that an edit can change; a version is a dict of these.
VERSION_FIELDS = ("text", "caption", "entities", "raw_text", "parse_mode", "reply_markup", "edit_date")


@dataclass
class MessageRecord:
    """One message in a chat, as the emulator keeps it: current content, edit history, deletion."""

    chat_id: int
    message_id: int
    from_bot: bool
    sender_id: int
    date: int
    kind: str  # text, photo, document, voice, video, audio, animation, sticker, location, contact
    text: str | None = None  # plain text after entity parsing (text messages)
    caption: str | None = None  # plain caption after entity parsing (media)
    entities: list[dict[str, Any]] = field(default_factory=list)  # of the text or the caption
    raw_text: str | None = None  # the text or caption exactly as the bot sent it (e.g. with HTML tags)
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    reply_to_message_id: int | None = None
    protect_content: bool = False
    disable_notification: bool = False
    link_preview_options: dict[str, Any] | None = None
    media: dict[str, Any] = field(default_factory=dict)  # Bot API fields: photo, document, location, ...
    file: StoredFile | None = None  # the file behind the media (largest photo size)
    forward_origin: dict[str, Any] | None = None
    method: str = ""  # the Bot API method that created it, or "user"
    edit_date: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier versions, oldest first
    deleted: bool = False

    @property
    def body(self) -> str:
        """Return the text, or the caption of a media message ('' if neither)."""
        return self.text if self.text is not None else (self.caption or "")

    @property
    def html(self) -> str:
        """Return the current text or caption rendered as Telegram HTML (how a client shows it)."""
        return render_html(self.body, self.entities)

    @property
    def edited(self) -> bool:
        """Tell whether the message was edited at least once."""
        return bool(self.history)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Return the inline keyboard's buttons, row by row, as one flat list."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]

    @property
    def button_texts(self) -> list[str]:
        """Return the labels of the inline keyboard's buttons."""
        return [button.get("text", "") for button in self.buttons]

    def version(self) -> dict[str, Any]:
        """Return the current content as a version dict."""
        return {key: copy.deepcopy(getattr(self, key)) for key in VERSION_FIELDS}

    @property
    def versions(self) -> list[dict[str, Any]]:
        """Return every version, the original first and the current one last."""
        return [*self.history, self.version()]

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict (files without their bytes)."""
        data = {key: copy.deepcopy(value) for key, value in self.__dict__.items() if key != "file"}
        data["file"] = self.file.to_dict() if self.file else None
        data["body"] = self.body
        data["html"] = self.html
        data["edited"] = self.edited
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MessageRecord:
        """Build a record from its dict form (as returned by the control API)."""
        names = set(cls.__dataclass_fields__)
        values = {key: value for key, value in data.items() if key in names and key != "file"}
        record = cls(**values)
        if data.get("file"):
            record.file = StoredFile.from_dict(data["file"])
        return record


@dataclass
class CallbackRecord:
    """A button press sent to the bot as a callback query, and the bot's answer."""

    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    answered: bool = False
    text: str | None = None
    show_alert: bool = False
    url: str | None = None
    cache_time: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallbackRecord:
        """Build a record from its dict form."""
        return cls(**{key: value for key, value in data.items() if key in cls.__dataclass_fields__})


@dataclass
class Fault:
    """Make the next `times` calls of a method (optionally for one chat) misbehave.

    The call waits `delay` seconds; then, if `process` is set, it is carried out (the message is sent)
    before the failure, like a response lost on the way back. The failure is the given error
    (`error_code`, `description`, `retry_after`) or, with `drop`, a closed connection without answer.
    """

    method: str
    times: int = 1
    chat_id: int | None = None
    error_code: int | None = None
    description: str | None = None
    retry_after: int | None = None
    delay: float = 0.0
    drop: bool = False
    process: bool = False
    id: int = 0
    used: int = 0

    def __post_init__(self) -> None:
        self.method = self.method.lower()
        if self.error_code is None and self.retry_after is not None:
            self.error_code = 429
        if self.error_code is not None and self.description is None:
            self.description = _DEFAULT_DESCRIPTIONS.get(self.error_code, "Internal Server Error")
            if self.error_code == 429:
                self.retry_after = self.retry_after or 1
                self.description = f"Too Many Requests: retry after {self.retry_after}"

    def matches(self, method: str, chat_id: int | None) -> bool:
        """Tell whether this fault applies to a call of `method` (lower case) for `chat_id`."""
        if self.times <= 0 or self.method not in (method, "*"):
            return False
        return self.chat_id is None or self.chat_id == chat_id

    def error(self) -> ApiError | None:
        """Return the API error this fault answers with, if any."""
        if self.error_code is None:
            return None
        return ApiError(self.error_code, self.description or "", self.retry_after)

    def to_dict(self) -> dict[str, Any]:
        """Return the fault as a JSON-ready dict."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from its dict form."""
        return cls(**{key: value for key, value in data.items() if key in cls.__dataclass_fields__})


_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    403: "Forbidden: bot was blocked by the user",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}
