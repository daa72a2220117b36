"""Relay overhead benchmark: the bot's own CPU time per delivered copy, for rooms of 3 and of 50 members.

One process runs the real application: storing the fetched update in the inbox (one update per
getUpdates answer, the worst case), the vetting gate (incl. the redelivery check), the relay
handler, storing the message (encrypted, audited), translation with a tagging test translator (so the
figure is the relay's overhead, not a model's), rendering each language's copy, queuing one delivery
per member, and the delivery worker (claim, rate limiter, python-telegram-bot building and serializing
each Bot API call, status and audit event recorded). The network is replaced by a request object that
answers like Telegram without sending anything: "handing to the Bot API client" is included, Telegram's
own time is not. CPU is `time.process_time()` (every thread of the process: handler worker threads,
the database driver, the delivery worker), from the first message update to the last copy's "sent".

Two phases are reported separately and together, per delivered copy:
  post    — receive the update → stored, translated once per language, rendered, copies queued
  deliver — claim → Bot API call handed to the client → status and audit event committed
Target: under 5 ms per delivered copy in total, on one core.

Each room size is measured `--repeat` times (a fresh database each time) and the run with the median
total is reported, with the lowest and highest totals beside it: the machines here are noisy.

Usage: .venv/bin/python benchmarks/bench_relay.py [--members 3,50] [--copies 500] [--repeat 3]
       [--postgres SERVER_URL] [--json]   (--postgres: a temporary database is created and dropped per run)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from telegram import Update  # noqa: E402
from telegram.request import BaseRequest, RequestData  # noqa: E402

from bot import delivery, inbox, migrate, rooms, vetting  # noqa: E402
from bot.app import build_application, start_application, stop_application  # noqa: E402
from bot.config import Secret, Settings  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.officers import OfficerInfo  # noqa: E402
from bot.translation.base import Translation  # noqa: E402
from handlers.lifecycle import services  # noqa: E402
from handlers.outbound import TelegramOutbound  # noqa: E402
from handlers.relay import RelayService  # noqa: E402

TOKEN = "1234567890:BENCH-token-not-a-real-one-000000"
BOT_ID = 1234567890
TEXTS = {
    "zh": "今晚一辆车牌为29C-12345的卡车将运载穿山甲鳞片经过老街口岸，请贵方海关在边境检查站拦截并告知结果。",
    "vi": "Tối nay xe tải biển số 29C-12345 chở vảy tê tê sẽ qua cửa khẩu Lào Cai, đề nghị hải quan kiểm tra và báo kết quả.",
    "lo": "ຄືນນີ້ລົດບັນທຸກທະບຽນ 29C-12345 ບັນທຸກເກັດລີ່ນ ຈະຜ່ານດ່ານລາວກາຍ, ກະລຸນາກວດກາ ແລະ ແຈ້ງຜົນໃຫ້ຊາບ.",
}


class TaggingTranslator:
    """Translates by tagging ('[vi] text') and counts its calls (one per message for all languages)."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def translate(self, text: str, source: str, targets: Sequence[str]) -> dict[str, Translation]:
        """Return '[target] text' for each target language."""
        with self._lock:
            self.calls += 1
        return {t: Translation(text if t == source else f"[{t}] {text}", source, t,
                               engine="identity" if t == source else "bench") for t in targets}

    def directions(self) -> set[tuple[str, str]]:
        """Return every pair of the four languages."""
        return {(a, b) for a in ("zh", "lo", "vi", "en") for b in ("zh", "lo", "vi", "en") if a != b}


