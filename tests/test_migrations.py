"""Migrations produce exactly the models' schema, and go down and up again cleanly."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from bot import migrate
from bot.db import make_engine
from bot.models import Base
from tests.support.databases import DatabaseFactory


def _diff(url: str) -> list:  # type: ignore[type-arg]
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            return compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()


def test_migrations_match_models(db_factory: DatabaseFactory, tmp_path: Path) -> None:
    """Autogenerate finds no difference between the migrated database and the models."""
    url = db_factory.empty(tmp_path)
    try:
        migrate.upgrade(url)
        assert migrate.current(url) == migrate.head()
        assert _diff(url) == []
    finally:
        db_factory.drop(url)


def test_upgrade_downgrade_upgrade(db_factory: DatabaseFactory, tmp_path: Path) -> None:
    """Upgrade, downgrade to base (no tables left), and upgrade again."""
    url = db_factory.empty(tmp_path)
    try:
        migrate.upgrade(url)
        migrate.downgrade(url, "base")
        engine = make_engine(url)
        try:
            assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        finally:
            engine.dispose()
        assert migrate.current(url) is None
        migrate.upgrade(url)
        assert migrate.current(url) == migrate.head()
        assert _diff(url) == []
    finally:
        db_factory.drop(url)


def test_create_all_matches_migrations(db_factory: DatabaseFactory, tmp_path: Path) -> None:
    """The models alone (create_all) and the migrations name tables and constraints identically."""
    url = db_factory.empty(tmp_path)
    try:
        engine = make_engine(url)
        try:
            Base.metadata.create_all(engine)
            names = set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
        assert names == set(Base.metadata.tables)
    finally:
        db_factory.drop(url)
