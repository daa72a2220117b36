"""The Bot API emulator (a local stand-in for Telegram) and the sandbox built on it."""

from bot.sandbox.client import EmulatorClient
from bot.sandbox.emulator import DEFAULT_TOKEN, BotApiEmulator
from bot.sandbox.emulator_limits import RateLimits, RateMeter
from bot.sandbox.emulator_records import CallbackRecord, ControlError, Fault, MessageRecord, StoredFile, User

__all__ = [
    "DEFAULT_TOKEN",
    "BotApiEmulator",
    "CallbackRecord",
    "ControlError",
    "EmulatorClient",
    "Fault",
    "MessageRecord",
    "RateLimits",
    "RateMeter",
    "StoredFile",
    "User",
]
