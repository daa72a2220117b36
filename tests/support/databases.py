"""Fresh, migrated databases per test: a copied SQLite file, or a PostgreSQL database from a template."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

from bot import migrate

PG_ENV = "LIAISON_TEST_DATABASE_URL"


def pg_server_url() -> str | None:
    """Return the PostgreSQL server URL the suite runs against, or None for SQLite."""
    return os.environ.get(PG_ENV) or None


def _pg_admin(server_url: str):  # type: ignore[no-untyped-def]
    import psycopg

    url = make_url(server_url)
    return psycopg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password,
        dbname=url.database or "postgres", autocommit=True,
    )


def _with_db(server_url: str, name: str) -> str:
    url = make_url(server_url).set(database=name)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


class DatabaseFactory:
    """Makes one migrated template per session and hands out fresh copies of it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.server = pg_server_url()
        self.created: list[str] = []
        self.template = f"liaison_tpl_{uuid.uuid4().hex[:8]}"
        if self.server:
            with _pg_admin(self.server) as conn:
                conn.execute(f'CREATE DATABASE "{self.template}"')
            self.created.append(self.template)
            migrate.upgrade(_with_db(self.server, self.template))
        else:
            self.template_file = workdir / "template.db"
            migrate.upgrade(f"sqlite:///{self.template_file}")

    @property
    def dialect(self) -> str:
        """Return 'postgresql' or 'sqlite'."""
        return "postgresql" if self.server else "sqlite"

    def fresh(self, directory: Path) -> str:
        """Return the URL of a new database already at the migration head."""
        if self.server:
            name = f"liaison_t_{uuid.uuid4().hex[:10]}"
            with _pg_admin(self.server) as conn:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            self.created.append(name)
            return _with_db(self.server, name)
        target = directory / "liaison.db"
        shutil.copyfile(self.template_file, target)
        return f"sqlite:///{target}"

    def empty(self, directory: Path) -> str:
        """Return the URL of a new, empty database (for migration tests)."""
        if self.server:
            name = f"liaison_e_{uuid.uuid4().hex[:10]}"
            with _pg_admin(self.server) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            self.created.append(name)
            return _with_db(self.server, name)
        return f"sqlite:///{directory / 'empty.db'}"

    def drop(self, url: str) -> None:
        """Drop a database made by `fresh` or `empty` (PostgreSQL; SQLite files go with tmp_path)."""
        if not self.server:
            return
        name = make_url(url).database
        with _pg_admin(self.server) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if name in self.created:
            self.created.remove(name)

    def close(self) -> None:
        """Drop every database still left (the template last)."""
        for name in list(reversed(self.created)):
            self.drop(_with_db(self.server, name)) if self.server else None
