"""Broadcast fan-out benchmark: 1,000 recipients in three languages against the Bot API emulator with
Telegram's limits enforced (1 message/s per chat, 30/s overall, sliding windows, 429 on excess).

The emulator runs as a separate process (`python -m bot.sandbox.emulator`), as Telegram is another
machine; the bot (application, delivery worker, SQLite database, translator) runs in this process, so
`time.process_time()` measures the bot's CPU alone. Officers are registered through real invites; a
coordinator's broadcast to `all` is drafted (translated once per language by a counting translator that
tags texts, so the figure is the fan-out, not a model) and confirmed; the clock runs until every copy
has a final status in the database.

Reported per run: total time (confirm → last copy final), achieved copies/s (and % of the 30/s ceiling),
the emulator's highest count in any sliding second (overall and per chat), 429 answers, translations
performed, and the bot's CPU time per copy.

Usage: .venv/bin/python benchmarks/bench_broadcast.py [--recipients 1000] [--rates 30] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bot import broadcasts, migrate, vetting  # noqa: E402
from bot.app import build_application, start_application, stop_application  # noqa: E402
from bot.config import Secret, Settings  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.models.relay import Delivery  # noqa: E402
from bot.officers import OfficerInfo  # noqa: E402
from bot.sandbox.client import EmulatorClient  # noqa: E402
from bot.translation.base import Translation  # noqa: E402

TOKEN = "1234567890:BENCH-token-not-a-real-one-000000"
TEXT = "Truck 29C-12345 with pangolin scales is heading to the Lao Cai border crossing; check it."


class CountingTranslator:
    """Tags texts ('[vi] …') and counts the translations it performs (one per target language)."""

    def __init__(self) -> None:
        self.translations = 0
        self._lock = threading.Lock()

    def translate(self, text: str, source: str, targets: Sequence[str]) -> dict[str, Translation]:
        """Return '[target] text' for each target."""
        with self._lock:
            self.translations += sum(1 for t in targets if t != source)
        return {t: Translation(text if t == source else f"[{t}] {text}", source, t,
                               engine="identity" if t == source else "bench") for t in targets}


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    """Start the emulator in its own process (Telegram's limits on); return it and its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "bot.sandbox.emulator", "--port", "0", "--token", TOKEN],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise RuntimeError(f"the emulator did not start: {url!r}")
    return proc, url


def seed(core: Core, user_ids: list[int], coordinator_id: int) -> OfficerInfo:
    """Register a coordinator (English) and one officer per user id, CN/LA/VN in turn, through invites."""
    boss = vetting.register(core, telegram_id=coordinator_id, display_name="Coordinator", username="coord",
                            code=vetting.create_invite(core, None, role="coordinator", country="VN",
                                                       language="en").code)
    for i, uid in enumerate(user_ids):
        country = ("CN", "LA", "VN")[i % 3]
        code = vetting.create_invite(core, None, role="officer", country=country).code
        vetting.register(core, telegram_id=uid, code=code, display_name=f"Officer {i}", username=f"o{i}")
    return boss


def final_copies(core: Core, broadcast_id: int) -> int:
    """Return how many copies of the broadcast have a final status."""
    with core.db.session() as s:
        return int(s.execute(select(func.count()).select_from(Delivery).where(
            Delivery.kind == broadcasts.KIND, Delivery.ref_id == broadcast_id,
            Delivery.status.in_(("sent", "failed", "blocked", "cancelled")))).scalar_one())


async def run_once(recipients: int, rate: int, workdir: Path) -> dict[str, Any]:
    """Seed a fresh database, run the bot against a fresh emulator process, broadcast, measure."""
    proc, url = start_emulator()
    try:
        async with EmulatorClient(url) as emu:
            users = [await emu.create_user(f"U{i}", started=True) for i in range(recipients)]
            boss_user = await emu.create_user("Boss", started=True)
            db_file = workdir / f"bench-{rate}.db"
            db_file.unlink(missing_ok=True)
            settings = Settings(data_dir=workdir / f"data-{rate}", database_url=f"sqlite:///{db_file}",
                                telegram_token=Secret(TOKEN), telegram_api_url=url,
                                data_key=Secret(base64.urlsafe_b64encode(os.urandom(32)).decode()),
                                bot_username="liaison_bot", delivery_rate=rate)
            migrate.upgrade(settings.database_url)
            translator = CountingTranslator()
            core = Core.build(settings, translator=translator)
            seed_started = time.perf_counter()
            boss = await asyncio.to_thread(seed, core, [u.id for u in users], boss_user.id)
            seed_seconds = time.perf_counter() - seed_started
            app = build_application(settings, core=core)
            await start_application(app)
            try:
                preview = await asyncio.to_thread(broadcasts.draft, core, boss, "all", TEXT,
                                                  status_chat_id=boss.telegram_id)
                cpu0, t0 = time.process_time(), time.perf_counter()
                await asyncio.to_thread(broadcasts.confirm, core, boss, preview.id)
                while await asyncio.to_thread(final_copies, core, preview.id) < recipients:
                    await asyncio.sleep(0.05)
                elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                await asyncio.sleep(broadcasts.PROGRESS_EVERY + 1.5)  # let the final report go out
                meter = await emu.stats()
                counts = broadcasts.stats(core, preview.id)
            finally:
                await stop_application(app)
                core.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {
        "recipients": recipients, "delivery_rate": rate, "seconds": round(elapsed, 2),
        "copies_per_second": round(recipients / elapsed, 2),
        "percent_of_30": round(100 * recipients / elapsed / 30, 1),
        "translations": translator.translations, "languages": sorted(preview.texts),
        "cpu_ms_per_copy": round(1000 * cpu / recipients, 2), "statuses": counts,
        "max_per_second_overall": meter["max_per_second_overall"],
        "max_per_second_chat": meter["max_per_second_chat"], "count_429": meter["count_429"],
        "emulator_sends": meter["sends"], "seed_seconds": round(seed_seconds, 1),
    }


def main() -> int:
    """Run the benchmark for each delivery rate and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--rates", default="30", help="LIAISON_DELIVERY_RATE values to run, comma-separated")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rate in (int(r) for r in args.rates.split(",")):
            results.append(asyncio.run(run_once(args.recipients, rate, Path(tmp))))
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    if args.json:
        sys.stdout.write(json.dumps({"machine": machine, "runs": results}, indent=2) + "\n")
        return 0
    sys.stdout.write(f"machine: {machine}\n")
    header = ("rate", "copies", "seconds", "copies/s", "% of 30/s", "max/s all", "max/s chat", "429s",
              "translations", "CPU ms/copy", "statuses")
    sys.stdout.write(" | ".join(header) + "\n")
    for r in results:
        sys.stdout.write(" | ".join(str(x) for x in (
            r["delivery_rate"], r["recipients"], r["seconds"], r["copies_per_second"], r["percent_of_30"],
            r["max_per_second_overall"], r["max_per_second_chat"], r["count_429"], r["translations"],
            r["cpu_ms_per_copy"], r["statuses"])) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