class NullRequest(BaseRequest):
    """Answers Bot API calls as Telegram would, without any network."""

    def __init__(self) -> None:
        self._ids = itertools.count(10_000)

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    @property
    def read_timeout(self) -> float | None:
        """Return the default read timeout."""
        return 1.0

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = None, write_timeout: Any = None, connect_timeout: Any = None,
                         pool_timeout: Any = None) -> tuple[int, bytes]:
        """Return a plausible answer for the call."""
        api = url.rsplit("/", 1)[-1]
        params = request_data.parameters if request_data else {}
        if api == "getMe":
            result: Any = {"id": BOT_ID, "is_bot": True, "first_name": "Liaison", "username": "liaison_bot"}
        elif api.startswith("send") or api.startswith("edit"):
            result = {"message_id": next(self._ids), "date": int(time.time()),
                      "chat": {"id": int(params.get("chat_id", 0)), "type": "private"},
                      "from": {"id": BOT_ID, "is_bot": True, "first_name": "Liaison"}, "text": "ok"}
        elif api == "getUpdates":
            result = []
        else:
            result = True
        return 200, json.dumps({"ok": True, "result": result}).encode()


def seed(core: Core, members: int) -> list[OfficerInfo]:
    """Register a coordinator and `members - 1` officers (CN, VN, LA in turn) and put them in one room."""
    coord = vetting.register(core, telegram_id=5_000_000, display_name="Trần Minh", username="coord",
                             code=vetting.create_invite(core, None, role="coordinator", country="VN",
                                                        agency="Customs").code)
    people = [coord]
    for i in range(members - 1):
        country = ("CN", "LA", "VN")[i % 3]
        code = vetting.create_invite(core, None, role="officer", country=country, agency="Border Police").code
        people.append(vetting.register(core, telegram_id=5_000_001 + i, code=code, display_name=f"Officer {i}",
                                       username=f"o{i}"))
    rooms.create_case(core, coord, "CN-LA-VN-2026-0001", "Benchmark case")
    for officer in people[1:]:
        rooms.add_member(core, coord, f"id:{officer.id}")
    return people


def update_dict(update_id: int, officer: OfficerInfo, message_id: int, text: str) -> dict[str, Any]:
    """Return the update Telegram would send for an officer's text message (Bot API JSON)."""
    return {"update_id": update_id, "message": {
        "message_id": message_id, "date": int(time.time()), "chat": {"id": officer.telegram_id, "type": "private"},
        "from": {"id": officer.telegram_id, "is_bot": False, "first_name": officer.display_name,
                 "language_code": officer.language}, "text": text}}


