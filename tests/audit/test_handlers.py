"""`/export` in Telegram: auditors get a signed bundle as a document; others are refused (and audited)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot import crypto, exports, vetting
from bot.app import build_application, start_application, stop_application
from bot.core import Core
from bot.crypto import DataKeyError
from bot.models import AuditEvent
from tests.audit import relaydata
from tests.support.telegram import RecordingRequest, Users

T0 = datetime(2026, 8, 3, 1, 30, tzinfo=UTC)
LAO = "ເຈົ້າໜ້າທີ່ປ່າໄມ້ພົບງາຊ້າງ"
CHINESE = "海关查获象牙"


@dataclass
class FileRecordingRequest(RecordingRequest):
    """Also keeps the files uploaded (multipart parts), so the test can open the ZIP the bot sent."""

    files: dict[str, bytes] = field(default_factory=dict)

    async def do_request(self, url: str, method: str, request_data: Any = None, *args: Any, **kw: Any) -> Any:
        """Record uploaded files, then answer as the recording request does."""
        if request_data is not None and request_data.contains_files:
            for _name, part in (request_data.multipart_data or {}).items():
                filename, content = part[0], part[1]
                self.files[filename] = content if isinstance(content, bytes) else content.read()
        return await super().do_request(url, method, request_data, *args, **kw)


@asynccontextmanager
async def app_with_files(core: Core) -> AsyncIterator[tuple[Any, FileRecordingRequest, Users]]:
    """The real application over the file-recording request."""
    request = FileRecordingRequest()
    app = build_application(core.settings, core=core, request=request)
    await start_application(app, polling=False)
    try:
        yield app, request, Users(app.bot)
    finally:
        await stop_application(app)


def _officer(core: Core, tid: int, role: str, country: str | None, lang: str | None = None):  # type: ignore[no-untyped-def]
    inv = vetting.create_invite(core, None, role=role, country=country, language=lang)
    return vetting.register(core, telegram_id=tid, code=inv.code, display_name=f"P{tid}", username=f"p{tid}")


async def test_auditor_receives_the_bundle(core: Core) -> None:
    """`/export CASE` from an auditor: a 'preparing' note, then the ZIP as a document; it verifies."""
    la, cn = _officer(core, 11, "officer", "LA"), _officer(core, 12, "officer", "CN")
    auditor = _officer(core, 13, "auditor", "CN")
    room = relaydata.room(core, "CN-LA-2026-0100", [la, cn], T0)
    relaydata.send(core, room, "CN-LA-2026-0100", la, LAO, [cn], T0 + timedelta(minutes=1), 1)
    relaydata.send(core, room, "CN-LA-2026-0100", cn, CHINESE, [la], T0 + timedelta(minutes=2), 2)
    async with app_with_files(core) as (app, request, users):
        await app.process_update(users.message(13, "/export CN-LA-2026-0100", language="zh"))
        texts = [c.text for c in request.sent(13, "sendMessage")]
        docs = request.sent(13, "sendDocument")
    assert texts == ["正在准备带签名的导出文件。时间跨度较长时可能需要一分钟……"]
    assert len(docs) == 1 and "带签名的审计导出：2 行（2 条消息）" in docs[0].text
    ((name, data),) = request.files.items()
    assert name.startswith("liaison-export-CN-LA-2026-0100-") and name.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        rows = [json.loads(x) for x in zf.read("messages.jsonl").decode().splitlines()]
        assert LAO.encode() in zf.read("messages.csv") and CHINESE.encode() in zf.read("messages.csv")
    assert [r["original_text"] for r in rows] == [LAO, CHINESE]
    path = core.settings.data_dir / "exports" / name
    assert not path.exists()  # the server keeps no copy
    path.write_bytes(data)
    report = exports.verify_bundle(
        path, public_key=crypto.public_key_text(crypto.load_signing_key(core.settings))
    )
    assert report.ok, report.problems
    with core.db.session() as s:
        last = s.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()
    assert last.kind == "export.created" and last.actor_id == auditor.id
    assert json.loads(last.data)["via"] == "telegram"


@pytest.mark.parametrize("role", ["officer", "coordinator"])
async def test_others_are_refused_and_audited(core: Core, role: str) -> None:
    """Officers and coordinators get the refusal in their language; the attempt is an audit event."""
    who = _officer(core, 21, role, "VN")
    async with app_with_files(core) as (app, request, users):
        await app.process_update(users.message(21, "/export CN-LA-2026-0100", language="vi"))
        sent = request.sent(21)
    assert [c.text for c in sent] == ["Chỉ kiểm toán viên và quản trị viên mới được xuất nhật ký kiểm toán."]
    assert not request.files
    with core.db.session() as s:
        refused = s.execute(select(AuditEvent).where(AuditEvent.kind == "export.refused")).scalar_one()
    assert refused.actor_id == who.id and refused.case_tag is None


async def test_period_and_usage(core: Core) -> None:
    """`/export FROM TO` uses the auditor's days; no argument gets the usage text in their language."""
    la, vn = _officer(core, 31, "officer", "LA"), _officer(core, 32, "officer", "VN")
    _officer(core, 33, "admin", None, lang="lo")
    room = relaydata.room(core, "LA-VN-2026-0200", [la, vn], T0)
    relaydata.send(core, room, "LA-VN-2026-0200", la, LAO, [vn], T0, 1)
    relaydata.send(core, room, "LA-VN-2026-0200", la, "ອີກ", [vn], T0 + timedelta(days=10), 2)
    async with app_with_files(core) as (app, request, users):
        await app.process_update(users.message(33, "/export", language="lo"))
        assert request.sent(33)[-1].text.startswith("ວິທີໃຊ້: /export")
        with core.db.session() as s:
            failed = s.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()
        assert failed.kind == "export.failed" and "Usage: /export" in json.loads(failed.data)["reason"]
        await app.process_update(users.message(33, "/export 2026-08-01 2026-08-05", language="lo"))
        doc = request.sent(33, "sendDocument")[-1]
    assert "1 ແຖວ (1 ຂໍ້ຄວາມ)" in doc.text


async def test_start_refuses_data_it_cannot_decrypt(core: Core) -> None:
    """The bot does not start on data written with a key it lacks: one clear error, not garbage later."""
    la, vn = _officer(core, 41, "officer", "LA"), _officer(core, 42, "officer", "VN")
    room = relaydata.room(core, "LA-VN-2026-0300", [la, vn], T0)
    relaydata.send(core, room, "LA-VN-2026-0300", la, LAO, [vn], T0, 1)
    key = crypto._decode_key(crypto.new_key_text())  # noqa: SLF001
    core.cipher = crypto.DataCipher({crypto.key_id_of(key): key}, crypto.key_id_of(key))
    app = build_application(core.settings, core=core, request=RecordingRequest())
    with pytest.raises(DataKeyError, match="cannot be decrypted with this installation's keys"):
        await start_application(app, polling=False)
    await stop_application(app)


async def test_retention_purge_is_scheduled_daily(core: Core) -> None:
    """With LIAISON_RETENTION_DAYS set, the running bot has a daily purge job; without it, none."""
    async with app_with_files(core) as (_app, _request, _users):
        assert core.extras["scheduler"].get_job("retention-purge") is None
    core.settings = core.settings.with_overrides(retention_days=30)
    async with app_with_files(core) as (_app, _request, _users):
        job = core.extras["scheduler"].get_job("retention-purge")
        assert job is not None and job.trigger.interval.total_seconds() == 24 * 3600
