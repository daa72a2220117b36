"""Audit benchmark: chain appends per second, `audit verify` throughput, export time and peak memory.

On SQLite (a file in a temporary folder) and on PostgreSQL (the server in $LIAISON_BENCH_PG, else the URL in
/tmp/pgurl; a throwaway database is created and dropped):
  appends  `audit.record` in its own transaction each, as the bot does: one process, and two processes at once
  verify   `verify_chain` over a chain of N events (default 1,000,000) built in bulk with real hashes
  export   `export_bundle` of M relayed messages (default 100,000; three officers per room, so two
           deliveries per message), in a fresh process: wall time and peak RSS; and the same for M/10
           messages, to show that memory does not grow with the export (it streams)

Usage: .venv/bin/python benchmarks/bench_audit.py [--events 1000000] [--messages 100000]
       [--only appends,verify,export]
       [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot import audit, migrate  # noqa: E402
from bot.config import Secret, Settings  # noqa: E402
from bot.db import Database  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = base64.urlsafe_b64encode(hashlib.sha256(b"liaison benchmark key").digest()).decode()
TEXTS = {
    "lo": "ພົບເກັດລີ່ນ 200 ກິໂລ ຢູ່ດ່ານບໍ່ເຕັນ, ຕ້ອງການຂໍ້ມູນລົດບັນທຸກ",
    "zh": "在磨憨口岸查获穿山甲鳞片两百公斤，请提供货车信息",
    "vi": "Đã bắt giữ 200 kg vảy tê tê tại cửa khẩu, cần thông tin xe tải",
}


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pg_server() -> str | None:
    """Return the PostgreSQL server to use, if any."""
    url = os.environ.get("LIAISON_BENCH_PG")
    if not url and Path("/tmp/pgurl").exists():
        url = Path("/tmp/pgurl").read_text().strip()
    return url or None


class Databases:
    """Creates fresh migrated databases of one backend and removes them afterwards."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend, self.workdir, self.made = backend, workdir, []

    def fresh(self) -> str:
        """Return the URL of a new database at the migration head."""
        if self.backend == "sqlite":
            url = f"sqlite:///{self.workdir / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        else:
            server = pg_server()
            assert server
            name = f"liaison_bench_{uuid.uuid4().hex[:8]}"
            self._admin(f'CREATE DATABASE "{name}"')
            url = (
                make_url(server)
                .set(database=name, drivername="postgresql+psycopg")
                .render_as_string(hide_password=False)
            )
        self.made.append(url)
        migrate.upgrade(url)
        return url

    def _admin(self, sql: str) -> None:
        import psycopg

        u = make_url(pg_server() or "")
        with psycopg.connect(
            host=u.host,
            port=u.port,
            user=u.username,
            password=u.password,
            dbname=u.database or "postgres",
            autocommit=True,
        ) as conn:
            conn.execute(sql)

    def drop_all(self) -> None:
        """Drop what was made."""
        for url in self.made:
            if self.backend == "postgresql":
                name = make_url(url).database
                self._admin(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
                )
                self._admin(f'DROP DATABASE IF EXISTS "{name}"')


# ---------------------------------------------------------------------------------------------------
# Appends


APPENDER = """
import sys, time
sys.path.insert(0, sys.argv[5])
from bot import audit
from bot.db import Database
url, n, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
db = Database(url)
while time.time() < start:
    time.sleep(0.002)
t = time.perf_counter()
for i in range(n):
    with db.transaction() as s:
        audit.record(s, "bench.append", actor_id=i % 50, case_tag="CN-VN-2026-0042",
                     data={"message": i, "body": "ab" * 32, "lang": "vi"})
print(time.perf_counter() - t)
db.close()
"""


