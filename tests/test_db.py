"""SQLite is set up for a bot that writes concurrently; read sessions never wait for writers."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bot.core import Core


def test_sqlite_pragmas(core: Core) -> None:
    """WAL journal, foreign keys on, a busy timeout."""
    if core.db.dialect != "sqlite":
        pytest.skip("SQLite settings")
    with core.db.session() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert s.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


def test_read_session_inside_a_write_transaction(core: Core) -> None:
    """A read opened while a write transaction holds the lock answers at once (no busy-timeout wait)."""
    with core.db.transaction() as w:
        w.execute(text("INSERT INTO kv (key, value) VALUES ('probe', 'x')"))
        with core.db.session() as r:
            assert r.execute(text("SELECT count(*) FROM kv WHERE key = 'probe'")).scalar() == 0
    with core.db.session() as r:
        assert r.execute(text("SELECT value FROM kv WHERE key = 'probe'")).scalar() == "x"