def temporary_postgres(server_url: str) -> tuple[str, Any]:
    """Create a temporary database on a PostgreSQL server; return its URL and a function dropping it."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(server_url)
    name = f"liaison_bench_{uuid.uuid4().hex[:8]}"

    def admin() -> Any:
        return psycopg.connect(host=server.host, port=server.port, user=server.username, password=server.password,
                               dbname=server.database or "postgres", autocommit=True)

    with admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    url = server.set(database=name, drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url, drop


async def run(members: int, copies: int, postgres: str | None, workdir: Path) -> dict[str, Any]:
    """Seed a room, relay enough messages for about `copies` copies, and measure both phases."""
    drop = None
    if postgres:
        url, drop = temporary_postgres(postgres)
    else:
        url = f"sqlite:///{workdir / f'relay-{members}.db'}"
    try:
        return await _measure(members, copies, url, workdir)
    finally:
        if drop is not None:
            drop()


async def _measure(members: int, copies: int, url: str, workdir: Path) -> dict[str, Any]:
    """Run one measurement on a database at `url`."""
    migrate.upgrade(url)
    settings = Settings(data_dir=workdir / f"data-{members}", database_url=url, telegram_token=Secret(TOKEN),
                        data_key=Secret(base64.urlsafe_b64encode(os.urandom(32)).decode()),
                        bot_username="liaison_bot", delivery_rate=1_000_000, delivery_chat_interval=0.0)
    translator = TaggingTranslator()
    core = Core.build(settings, translator=translator)
    people = await asyncio.to_thread(seed, core, members)
    app = build_application(settings, core=core, request=NullRequest())
    await start_application(app, polling=False)
    try:
        relay_service = next(s for s in services(app) if isinstance(s, RelayService))
        assert relay_service.worker is not None
        await relay_service.worker.wait_idle(120)  # the join notices
        await relay_service.worker.stop()  # measure posting and delivering separately

        messages = max(1, round(copies / (members - 1)))
        expected = messages * (members - 1)
        translator.calls = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for i in range(messages):
            sender = people[i % len(people)]
            # As `liaison run` receives it: the getUpdates answer (one update each, the worst case) is
            # stored in the inbox, then parsed and dispatched.
            raw = update_dict(900_000 + i, sender, 1_000 + i, f"{TEXTS[sender.language]} #{i}")
            await asyncio.to_thread(inbox.store, core, [raw])
            await app.process_update(Update.de_json(raw, app.bot))
        cpu_post, wall_post = time.process_time() - cpu0, time.perf_counter() - wall0

        done = asyncio.Event()
        sent = 0

        def count(event: delivery.DeliveryEvent) -> None:
            nonlocal sent
            sent += event.status == delivery.SENT
            if sent >= expected:
                done.set()

        delivery.outbox(core).subscribe("relay", count)
        worker = delivery.DeliveryWorker(core, TelegramOutbound(app.bot), limiter=delivery.RateLimiter(
            rate=0, chat_interval=0.0), concurrency=8)
        cpu1, wall1 = time.process_time(), time.perf_counter()
        await worker.start()
        await asyncio.wait_for(done.wait(), 600)
        cpu_deliver, wall_deliver = time.process_time() - cpu1, time.perf_counter() - wall1
        await worker.stop()
    finally:
        await stop_application(app)
        core.close()
    return {
        "members": members, "messages": messages, "copies": expected, "translator_calls": translator.calls,
        "database": "postgresql" if url.startswith("postgresql") else "sqlite",
        "post_ms_per_copy": round(1000 * cpu_post / expected, 3),
        "deliver_ms_per_copy": round(1000 * cpu_deliver / expected, 3),
        "total_ms_per_copy": round(1000 * (cpu_post + cpu_deliver) / expected, 3),
        "post_ms_per_message": round(1000 * cpu_post / messages, 2),
        "wall_seconds": round(wall_post + wall_deliver, 2),
    }


def machine() -> str:
    """Describe the machine (CPU model, cores, Python, OS)."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def main() -> int:
    """Run the benchmark for each room size and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="3,50", help="room sizes, comma-separated")
    parser.add_argument("--copies", type=int, default=500, help="about how many copies to deliver per room size")
    parser.add_argument("--repeat", type=int, default=3, help="runs per room size; the median run is reported")
    parser.add_argument("--postgres", help="PostgreSQL server URL (default: a temporary SQLite file)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.members.split(",")):
            runs = sorted((asyncio.run(run(n, args.copies, args.postgres, Path(tmp) / f"{n}-{i}"))
                           for i in range(max(1, args.repeat))), key=lambda r: r["total_ms_per_copy"])
            median = dict(runs[len(runs) // 2])
            median.update(runs=len(runs), total_ms_min=runs[0]["total_ms_per_copy"],
                          total_ms_max=runs[-1]["total_ms_per_copy"])
            results.append(median)
    if args.json:
        sys.stdout.write(json.dumps({"machine": machine(), "results": results}, indent=2) + "\n")
        return 0
    sys.stdout.write(f"machine: {machine()}\n")
    sys.stdout.write("members  messages  copies  db          post ms/copy  deliver ms/copy  total ms/copy  "
                     "(min-max of runs)  translator calls\n")
    for r in results:
        spread = f"{r['total_ms_min']}-{r['total_ms_max']} ({r['runs']})"
        sys.stdout.write(f"{r['members']:>7}  {r['messages']:>8}  {r['copies']:>6}  {r['database']:<10}  "
                         f"{r['post_ms_per_copy']:>12}  {r['deliver_ms_per_copy']:>15}  {r['total_ms_per_copy']:>13}  "
                         f"{spread:>17}  {r['translator_calls']:>16}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
