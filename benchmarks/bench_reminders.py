"""Reminder tick benchmark: how long one scheduler tick takes with 10,000 open action items.

Seeds a fresh database (SQLite file, and PostgreSQL when a server URL is given or found) with 60 officers
of the three countries, one coordinator, 100 meetings and 10,000 open items with one owner each, due dates
spread over the next 90 days (texts encrypted and stored in two languages, as the bot stores them). The
rows are bulk-inserted (recording 10,000 items through the service would take minutes of audit appends
and is not what is measured). Then it times `bot.reminders.tick` — the whole claim transaction: stale
claims, revoked owners, due owners (FOR UPDATE SKIP LOCKED on PostgreSQL), escalations, digests, pending
notices, and rendering the claimed messages in each recipient's language:

  quiet    nothing is due (most minutes of a day)
  morning  100 owners due at once (a busy 09:00)
  batch    every one of the 10,000 owners due (after a long outage): one tick claims a full batch (200)
  drain    the same, ticking until nothing is due (50 ticks of 200; each batch is marked sent between
           two ticks, as `deliver` would, untimed)
  digest   the tick that renders the weekly digest of a coordinator of all 10,000 items (Monday 09:00)

Usage: .venv/bin/python benchmarks/bench_reminders.py [--items 10000] [--runs 7] [--pg-url URL] [--no-pg]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select, update  # noqa: E402

from bot import migrate, reminders, vetting  # noqa: E402
from bot.clock import FakeClock  # noqa: E402
from bot.config import Secret, Settings  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.models.meetings import ActionItem, ActionOwner, Meeting, MeetingMessage, MeetingText  # noqa: E402
from bot.translation.base import PassThroughTranslator  # noqa: E402

NOW = datetime(2026, 9, 1, 1, 30, tzinfo=UTC)
OFFICERS = 60


def _seed(core: Core, items: int) -> list[int]:
    """Register officers through invites, then bulk-insert meetings, items, texts and owners."""
    coordinator = vetting.register(
        core,
        telegram_id=1,
        code=vetting.create_invite(core, None, role="coordinator", country="VN").code,
        display_name="Coordinator",
        username="coord",
    )
    officers = []
    for i in range(OFFICERS):
        country = ("CN", "LA", "VN")[i % 3]
        code = vetting.create_invite(core, None, role="officer", country=country).code
        officers.append(
            vetting.register(
                core, telegram_id=100 + i, code=code, display_name=f"Officer {i}", username=f"officer_{i}"
            )
        )
    rnd = random.Random(7)
    now = core.clock.now()
    schedule, hour = reminders.DEFAULT_SCHEDULE, core.settings.reminder_hour
    with core.db.transaction() as s:
        meeting_ids = []
        for m in range(100):
            row = Meeting(
                title=core.cipher.encrypt(f"Meeting {m}", reminders.ENCRYPTION_AAD["title"]),
                held_on=date(2026, 8, 1),
                language="en",
                coordinator_id=coordinator.id,
                created_at=now,
                source="import",
                fingerprint=uuid.uuid4().hex,
            )
            s.add(row)
            s.flush()
            meeting_ids.append(row.id)
            reminders.store_texts(
                s,
                core,
                row.id,
                None,
                PassThroughTranslator().translate(f"Meeting {m}", "en", ["en", "lo", "vi", "zh"]),
            )
        item_rows = []
        for n in range(items):
            due = (now + timedelta(days=rnd.randint(1, 90))).date()
            item_rows.append(
                {
                    "meeting_id": meeting_ids[n % 100],
                    "position": n // 100 + 1,
                    "text": core.cipher.encrypt(f"Action item number {n}", reminders.ENCRYPTION_AAD["item"]),
                    "due_on": due,
                    "case_tag": None,
                    "status": "open",
                    "created_at": now,
                    "updated_at": now,
                    "completed_at": None,
                    "completed_by_id": None,
                    "escalate_at": schedule.next_escalation(due, "Asia/Ho_Chi_Minh", hour, now),
                    "escalations": 0,
                }
            )
        ids = list(
            s.execute(
                insert(ActionItem).returning(ActionItem.id, sort_by_parameter_order=True), item_rows
            ).scalars()
        )
        texts, owners = [], []
        for n, item_id in enumerate(ids):
            officer = officers[n % OFFICERS]
            meeting_id = meeting_ids[n % 100]
            for lang in {"en", officer.language}:
                texts.append(
                    {
                        "meeting_id": meeting_id,
                        "item_id": item_id,
                        "lang": lang,
                        "engine": "bench",
                        "model": "",
                        "translated": True,
                        "text": core.cipher.encrypt(
                            f"[{lang}] Action item number {n}", reminders.text_aad(meeting_id, item_id, lang)
                        ),
                    }
                )
            owners.append(
                {
                    "item_id": item_id,
                    "officer_id": officer.id,
                    "state": "active",
                    "reminders_sent": 0,
                    "created_at": now,
                    "snoozed_until": None,
                    "last_reminded_at": None,
                    "next_remind_at": schedule.next_reminder(
                        item_rows[n]["due_on"], officer.timezone, hour, now
                    ),
                }
            )
        s.execute(insert(MeetingText), texts)
        s.execute(insert(ActionOwner), owners)
    with core.db.session() as s:
        return list(s.execute(select(ActionOwner.id).order_by(ActionOwner.id)).scalars())


def _make_due(core: Core, owner_ids: list[int]) -> None:
    at = core.clock.now() - timedelta(minutes=1)
    with core.db.transaction() as s:
        for chunk in reminders.chunks(owner_ids):
            s.execute(update(ActionOwner).where(ActionOwner.id.in_(chunk)).values(next_remind_at=at))


def _forget_messages(core: Core, *, digests: bool = False) -> None:
    table = MeetingMessage.__table__
    with core.db.transaction() as s:
        s.execute(table.delete() if digests else table.delete().where(table.c.kind != "digest"))


def _mark_sent(core: Core) -> None:
    with core.db.transaction() as s:
        s.execute(
            update(MeetingMessage)
            .where(MeetingMessage.status == "claimed")
            .values(status="sent", sent_at=core.clock.now(), claimed_at=None)
        )


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def bench(url: str, items: int, runs: int, workdir: Path) -> dict[str, Any]:
    """Seed one database and time the scenarios; return the figures in milliseconds."""
    migrate.upgrade(url)
    clock = FakeClock(NOW - timedelta(days=40))
    settings = Settings(
        data_dir=workdir / "data", database_url=url, data_key=Secret("A" * 43 + "="), telegram_token=None
    )
    core = Core.build(settings, translator=PassThroughTranslator(), clock=clock)
    try:
        t0 = time.perf_counter()
        owner_ids = _seed(core, items)
        seed_s = time.perf_counter() - t0
        if core.db.dialect == "postgresql":
            # what autovacuum does after a bulk load: fresh statistics for the planner
            with core.db.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        clock.set(NOW)
        reminders.tick(core, limit=items)  # whatever is due at NOW (a real "first tick"), untimed
        _forget_messages(core)
        out: dict[str, Any] = {"items": items, "seed_seconds": round(seed_s, 1)}
        rnd = random.Random(11)
        quiet, morning, claimed = [], [], []
        for _ in range(runs):
            clock.advance(timedelta(seconds=1))
            quiet.append(_timed(lambda: reminders.tick(core))[0])
            _make_due(core, rnd.sample(owner_ids, 100))
            clock.advance(timedelta(seconds=1))
            ms, got = _timed(lambda: reminders.tick(core))
            morning.append(ms)
            _mark_sent(core)
            claimed.append(len(got))
        out["quiet"] = quiet
        out["morning"] = morning
        out["morning_claimed"] = max(claimed)
        batch, drain = [], []
        for _ in range(max(1, runs // 3)):
            _forget_messages(core)
            _make_due(core, owner_ids)
            clock.advance(timedelta(seconds=1))
            ms, got = _timed(lambda: reminders.tick(core))
            batch.append(ms)
            total, n = ms, len(got)
            while True:
                _mark_sent(core)  # what `deliver` does between two ticks (untimed)
                ms, got = _timed(lambda: reminders.tick(core))
                total += ms
                n += len(got)
                if not got:
                    break
            drain.append(total)
            out["drain_claimed"] = n
        out["batch"] = batch
        out["drain"] = drain
        digest = []
        for _ in range(runs):
            _forget_messages(core, digests=True)
            clock.advance(timedelta(seconds=1))
            digest.append(_timed(lambda: reminders.tick(core))[0])
        out["digest"] = digest
        return out
    finally:
        core.close()


def _pg_database(server: str) -> tuple[str, Any]:
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"liaison_bench_{uuid.uuid4().hex[:8]}"
    base = make_url(server)
    admin = psycopg.connect(
        host=base.host,
        port=base.port,
        user=base.username,
        password=base.password,
        dbname=base.database or "postgres",
        autocommit=True,
    )
    admin.execute(f'CREATE DATABASE "{name}"')
    url = base.set(database=name, drivername="postgresql+psycopg").render_as_string(hide_password=False)

    def drop() -> None:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()

    return url, drop


def _machine(pg_version: str | None) -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}"
        + (f", PostgreSQL {pg_version}" if pg_version else "")
    )


def main() -> int:
    """Run the benchmark and print a Markdown table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--pg-url", default=os.environ.get("LIAISON_TEST_DATABASE_URL"))
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.pg_url and Path("/tmp/pgurl").exists():
        args.pg_url = Path("/tmp/pgurl").read_text().strip()
    results: dict[str, dict[str, Any]] = {}
    pg_version = None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results["SQLite"] = bench(f"sqlite:///{work / 'bench.db'}", args.items, args.runs, work)
        if args.pg_url and not args.no_pg:
            url, drop = _pg_database(args.pg_url)
            try:
                results["PostgreSQL"] = bench(url, args.items, args.runs, work)
                import psycopg
                from sqlalchemy.engine import make_url

                u = make_url(url)
                with psycopg.connect(
                    host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database
                ) as conn:
                    pg_version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            finally:
                drop()
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
        return 0
    out = sys.stdout.write
    out(f"Machine: {_machine(pg_version)}\n")
    out(f"Open items: {args.items}, one owner each; runs: {args.runs} (median / best, milliseconds)\n\n")
    out(
        "| database | quiet tick (nothing due) | 100 owners due | full batch due (200 claimed) | drain all "
        f"{args.items} due | weekly digest tick |\n|---|---|---|---|---|---|\n"
    )

    def cell(r: dict[str, Any], key: str) -> str:
        return f"{statistics.median(r[key]):.1f} / {min(r[key]):.1f}"

    for db, r in results.items():
        out(
            f"| {db} | {cell(r, 'quiet')} | {cell(r, 'morning')} ({r['morning_claimed']} claimed) | {cell(r, 'batch')} | "
            f"{cell(r, 'drain')} ({r['drain_claimed']} claimed) | {cell(r, 'digest')} |\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
