"""Settings: environment variables and TOML, validated with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings, require_token


def test_defaults_need_nothing(tmp_path: Path) -> None:
    """With no variables, the data dir and a SQLite database default sensibly; the token is optional."""
    s = load_settings(env={"LIAISON_DATA_DIR": str(tmp_path)})
    assert s.data_dir == tmp_path and s.database_url == f"sqlite:///{tmp_path / 'liaison.db'}"
    assert s.telegram_api_url == "https://api.telegram.org" and s.log_level == "INFO"
    with pytest.raises(ConfigError, match="LIAISON_TELEGRAM_TOKEN is not set"):
        require_token(s)


def test_env_overrides_file(tmp_path: Path) -> None:
    """A TOML file is read and environment variables win over it."""
    cfg = tmp_path / "liaison.toml"
    cfg.write_text('log_level = "DEBUG"\ntelegram_api_url = "http://127.0.0.1:9/"\nretention_days = 30\n')
    s = load_settings(cfg, env={"LIAISON_LOG_LEVEL": "warning", "LIAISON_DATA_DIR": str(tmp_path)})
    assert s.log_level == "WARNING" and s.telegram_api_url == "http://127.0.0.1:9" and s.retention_days == 30


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LIAISON_LOG_LEVEL": "LOUD"}, "LIAISON_LOG_LEVEL must be one of"),
        ({"LIAISON_TELEGRAM_API_URL": "ftp://x"}, "must start with http"),
        ({"LIAISON_TELEGRAM_TOKEN": "not a token"}, "does not look like a bot token"),
        ({"LIAISON_RETENTION_DAYS": "soon"}, "LIAISON_RETENTION_DAYS must be a whole number"),
        ({"LIAISON_DATABASE_URL": "liaison.db"}, "is not a database URL"),
    ],
)
def test_malformed_values_fail_clearly(env: dict[str, str], message: str, tmp_path: Path) -> None:
    """Each malformed value gives a one-line error naming the variable."""
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(env={"LIAISON_DATA_DIR": str(tmp_path), **env})
    assert "\n" not in str(err.value)


def test_token_never_in_repr(tmp_path: Path) -> None:
    """The token is a secret: not in the settings' repr."""
    s = load_settings(env={"LIAISON_TELEGRAM_TOKEN": "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ", "LIAISON_DATA_DIR": str(tmp_path)})
    assert "ABCDEFGHIJ" not in repr(s) and s.telegram_token is not None
    assert s.telegram_token.get().endswith("XYZ")


def test_bad_config_file(tmp_path: Path) -> None:
    """A missing or broken file and unknown keys are reported."""
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("log_level = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, env={})
    bad.write_text('colour = "red"\n')
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(bad, env={})
