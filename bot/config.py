"""Settings from environment variables and an optional TOML file, validated once at start."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

DEFAULT_API_URL = "https://api.telegram.org"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING")


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line meant for the administrator."""


class Secret:
    """A string that never shows itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """Return the secret value; call only where it is really used."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """Everything the bot is configured with; build it with `load_settings`."""

    data_dir: Path
    database_url: str
    telegram_token: Secret | None = None
    telegram_api_url: str = DEFAULT_API_URL
    log_level: str = "INFO"
    #: base64 (urlsafe) 32-byte key for encryption at rest; None = key file in data_dir
    data_key: Secret | None = None
    retention_days: int | None = None
    models_dir: Path | None = None
    translation_beam_size: int = 2
    #: preferred engine order when several installed models cover a direction
    translation_engines: tuple[str, ...] = ("argos", "nllb", "madlad", "m2m100", "marian")
    translation_threads: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    #: Telegram chat that receives error reports from the global error handler
    admin_chat_id: int | None = None
    #: minutes before an urgent broadcast is re-sent to those who have not acknowledged it
    broadcast_resend_minutes: int = 30
    #: local hour at which reminders go out
    reminder_hour: int = 9
    #: the bot's @username without '@' (for invite links when the CLI cannot ask Telegram)
    bot_username: str | None = None
    #: Telegram calls per second this process may make overall (give each process a share when several run)
    delivery_rate: int = 30
    #: seconds between two messages to the same chat (Telegram: about one a second)
    delivery_chat_interval: float = 1.0

    @property
    def resolved_models_dir(self) -> Path:
        """Return where translation models are installed."""
        return self.models_dir or (self.data_dir / "models")

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed (tests, sandbox)."""
        return replace(self, **changes)


_ENV_PREFIX = "LIAISON_"


def _parse_int(name: str, raw: Any, minimum: int | None = None) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{_ENV_PREFIX}{name.upper()} must be a whole number, got {str(raw)!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{_ENV_PREFIX}{name.upper()} must be at least {minimum}, got {value}")
    return value


def _parse_float(name: str, raw: Any) -> float:
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{_ENV_PREFIX}{name.upper()} must be a number, got {str(raw)!r}") from None
    if value < 0:
        raise ConfigError(f"{_ENV_PREFIX}{name.upper()} must not be negative, got {value}")
    return value


def load_settings(config_file: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from an optional TOML file overridden by `LIAISON_*` environment variables."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            with path.open("rb") as fh:
                raw.update({k.lower(): v for k, v in tomllib.load(fh).items()})
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    known = {f.name for f in fields(Settings)}
    for key, value in env.items():
        if key.startswith(_ENV_PREFIX):
            name = key[len(_ENV_PREFIX) :].lower()
            if name in known and value != "":
                raw[name] = value
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) in config file: {', '.join(sorted(unknown))}")

    data_dir = Path(raw.get("data_dir") or platformdirs.user_data_dir("liaison")).expanduser()
    database_url = str(raw.get("database_url") or f"sqlite:///{data_dir / 'liaison.db'}")
    if "://" not in database_url:
        raise ConfigError(f"LIAISON_DATABASE_URL is not a database URL: {database_url!r}")
    api_url = str(raw.get("telegram_api_url") or DEFAULT_API_URL).rstrip("/")
    if not api_url.startswith(("http://", "https://")):
        raise ConfigError(f"LIAISON_TELEGRAM_API_URL must start with http:// or https://, got {api_url!r}")
    log_level = str(raw.get("log_level") or "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"LIAISON_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    token = raw.get("telegram_token")
    if token is not None:
        token = str(token).strip()
        if ":" not in token or any(c.isspace() for c in token):
            raise ConfigError("LIAISON_TELEGRAM_TOKEN does not look like a bot token (expected <id>:<secret>)")
    data_key = raw.get("data_key")
    retention = raw.get("retention_days")
    engines = raw.get("translation_engines")
    if isinstance(engines, str):
        engines = tuple(e.strip() for e in engines.split(",") if e.strip())
    admin_chat = raw.get("admin_chat_id")
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        telegram_token=Secret(token) if token else None,
        telegram_api_url=api_url,
        log_level=log_level,
        data_key=Secret(str(data_key)) if data_key else None,
        retention_days=_parse_int("retention_days", retention, 1) if retention is not None else None,
        models_dir=Path(raw["models_dir"]).expanduser() if raw.get("models_dir") else None,
        translation_beam_size=_parse_int("translation_beam_size", raw.get("translation_beam_size", 2), 1),
        translation_engines=tuple(engines) if engines else Settings.__dataclass_fields__[
            "translation_engines"
        ].default,  # type: ignore[arg-type]
        translation_threads=_parse_int(
            "translation_threads", raw.get("translation_threads", max(1, os.cpu_count() or 1)), 1
        ),
        admin_chat_id=_parse_int("admin_chat_id", admin_chat) if admin_chat is not None else None,
        broadcast_resend_minutes=_parse_int(
            "broadcast_resend_minutes", raw.get("broadcast_resend_minutes", 30), 1
        ),
        reminder_hour=_parse_int("reminder_hour", raw.get("reminder_hour", 9), 0),
        bot_username=str(raw["bot_username"]).lstrip("@") if raw.get("bot_username") else None,
        delivery_rate=_parse_int("delivery_rate", raw.get("delivery_rate", 30), 1),
        delivery_chat_interval=_parse_float("delivery_chat_interval", raw.get("delivery_chat_interval", 1.0)),
    )
    if settings.reminder_hour > 23:
        raise ConfigError("LIAISON_REMINDER_HOUR must be between 0 and 23")
    return settings


def require_token(settings: Settings) -> Secret:
    """Return the bot token or fail with the one-line error `liaison run` shows."""
    if settings.telegram_token is None:
        raise ConfigError("LIAISON_TELEGRAM_TOKEN is not set (get a token from @BotFather)")
    return settings.telegram_token
