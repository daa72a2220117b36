"""Fixtures: a fresh migrated database per test (SQLite, or PostgreSQL when LIAISON_TEST_DATABASE_URL is
set), settings in a temporary data directory, and the core services built on them."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.clock import SystemClock
from bot.config import Secret, Settings
from bot.core import Core
from bot.i18n import Catalogs
from tests.support.databases import DatabaseFactory
from tests.support.translators import TagTranslator

TEST_TOKEN = "123456789:TEST-token-abcdefghijklmnopqrstuvwxyz"
FLORES_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "flores"


@pytest.fixture(scope="session")
def db_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    """Create the migrated template database once per test session."""
    factory = DatabaseFactory(tmp_path_factory.mktemp("dbtemplate"))
    yield factory
    factory.close()


@pytest.fixture
def db_url(db_factory: DatabaseFactory, tmp_path: Path) -> Iterator[str]:
    """Return the URL of a fresh database at the migration head."""
    url = db_factory.fresh(tmp_path)
    yield url
    db_factory.drop(url)


@pytest.fixture(scope="session")
def catalogs() -> Catalogs:
    """Load the gettext catalogs once."""
    return Catalogs()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Return settings for a test: temporary data dir, fresh database, fixed data key and token."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        telegram_token=Secret(TEST_TOKEN),
        data_key=Secret(base64.urlsafe_b64encode(os.urandom(32)).decode()),
        bot_username="liaison_test_bot",
    )


@pytest.fixture
def translator() -> TagTranslator:
    """Return the deterministic tagging translator."""
    return TagTranslator()


@pytest.fixture
def core(settings: Settings, translator: TagTranslator, catalogs: Catalogs) -> Iterator[Core]:
    """Return the core services on a fresh database."""
    c = Core.build(settings, translator=translator, clock=SystemClock(), catalogs=catalogs)
    yield c
    c.close()


@pytest.fixture(autouse=True)
def _quiet_logs() -> None:
    """Keep third-party debug chatter out of failing-test output."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
