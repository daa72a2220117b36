"""Retention: bodies older than the period go, events and hashes stay, the chain still verifies."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot import audit, exports, retention
from bot.core import Core
from bot.errors import InvalidInput, NotAllowed
from bot.models import AuditEvent
from bot.models.relay import Delivery
from tests.audit import relaydata
from tests.audit.conftest import Register

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _bodies(core: Core) -> dict[str, int]:
    with core.db.session() as s:
        return {
            "messages": s.execute(
                text("SELECT count(*) FROM messages WHERE body_enc IS NOT NULL")
            ).scalar_one(),
            "versions": s.execute(
                text("SELECT count(*) FROM message_versions WHERE body_enc IS NOT NULL")
            ).scalar_one(),
        }


def test_purge_removes_old_bodies_and_keeps_the_chain(core: Core, register: Register, tmp_path: Path) -> None:
    """Old texts disappear (NULL or an encrypted empty text); new ones, hashes and events stay; audited."""
    la, vn = register("officer", "LA"), register("officer", "VN")
    room = relaydata.room(core, "LA-VN-2026-0011", [la, vn], NOW - timedelta(days=200))
    old = relaydata.send(core, room, "LA-VN-2026-0011", la, "ຂໍ້ຄວາມເກົ່າ", [vn], NOW - timedelta(days=100), 1)
    relaydata.send(core, room, "LA-VN-2026-0011", vn, "Tin nhắn mới", [la], NOW - timedelta(days=3), 2)
    with core.db.transaction() as s:  # a copy still waiting to be sent keeps its text
        pending = relaydata.store_message(
            s,
            core,
            room,
            "LA-VN-2026-0011",
            la,
            "ຍັງບໍ່ທັນສົ່ງ",
            [vn],
            NOW - timedelta(days=90),
            3,
            status="pending",
            record=False,
        )
        s.execute(
            text("UPDATE deliveries SET finished_at = NULL WHERE id = :i"), {"i": pending.delivery_ids[0]}
        )
    events_before = audit.chain_head(core.db).seq
    dry = retention.purge(core, days=30, now=NOW, dry_run=True)
    assert dry.purged == {
        "deliveries.payload_enc": 1,
        "message_translations.text_enc": 2,
        "messages.body_enc": 2,
        "message_versions.body_enc": 2,
    } and _bodies(core) == {"messages": 3, "versions": 3}
    report = retention.purge(core, days=30, now=NOW)
    assert report.purged == dry.purged and report.total == 7
    assert _bodies(core) == {"messages": 1, "versions": 1}
    with core.db.session() as s:
        kept = s.get(Delivery, pending.delivery_ids[0])
        assert (
            kept is not None
            and core.cipher.decrypt(kept.payload_enc, b"deliveries.payload_enc") == "[vi] ຍັງບໍ່ທັນສົ່ງ"
        )
        gone = s.get(Delivery, old.delivery_ids[0])
        assert gone is not None and core.cipher.decrypt(gone.payload_enc, b"deliveries.payload_enc") == ""
        assert gone.body_hash == audit.body_hash("[vi] ຂໍ້ຄວາມເກົ່າ")
        last = s.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()
    assert last.kind == "retention.purged" and last.seq == events_before + 1
    assert json.loads(last.data)["purged"] == dict(report.purged) and json.loads(last.data)["days"] == 30
    assert audit.verify_chain(core.db).ok
    # Purging again finds nothing (the encrypted empty texts are not purged twice).
    assert retention.purge(core, days=30, now=NOW).total == 0
    # The export still shows the exchange, with the text marked purged and its hash.
    result = exports.export_bundle(
        core, None, exports.make_filter(case_tag="LA-VN-2026-0011"), tmp_path / "r.zip"
    )
    with zipfile.ZipFile(result.path) as zf:
        rows = [json.loads(x) for x in zf.read("messages.jsonl").decode().splitlines()]
    purged = rows[0]
    assert purged["original_text"] is None and purged["delivered_text"] is None
    assert purged["original_sha256"] == audit.body_hash("ຂໍ້ຄວາມເກົ່າ") and "purged" in purged["notes"]
    assert rows[1]["original_text"] == "Tin nhắn mới"
    assert exports.verify_bundle(result.path).ok


def test_purge_needs_a_period_and_an_admin(core: Core, register: Register) -> None:
    """No LIAISON_RETENTION_DAYS and no --days: a clear refusal; only admins purge from Telegram."""
    with pytest.raises(InvalidInput, match="kept forever"):
        retention.purge(core)
    with pytest.raises(NotAllowed):
        retention.purge(core, register("auditor", "CN"), days=10)
    assert retention.scheduled_purge(core) is None


def test_scheduled_purge_uses_the_setting(core: Core, register: Register) -> None:
    """With LIAISON_RETENTION_DAYS set, the daily job purges by it."""
    core.settings = core.settings.with_overrides(retention_days=7)
    la, vn = register("officer", "LA"), register("officer", "VN")
    room = relaydata.room(core, "LA-VN-2026-0012", [la, vn], NOW)
    relaydata.send(core, room, "LA-VN-2026-0012", la, "ເກົ່າ", [vn], datetime.now(UTC) - timedelta(days=8))
    report = retention.scheduled_purge(core)
    assert report is not None and report.days == 7 and report.purged["messages.body_enc"] == 1
