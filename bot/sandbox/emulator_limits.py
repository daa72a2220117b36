"""Telegram's flood limits, enforced with sliding windows, and a meter that measures what a bot did."""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

#: Methods that put a message into a chat; they count against the limits.
SEND_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendvoice",
        "sendvideo",
        "sendaudio",
        "sendanimation",
        "sendsticker",
        "sendlocation",
        "sendcontact",
        "sendvideonote",
        "copymessage",
        "forwardmessage",
    }
)
#: Edits are throttled by Telegram too ("Too Many Requests" on a status message edited too often).
EDIT_METHODS = frozenset({"editmessagetext", "editmessagecaption", "editmessagereplymarkup"})


@dataclass(frozen=True)
class RateLimits:
    """How many messages a bot may send, each limit over a sliding window; 0 means no limit.

    A burst in one chat is expressed as a bigger count over a longer window, e.g.
    `per_chat=3, per_chat_window=3.0` lets three messages go at once, then about one a second.
    """

    per_chat: int = 1
    per_chat_window: float = 1.0
    overall: int = 30
    overall_window: float = 1.0
    per_group: int = 20
    per_group_window: float = 60.0
    limit_edits: bool = True

    @classmethod
    def telegram(cls) -> RateLimits:
        """Return the limits Telegram documents: 1/s per chat, 30/s per bot, 20/min per group."""
        return cls()

    @classmethod
    def unlimited(cls) -> RateLimits:
        """Return limits that never refuse anything (for tests that do not measure throughput)."""
        return cls(per_chat=0, overall=0, per_group=0)

    def to_dict(self) -> dict[str, Any]:
        """Return the limits as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RateLimits:
        """Build limits from a dict (unknown keys are refused)."""
        return cls(**data)

    def applies_to(self, method: str) -> bool:
        """Tell whether a (lower-case) Bot API method counts against these limits."""
        return method in SEND_METHODS or (self.limit_edits and method in EDIT_METHODS)


class _Window:
    """Timestamps of accepted messages within one sliding window."""

    __slots__ = ("stamps",)

    def __init__(self) -> None:
        self.stamps: deque[float] = deque()

    def retry_after(self, now: float, limit: int, window: float) -> int | None:
        """Return seconds to wait if one more message now would exceed the limit, else None."""
        if limit <= 0:
            return None
        while self.stamps and self.stamps[0] <= now - window:
            self.stamps.popleft()
        if len(self.stamps) < limit:
            return None
        return max(1, math.ceil(self.stamps[0] + window - now))


@dataclass
class RateLimiter:
    """Decides, per bot, whether one more message to a chat is allowed right now."""

    limits: RateLimits = field(default_factory=RateLimits.telegram)
    _chats: dict[tuple[int, int], _Window] = field(default_factory=dict)
    _bots: dict[int, _Window] = field(default_factory=dict)

    def acquire(self, bot_id: int, chat_id: int, is_group: bool, now: float) -> tuple[str, int] | None:
        """Take one message slot; return None, or (which limit, retry_after seconds) when refused."""
        chat = self._chats.setdefault((bot_id, chat_id), _Window())
        overall = self._bots.setdefault(bot_id, _Window())
        if is_group:
            chat_limit, chat_window, scope = self.limits.per_group, self.limits.per_group_window, "group"
        else:
            chat_limit, chat_window, scope = self.limits.per_chat, self.limits.per_chat_window, "chat"
        wait = chat.retry_after(now, chat_limit, chat_window)
        if wait is not None:
            return scope, wait
        wait = overall.retry_after(now, self.limits.overall, self.limits.overall_window)
        if wait is not None:
            return "overall", wait
        chat.stamps.append(now)
        overall.stamps.append(now)
        return None

    def reset(self) -> None:
        """Forget every window."""
        self._chats.clear()
        self._bots.clear()


def _max_in_window(stamps: list[float], window: float) -> int:
    """Return the largest number of stamps inside any half-open window [t, t + window)."""
    stamps = sorted(stamps)
    best, left = 0, 0
    for right, stamp in enumerate(stamps):
        while stamps[left] <= stamp - window:
            left += 1
        best = max(best, right - left + 1)
    return best


@dataclass
class RateMeter:
    """Every send-type call the emulator accepted or refused, so tests can measure a bot's pacing."""

    #: (monotonic time, bot id, chat id, method) of every accepted message-producing call.
    sends: list[tuple[float, int, int, str]] = field(default_factory=list)
    #: Every Bot API call by method name, whatever its outcome.
    calls: Counter[str] = field(default_factory=Counter)
    #: 429 answers by cause: "chat", "group", "overall" or "fault" (injected).
    rejections: Counter[str] = field(default_factory=Counter)

    @property
    def count_429(self) -> int:
        """Return how many 429 Too Many Requests answers the bot received."""
        return sum(self.rejections.values())

    def record_send(self, now: float, bot_id: int, chat_id: int, method: str) -> None:
        """Note one accepted message-producing call."""
        self.sends.append((now, bot_id, chat_id, method))

    def max_per_second_overall(self, window: float = 1.0) -> int:
        """Return the most messages one bot sent within any sliding window (1 s by default)."""
        bots = {bot for _, bot, _, _ in self.sends}
        return max(
            (_max_in_window([t for t, b, _, _ in self.sends if b == bot], window) for bot in bots), default=0
        )

    def max_per_second_chat(self, chat_id: int | None = None, window: float = 1.0) -> int:
        """Return the most messages sent to one chat (or to the given chat) within any sliding window."""
        per_chat: dict[tuple[int, int], list[float]] = {}
        for stamp, bot, chat, _ in self.sends:
            if chat_id is None or chat == chat_id:
                per_chat.setdefault((bot, chat), []).append(stamp)
        return max((_max_in_window(stamps, window) for stamps in per_chat.values()), default=0)

    def max_per_minute_group(self) -> int:
        """Return the most messages sent to one group chat within any sliding minute."""
        per_chat: dict[tuple[int, int], list[float]] = {}
        for stamp, bot, chat, _ in self.sends:
            if chat < 0:
                per_chat.setdefault((bot, chat), []).append(stamp)
        return max((_max_in_window(stamps, 60.0) for stamps in per_chat.values()), default=0)

    def sends_per_second(self) -> float:
        """Return the average rate of accepted messages between the first and the last one (0 if unknown)."""
        if len(self.sends) < 2:
            return 0.0
        elapsed = self.sends[-1][0] - self.sends[0][0]
        return (len(self.sends) - 1) / elapsed if elapsed > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """Return the figures as a JSON-ready dict (also served at GET /control/meter)."""
        return {
            "sends": len(self.sends),
            "sends_by_method": dict(Counter(method for _, _, _, method in self.sends)),
            "calls": dict(self.calls),
            "count_429": self.count_429,
            "rejections": dict(self.rejections),
            "max_per_second_overall": self.max_per_second_overall(),
            "max_per_second_chat": self.max_per_second_chat(),
            "max_per_minute_group": self.max_per_minute_group(),
            "sends_per_second": round(self.sends_per_second(), 3),
        }

    def reset(self) -> None:
        """Forget everything measured so far."""
        self.sends.clear()
        self.calls.clear()
        self.rejections.clear()
