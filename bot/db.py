"""The database: one engine per process, SQLite tuned for a bot that writes concurrently."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

#: execution option marking a connection used only for reads
READ_ONLY = "liaison_read_only"
#: how long a SQLite writer waits for another one before giving up (milliseconds)
SQLITE_BUSY_TIMEOUT_MS = 15_000
#: a pooled server connection idle this long (seconds) is checked before it is used again
PING_AFTER_IDLE = 5.0


def _sqlite_setup(engine: Engine) -> None:
    """WAL, foreign keys, busy timeout; every transaction takes the write lock up front."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see the "begin" hook).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # BEGIN IMMEDIATE: a deferred transaction that reads and then writes can fail with
        # "database is locked" without waiting; taking the write lock first makes writers queue.
        # Read-only sessions (Database.session) take no lock: WAL lets them read beside a writer.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for a SQLAlchemy URL (SQLite file or PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        engine = create_engine(parsed, **kwargs)
        _sqlite_setup(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_after_idle(engine)
    return engine


def _ping_after_idle(engine: Engine) -> None:
    """Check a pooled server connection before use when it sat idle for `PING_AFTER_IDLE` seconds.

    A connection can die while it waits in the pool (the server restarted, a firewall dropped it);
    SQLAlchemy's `pool_pre_ping` catches that with a round trip before *every* transaction, which costs
    the busy relay one of its four round trips per transaction. A connection handed back moments ago
    is alive; one that was idle is pinged, and a dead one is replaced (SQLAlchemy retries the checkout).
    A connection that dies in use still fails that one transaction, and the pool is then refreshed.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            logger.warning("a pooled database connection was dead (%s); using a fresh one", type(exc).__name__)
            raise DisconnectionError() from exc


def insert_new(table: Any, key: str) -> dict[str, Any]:
    """Return, per dialect, an INSERT that skips rows whose `key` is stored already (ON CONFLICT DO
    NOTHING) and returns the `key` of each row it did insert — one statement, no read before."""
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return {name: make(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])
            for name, make in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))}


class Database:
    """Owns the engine and hands out sessions; services open one transaction per unit of work."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """Return 'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Yield a session inside one transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Yield a session for reads (no write lock; its transaction is rolled back at the end)."""
        with self._readers() as session:
            yield session

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.engine.dispose()
