"""Exports of conversations made by the real relay service: translations, edits and retractions."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from sqlalchemy import update

from bot import exports, relay, rooms
from bot.core import Core
from bot.models.relay import Delivery
from bot.officers import OfficerInfo
from tests.audit.conftest import Register

CASE = "CN-LA-VN-2026-0500"
CHINESE = "明天有一辆运穿山甲鳞片的货车经过磨憨"
CHINESE_EDITED = "后天有一辆运穿山甲鳞片的货车经过磨憨"
LAO = "ພວກເຮົາຈະກວດລົດຢູ່ດ່ານບໍ່ເຕັນ"


def _sent(core: Core) -> None:
    """Mark every queued copy as sent, as the delivery worker would."""
    with core.db.transaction() as s:
        s.execute(
            update(Delivery)
            .where(Delivery.status == "pending")
            .values(status="sent", finished_at=core.clock.now())
        )


def _room(core: Core, register: Register) -> tuple[OfficerInfo, OfficerInfo]:
    """Open the case room (a VN coordinator) with a CN and a LA officer; return those two."""
    coord = register("coordinator", "VN", name="Trần Minh")
    cn = register("officer", "CN", name="王伟", agency="Police")
    la = register("officer", "LA", name="ສົມພອນ", agency="Forest Inspection")
    rooms.create_case(core, coord, CASE, "Pangolin scales")
    for officer in (cn, la):
        rooms.add_member(core, coord, f"@{officer.username}", CASE)
    return cn, la


def test_export_follows_versions_and_retractions(core: Core, register: Register, tmp_path: Path) -> None:
    """Copies of the first version, edits carrying the second, a retracted message marked as such."""
    cn, la = _room(core, register)
    relay.post(core, cn, relay.Incoming(chat_id=cn.telegram_id, message_id=11, kind="text", text=CHINESE))
    relay.post(core, la, relay.Incoming(chat_id=la.telegram_id, message_id=12, kind="text", text=LAO))
    _sent(core)
    relay.edit(core, cn, cn.telegram_id, 11, CHINESE_EDITED)
    _sent(core)
    relay.retract(core, cn, cn.telegram_id, 11)
    result = exports.export_bundle(core, None, exports.make_filter(case_tag=CASE), tmp_path / "r.zip")
    with zipfile.ZipFile(result.path) as zf:
        rows = [json.loads(x) for x in zf.read("messages.jsonl").decode().splitlines()]
    cn_rows = [r for r in rows if r["sender_country"] == "CN"]
    by_op = {op: [r for r in cn_rows if r["operation"] == op] for op in ("send", "edit", "delete")}
    assert {
        (r["recipient_country"], r["delivered_language"], r["delivered_text"], r["version"])
        for r in by_op["send"]
    } == {("VN", "vi", f"[vi] {CHINESE}", 1), ("LA", "lo", f"[lo] {CHINESE}", 1)}
    assert {(r["delivered_text"], r["original_text"], r["version"]) for r in by_op["edit"]} == {
        (f"[vi] {CHINESE_EDITED}", CHINESE_EDITED, 2),
        (f"[lo] {CHINESE_EDITED}", CHINESE_EDITED, 2),
    }
    # (no "delete" rows here: copies never reached Telegram, so the retraction has nothing to delete)
    assert all("retracted" in r["notes"] and "edited: 2 versions" in r["notes"] for r in cn_rows)
    la_rows = [r for r in rows if r["sender_country"] == "LA"]
    assert {(r["recipient_country"], r["delivered_text"]) for r in la_rows} == {
        ("CN", f"[zh] {LAO}"),
        ("VN", f"[vi] {LAO}"),
    }
    assert all(r["engine"] and r["status"] for r in rows)
    report = exports.verify_bundle(result.path)
    assert report.ok, report.problems
    # every original's hash is in the exported events (message.sent / message.edited record it)
    assert f"{len(rows)} message rows; {len(rows)} of them have their original's hash" in " ".join(
        report.notes
    )


def test_copy_edited_while_pending_is_exported_as_the_version_it_carries(
    core: Core, register: Register, tmp_path: Path
) -> None:
    """An edit arriving before a copy went out rewrites the copy: the export shows version 2 for it."""
    cn, _la = _room(core, register)
    relay.post(core, cn, relay.Incoming(chat_id=cn.telegram_id, message_id=21, kind="text", text=CHINESE))
    relay.edit(core, cn, cn.telegram_id, 21, CHINESE_EDITED)  # the copies are still pending: rewritten
    _sent(core)
    result = exports.export_bundle(core, None, exports.make_filter(case_tag=CASE), tmp_path / "p.zip")
    with zipfile.ZipFile(result.path) as zf:
        rows = [json.loads(x) for x in zf.read("messages.jsonl").decode().splitlines()]
    sends = [r for r in rows if r["sender_country"] == "CN" and r["operation"] == "send"]
    assert {(r["recipient_country"], r["delivered_text"], r["original_text"], r["version"]) for r in sends} == {
        ("VN", f"[vi] {CHINESE_EDITED}", CHINESE_EDITED, 2),
        ("LA", f"[lo] {CHINESE_EDITED}", CHINESE_EDITED, 2),
    }
    assert not [r for r in rows if r["operation"] == "edit"]  # no separate edit: the pending copy was rewritten
