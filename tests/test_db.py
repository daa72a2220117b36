"""SQLite is set up for a bot that writes concurrently; read sessions never wait for writers."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bot.core import Core
from bot.db import Database


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


def test_a_pooled_connection_killed_while_idle_is_replaced(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: a server connection that died in the pool (restart, dropped link) is noticed at checkout
    and replaced, so the next transaction succeeds; one handed back moments ago is used without a ping."""
    if core.db.dialect != "postgresql":
        pytest.skip("needs PostgreSQL (set LIAISON_TEST_DATABASE_URL); SQLite has no server connection to lose")
    from bot import db as dbmodule

    with core.db.transaction() as s:
        pid = s.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    pings: list[int] = []
    original = core.db.engine.dialect.do_ping
    monkeypatch.setattr(core.db.engine.dialect, "do_ping", lambda conn: pings.append(1) or original(conn))
    with core.db.transaction() as s:  # handed back moments ago: no ping
        assert s.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one() == pid
    assert pings == []
    killer = Database(core.settings.database_url)
    try:
        with killer.transaction() as s:
            assert s.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    finally:
        killer.close()
    monkeypatch.setattr(dbmodule, "PING_AFTER_IDLE", 0.0)  # as if it had been idle for a while
    with core.db.transaction() as s:
        fresh = s.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    assert fresh != pid and pings
