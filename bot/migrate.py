"""Run Alembic programmatically (`liaison db ...` and the tests)."""

from __future__ import annotations

import io
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot.db import make_engine


def migrations_dir() -> Path:
    """Return the folder of the `migrations` package."""
    import migrations

    return Path(migrations.__file__).parent


def alembic_config(url: str) -> Config:
    """Return an Alembic config pointing at our migrations and the given database."""
    cfg = Config(stdout=io.StringIO())
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database up to a revision (default: the newest)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Take the database back to a revision ('base' removes everything)."""
    command.downgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    """Return the database's current revision, or None when it has none."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """Return the newest revision of the code."""
    rev = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert rev is not None
    return rev


def revision(url: str, message: str) -> None:
    """Autogenerate a new revision from the models (for developers)."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