def bench_appends(dbs: Databases, n: int) -> dict[str, Any]:
    """Appends per second: one process, then two processes appending at the same time."""
    url = dbs.fresh()
    db = Database(url)
    started = time.perf_counter()
    for i in range(n):
        with db.transaction() as s:
            audit.record(
                s,
                "bench.append",
                actor_id=i % 50,
                case_tag="CN-VN-2026-0042",
                data={"message": i, "body": "ab" * 32, "lang": "vi"},
            )
    one = n / (time.perf_counter() - started)
    db.close()
    url = dbs.fresh()
    start = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, url, str(n // 2), str(start), "x", str(ROOT)],
            stdout=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    t = time.time()
    for p in procs:
        p.wait()
    two = n / (time.time() - max(t, start))
    db = Database(url)
    check = audit.verify_chain(db)
    db.close()
    assert check.ok and check.events == n // 2 * 2, check.summary()
    return {"appends": n, "one_process_per_s": round(one), "two_processes_per_s": round(two)}


# ---------------------------------------------------------------------------------------------------
# A big chain, built in bulk


def chain_rows(n: int, start_seq: int = 1, prev: str = audit.GENESIS_HASH, data_of: Any = None) -> Any:
    """Yield (seq, at_text, kind, actor, case, data, prev_hash, hash) with real chained hashes."""
    for i in range(n):
        seq = start_seq + i
        at = T0 + timedelta(seconds=seq)
        at_text = at.strftime("%Y-%m-%d %H:%M:%S.%f")
        kind, actor, case, data = (
            data_of(i)
            if data_of
            else (
                "message.sent",
                seq % 97 or None,
                f"CN-VN-2026-{seq % 500:04d}",
                audit.canonical_json(
                    {"message": seq, "body": hashlib.sha256(str(seq).encode()).hexdigest(), "lang": "lo"}
                ),
            )
        )
        digest = audit.chain_hash(
            prev, audit.content_text(seq, audit.at_text(at_text), kind, actor, case, data).encode()
        )
        yield seq, at_text, kind, actor, case, data, prev, digest
        prev = digest


def load_chain(url: str, rows: Any) -> tuple[int, str]:
    """Insert event rows fast (executemany on SQLite, COPY on PostgreSQL); set the head; return it."""
    db = Database(url)
    last: tuple[int, str] = (0, audit.GENESIS_HASH)
    cols = "seq, at, kind, actor_id, case_tag, data, prev_hash, hash"
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        if db.dialect == "sqlite":
            batch: list[Any] = []
            cur.execute("BEGIN")
            for row in rows:
                batch.append(row)
                if len(batch) >= 20_000:
                    cur.executemany(f"INSERT INTO audit_events ({cols}) VALUES (?,?,?,?,?,?,?,?)", batch)
                    batch.clear()
                last = (row[0], row[7])
            if batch:
                cur.executemany(f"INSERT INTO audit_events ({cols}) VALUES (?,?,?,?,?,?,?,?)", batch)
            cur.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", last)
            cur.execute("COMMIT")
        else:
            with cur.copy(f"COPY audit_events ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row((row[0], row[1] + "+00", *row[2:]))
                    last = (row[0], row[7])
            cur.execute("UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1", last)
            raw.commit()
    finally:
        raw.close()
        db.close()
    return last


def bench_verify(dbs: Databases, n: int) -> dict[str, Any]:
    """Build a chain of n events and verify it (twice: the second run has a warm cache)."""
    url = dbs.fresh()
    t = time.perf_counter()
    load_chain(url, chain_rows(n))
    build = time.perf_counter() - t
    db = Database(url)
    runs = []
    for _ in range(2):
        result = audit.verify_chain(db)
        assert result.ok and result.events == n, result.summary()
        runs.append(result.seconds)
    db.close()
    best = min(runs)
    return {
        "events": n,
        "build_s": round(build, 1),
        "verify_s": [round(r, 2) for r in runs],
        "events_per_s": round(n / best),
    }


# ---------------------------------------------------------------------------------------------------
# Export of many messages


def load_messages(url: str, m: int) -> None:
    """Store m relayed messages as the relay stores them (encrypted, versions, translations, deliveries)."""
    from bot.crypto import load_cipher
    from bot.models import Base
    from bot.models.relay import column_aad

    settings = Settings(data_dir=Path(tempfile.mkdtemp()), database_url=url, data_key=Secret(KEY))
    cipher = load_cipher(settings)
    db = Database(url)
    tables = Base.metadata.tables
    people = [("CN", "zh", "Asia/Shanghai"), ("LA", "lo", "Asia/Vientiane"), ("VN", "vi", "Asia/Ho_Chi_Minh")]
    rooms = 200
    with db.transaction() as s:
        for i, (country, lang, tz) in enumerate(people, 1):
            s.execute(
                insert(tables["agencies"]).values(
                    id=i, country=country, name=f"Customs {country}", created_at=T0
                )
            )
            s.execute(
                insert(tables["officers"]).values(
                    id=i,
                    telegram_id=1000 + i,
                    username=f"officer{i}",
                    display_name=f"Officer {country}",
                    role="officer",
                    country=country,
                    agency_id=i,
                    language=lang,
                    timezone=tz,
                    status="active",
                    created_at=T0,
                )
            )
        s.execute(
            insert(tables["rooms"]),
            [
                dict(id=r, case_tag=f"CN-LA-VN-2026-{r:04d}", kind="case", handling="H0", created_at=T0)
                for r in range(1, rooms + 1)
            ],
        )
    aad = {
        c: column_aad(*c.split("."))
        for c in (
            "messages.body_enc",
            "message_versions.body_enc",
            "message_translations.text_enc",
            "deliveries.payload_enc",
        )
    }
    chunk = 5_000
    delivery_id = 0
    events: list[Any] = []
    for base in range(0, m, chunk):
        msgs, versions, translations, deliveries = [], [], [], []
        for mid in range(base + 1, min(base + chunk, m) + 1):
            sender = (mid % 3) + 1
            country, lang, _tz = people[sender - 1]
            body = f"{TEXTS[lang]} #{mid}"
            h = audit.body_hash(body)
            at = T0 + timedelta(seconds=mid * 10)
            room = (mid % rooms) + 1
            msgs.append(
                dict(
                    id=mid,
                    room_id=room,
                    case_tag=f"CN-LA-VN-2026-{room:04d}",
                    sender_id=sender,
                    kind="text",
                    source_lang=lang,
                    body_enc=cipher.encrypt(body, aad["messages.body_enc"]),
                    body_hash=h,
                    tags="",
                    handling="H0",
                    sender_chat_id=1000 + sender,
                    sender_message_id=mid,
                    version=1,
                    created_at=at,
                )
            )
            versions.append(
                dict(
                    message_id=mid,
                    version=1,
                    source_lang=lang,
                    created_at=at,
                    relayed=True,
                    body_enc=cipher.encrypt(body, aad["message_versions.body_enc"]),
                    body_hash=h,
                )
            )
            for r in range(1, 4):
                if r == sender:
                    continue
                rlang = people[r - 1][1]
                out = f"[{rlang}] {body}"
                oh = audit.body_hash(out)
                translations.append(
                    dict(
                        message_id=mid,
                        version=1,
                        lang=rlang,
                        text_hash=oh,
                        engine="argos",
                        model="translate-zh_en-1_9",
                        translated=True,
                        created_at=at,
                        text_enc=cipher.encrypt(out, aad["message_translations.text_enc"]),
                    )
                )
                delivery_id += 1
                deliveries.append(
                    dict(
                        id=delivery_id,
                        kind="relay",
                        ref_id=mid,
                        op="send",
                        recipient_id=r,
                        chat_id=1000 + r,
                        lang=rlang,
                        body_hash=oh,
                        priority=0,
                        status="sent",
                        attempts=1,
                        created_at=at,
                        next_attempt_at=at,
                        finished_at=at + timedelta(seconds=1),
                        telegram_message_id=delivery_id,
                        payload_enc=cipher.encrypt(out, aad["deliveries.payload_enc"]),
                    )
                )
            events.append(
                (
                    "message.sent",
                    sender,
                    f"CN-LA-VN-2026-{room:04d}",
                    audit.canonical_json({"message": mid, "body": h, "lang": lang}),
                )
            )
        with db.transaction() as s:
            for name, rows in (
                ("messages", msgs),
                ("message_versions", versions),
                ("message_translations", translations),
                ("deliveries", deliveries),
            ):
                s.execute(insert(tables[name]), rows)
    db.close()
    load_chain(url, chain_rows(len(events), data_of=lambda i: events[i]))


EXPORTER = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[5])
from bot.config import Secret, Settings
from bot.core import Core
from bot.translation.base import PassThroughTranslator
from bot import exports
settings = Settings(data_dir=Path(sys.argv[2]), database_url=sys.argv[1], data_key=Secret(sys.argv[3]))
core = Core.build(settings, translator=PassThroughTranslator())
def hwm():
    return int([l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]) / 1024
before = hwm()
t = time.perf_counter()
r = exports.export_bundle(core, None, exports.ExportFilter(), Path(sys.argv[4]))
seconds = time.perf_counter() - t
t = time.perf_counter()
report = exports.verify_bundle(Path(sys.argv[4]))
verify = time.perf_counter() - t
assert report.ok, report.problems
core.close()
print(json.dumps({"seconds": seconds, "verify_export_s": verify, "rows": r.rows, "messages": r.messages,
                  "events": r.events, "bytes": r.size, "rss_before_mb": before,
                  "peak_rss_mb": hwm()}))
"""


def bench_export(dbs: Databases, m: int, workdir: Path) -> dict[str, Any]:
    """Load m messages, then export everything in a fresh process; report time and peak memory."""
    url = dbs.fresh()
    t = time.perf_counter()
    load_messages(url, m)
    load = time.perf_counter() - t
    data_dir = workdir / f"data-{uuid.uuid4().hex[:6]}"
    out = workdir / f"export-{uuid.uuid4().hex[:6]}.zip"
    proc = subprocess.run(
        [sys.executable, "-c", EXPORTER, url, str(data_dir), KEY, str(out), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load_s"] = round(load, 1)
    out.unlink(missing_ok=True)
    shutil.rmtree(data_dir, ignore_errors=True)
    return result


def machine() -> str:
    """Describe the machine."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    python = platform.python_version()
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {python}, {platform.system()}"


def main() -> int:
    """Run the benchmarks and print a table per backend."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--appends", type=int, default=2_000)
    parser.add_argument("--only", default="appends,verify,export")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    only = set(args.only.split(","))
    backends = [b for b in args.backends.split(",") if b != "postgresql" or pg_server()]
    results: dict[str, dict[str, Any]] = {}
    sys.stdout.write(f"machine: {machine()}\n")
    for backend in backends:
        workdir = Path(tempfile.mkdtemp(prefix="liaison-bench-"))
        dbs = Databases(backend, workdir)
        res: dict[str, Any] = {}
        try:
            if "appends" in only:
                res["appends"] = bench_appends(dbs, args.appends)
                sys.stdout.write(f"{backend:<10} appends: {res['appends']}\n")
            if "verify" in only:
                res["verify"] = bench_verify(dbs, args.events)
                sys.stdout.write(f"{backend:<10} verify:  {res['verify']}\n")
            if "export" in only:
                for m in (args.messages // 10, args.messages):
                    r = bench_export(dbs, m, workdir)
                    res[f"export_{m}"] = r
                    sys.stdout.write(
                        f"{backend:<10} export {m} messages: {r['seconds']:.1f} s, {r['rows']} rows, "
                        f"{r['events']} events, {r['bytes'] / 1e6:.1f} MB, "
                        f"peak RSS {r['peak_rss_mb']:.0f} MB "
                        f"(after start {r['rss_before_mb']:.0f} MB), "
                        f"verify-export {r['verify_export_s']:.1f} s\n"
                    )
                sys.stdout.flush()
        finally:
            dbs.drop_all()
            shutil.rmtree(workdir, ignore_errors=True)
        results[backend] = res
        sys.stdout.flush()
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
