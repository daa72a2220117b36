"""Appends from two separate processes on one PostgreSQL database: the chain neither forks nor gaps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import audit
from bot.core import Core
from bot.models import AuditEvent

ROOT = Path(__file__).resolve().parents[2]

APPENDER = """
import sys, time
from pathlib import Path
from bot import audit
from bot.db import Database
url, tag, n, barrier = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
db = Database(url)
with db.transaction() as s:  # connected and warm
    audit.lock_head(s)
(barrier / tag).touch()
while len(list(barrier.iterdir())) < 2:  # both processes ready: go at once
    time.sleep(0.001)
for i in range(n):
    with db.transaction() as s:
        audit.record(s, "test.process", data={"p": tag, "i": i})
db.close()
"""


def test_two_processes_append_on_postgresql(core: Core, tmp_path: Path) -> None:
    """Two OS processes append 150 events each at the same moment: seq 1..300, one unbroken chain."""
    if core.db.dialect != "postgresql":
        pytest.skip(
            "needs PostgreSQL (set LIAISON_TEST_DATABASE_URL); SQLite serializes writers in one file, "
            "see test_two_threads_append_without_fork_or_gap"
        )
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, core.settings.database_url, tag, "150", str(barrier)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        for tag in ("A", "B")
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    result = audit.verify_chain(core.db)
    assert result.ok, result.summary()
    assert result.events == 300
    with core.db.session() as s:
        rows = s.execute(select(AuditEvent.seq, AuditEvent.data).order_by(AuditEvent.seq)).all()
    assert [r.seq for r in rows] == list(range(1, 301))
    order = "".join(r.data.split('"p":"')[1][0] for r in rows)
    assert order.count("A") == order.count("B") == 150
    # They really ran at the same time: the two processes' events interleave.
    assert "AB" in order and "BA" in order, order


def test_two_processes_append_on_sqlite_file(core: Core, tmp_path: Path) -> None:
    """The same with two processes on one SQLite file (BEGIN IMMEDIATE serializes them)."""
    if core.db.dialect != "sqlite":
        pytest.skip("the SQLite variant of the two-process test")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, core.settings.database_url, tag, "100", str(barrier)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        for tag in ("A", "B")
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    result = audit.verify_chain(core.db)
    assert result.ok and result.events == 200, result.summary()
