"""End to end through the Bot API emulator: officers talk, one retracts, an auditor asks for the export in
Telegram and gets a signed bundle that verifies and holds the Lao and Chinese texts byte for byte."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path

import pytest

from bot import crypto, exports, rooms, vetting
from bot.core import Core
from bot.sandbox.emulator import BotApiEmulator
from bot.sandbox.emulator_records import MessageRecord
from tests.support.e2e import running_bot

pytestmark = pytest.mark.e2e
CASE = "CN-LA-2026-0777"
LAO = "ພົບນໍແຮດ 3 ກິໂລ ຢູ່ດ່ານບໍ່ເຕັນ"
CHINESE = "收到，我们在磨憨口岸拦截货车"


async def _wait(emu: BotApiEmulator, chat_id: int, pred, what: str, timeout: float = 20) -> MessageRecord:  # type: ignore[no-untyped-def]
    return await emu.wait_for(
        lambda: next((m for m in emu.messages(chat_id) if pred(m)), None), timeout, what
    )


async def test_auditor_exports_a_case_in_telegram(core: Core, tmp_path: Path) -> None:
    """Lao and Chinese officers exchange, the Chinese message is retracted; /export brings a verified ZIP."""
    async with running_bot(core) as run:
        emu = run.emulator
        la = await emu.create_user("ສົມພອນ", username="somphone", language_code="lo")
        cn = await emu.create_user("王伟", username="wangwei", language_code="zh")
        auditor = await emu.create_user("Audit", username="auditor_cn", language_code="zh")
        for user, role, country in (
            (la, "officer", "LA"),
            (cn, "coordinator", "CN"),
            (auditor, "auditor", "CN"),
        ):
            code = vetting.create_invite(core, None, role=role, country=country).code
            await emu.send_text(user.id, f"/start {code}")
            await emu.wait_for_messages(user.id, 1, timeout=20)
        coord = vetting.active_officer(core, cn.id)
        assert coord is not None
        rooms.create_case(core, coord, CASE, "Rhino horn at Boten")
        rooms.add_member(core, coord, "@somphone", CASE)
        await _wait(emu, la.id, lambda m: CASE in m.body, "Lao officer told about the room")

        await emu.send_text(la.id, LAO)
        await _wait(emu, cn.id, lambda m: f"[zh] {LAO}" in m.body, "Lao message relayed")
        sent = await emu.send_text(cn.id, CHINESE)
        copy = await _wait(emu, la.id, lambda m: f"[lo] {CHINESE}" in m.body, "Chinese message relayed")
        await asyncio.sleep(1.1)
        await emu.send_text(cn.id, "/retract", reply_to=sent.message_id)
        await emu.wait_for(lambda: emu.message(la.id, copy.message_id).deleted, 20, "copy deleted")

        await emu.send_text(auditor.id, f"/export {CASE}")
        doc = await _wait(emu, auditor.id, lambda m: m.kind == "document", "export document", timeout=30)
        assert doc.file is not None and doc.file.file_name and doc.file.file_name.endswith(".zip")
        assert "带签名的审计导出" in doc.body
        data = emu.file_bytes(doc.file.file_id)

    path = tmp_path / "export.zip"
    path.write_bytes(data)
    pinned = crypto.public_key_text(crypto.load_signing_key(core.settings))
    report = exports.verify_bundle(path, public_key=pinned)
    assert report.ok and report.pinned, report.problems
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        raw_csv = zf.read("messages.csv")
        rows = [json.loads(x) for x in zf.read("messages.jsonl").decode().splitlines()]
        events = [json.loads(x) for x in zf.read("events.jsonl").decode().splitlines()]
    assert raw_csv.startswith(b"\xef\xbb\xbf") and LAO.encode() in raw_csv and CHINESE.encode() in raw_csv
    lao = next(r for r in rows if r["original_text"] == LAO and r["operation"] == "send")
    assert (lao["delivered_text"], lao["status"], lao["recipient_country"]) == (f"[zh] {LAO}", "sent", "CN")
    assert lao["sender_local_time"].endswith("+07:00")
    chinese = [r for r in rows if r["original_text"] == CHINESE]
    assert {r["operation"] for r in chinese} == {"send", "delete"}
    assert all("retracted" in r["notes"] for r in chinese)
    kinds = [e["kind"] for e in events]
    assert {"room.created", "message.sent", "message.translated", "message.retracted"} <= set(kinds)
    assert {e["case"] for e in events} == {CASE}


async def test_run_with_the_wrong_key_stops_with_one_line(core: Core) -> None:
    """`liaison run` with another LIAISON_DATA_KEY than the data's: exit 2, one clear line, no key shown."""
    import os
    import sys

    from bot.sandbox.emulator_limits import RateLimits
    from tests.audit import relaydata
    from tests.audit.conftest import T_REGISTER

    la, cn = T_REGISTER(core, "LA"), T_REGISTER(core, "CN")
    room = relaydata.room(core, "CN-LA-2026-0778", [la, cn], relaydata.T0)
    relaydata.send(core, room, "CN-LA-2026-0778", la, LAO, [cn], relaydata.T0)
    wrong = crypto.new_key_text()
    liaison = str(Path(sys.executable).with_name("liaison"))
    token = core.settings.telegram_token.get()  # type: ignore[union-attr]
    async with BotApiEmulator(token, rate_limits=RateLimits.unlimited()) as emu:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
        env.update(
            {
                "LIAISON_TELEGRAM_TOKEN": token,
                "LIAISON_TELEGRAM_API_URL": emu.base_url,
                "LIAISON_DATABASE_URL": core.settings.database_url,
                "LIAISON_DATA_KEY": wrong,
                "LIAISON_DATA_DIR": str(core.settings.data_dir / "elsewhere"),
            }
        )
        proc = await asyncio.create_subprocess_exec(
            liaison, "run", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        _out, err = await asyncio.wait_for(proc.communicate(), 60)
    log = err.decode()
    assert proc.returncode == 2, log[-2000:]
    last = log.strip().splitlines()[-1]
    assert last.startswith("liaison: error: stored data cannot be decrypted with this installation's keys")
    assert "Traceback" not in log and wrong not in log and core.settings.data_key.get() not in log  # type: ignore[union-attr]
