"""Signed export bundles: contents in all three scripts, filters, signature and tamper detection, access."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import audit, crypto, exports
from bot.core import Core
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.models import AuditEvent
from bot.models.audit import AuditExport
from bot.officers import OfficerInfo
from tests.audit import relaydata
from tests.audit.conftest import Register

T0 = datetime(2026, 8, 3, 1, 30, tzinfo=UTC)
LAO = "ພົບເກັດລີ່ນ 200 ກິໂລ ຢູ່ດ່ານບໍ່ເຕັນ"
CHINESE = "在磨憨口岸查获穿山甲鳞片两百公斤"
VIETNAMESE = "Đã bắt giữ 200 kg vảy tê tê tại cửa khẩu Móng Cái"


@pytest.fixture
def scene(core: Core, register: Register) -> dict[str, OfficerInfo]:
    """Three officers in a case room who each wrote once, a second case, and an auditor."""
    cn = register("officer", "CN", name="Wang Wei", agency="Customs")
    la = register("officer", "LA", name="Khamla", agency="Forest Inspection")
    vn = register("officer", "VN", name="Nguyen Lan", agency="Border Guard")
    people = [cn, la, vn]
    room = relaydata.room(core, "CN-LA-VN-2026-0042", people, T0)
    for n, (sender, text) in enumerate([(la, LAO), (cn, CHINESE), (vn, VIETNAMESE)], 1):
        relaydata.send(
            core,
            room,
            "CN-LA-VN-2026-0042",
            sender,
            text,
            [p for p in people if p != sender],
            T0 + timedelta(hours=n),
            n,
        )
    other = relaydata.room(core, "CN-VN-2026-0007", [cn, vn], T0)
    relaydata.send(core, other, "CN-VN-2026-0007", cn, "另一个案件", [vn], T0 + timedelta(days=40), 9)
    return {
        "cn": cn,
        "la": la,
        "vn": vn,
        "auditor": register("auditor", "LA", name="Audit LA"),
        "admin": register("admin", None, name="Admin"),
    }


def _zip(path: Path) -> zipfile.ZipFile:
    return zipfile.ZipFile(path)


def _jsonl(zf: zipfile.ZipFile, name: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in zf.read(name).decode("utf-8").splitlines()]


def test_case_export_contents(core: Core, scene: dict[str, OfficerInfo], tmp_path: Path) -> None:
    """One row per delivery with both times, people, languages, texts, engine and status; exact bytes."""
    out = tmp_path / "case.zip"
    result = exports.export_bundle(
        core, scene["auditor"], exports.make_filter(case_tag="CN-LA-VN-2026-0042"), out
    )
    assert result.rows == 6 and result.messages == 3 and result.unreadable == 0
    with _zip(out) as zf:
        assert set(zf.namelist()) == {"manifest.json", "manifest.sig", *exports.BUNDLE_FILES}
        raw_csv = zf.read("messages.csv")
        raw_jsonl = zf.read("messages.jsonl")
        rows = list(csv.DictReader(io.StringIO(raw_csv.decode("utf-8-sig"), newline="")))
        items = _jsonl(zf, "messages.jsonl")
        events = _jsonl(zf, "events.jsonl")
        manifest = json.loads(zf.read("manifest.json"))
    assert raw_csv.startswith(b"\xef\xbb\xbf") and not raw_jsonl.startswith(b"\xef\xbb\xbf")
    # Lao and Chinese survive byte for byte in both files.
    for text in (LAO, CHINESE, VIETNAMESE):
        assert text.encode("utf-8") in raw_csv and text.encode("utf-8") in raw_jsonl
    assert [r["original_text"] for r in rows] == [LAO, LAO, CHINESE, CHINESE, VIETNAMESE, VIETNAMESE]
    assert [i["original_text"] for i in items] == [r["original_text"] for r in rows]
    lao_to_cn = next(i for i in items if i["original_text"] == LAO and i["recipient_country"] == "CN")
    assert lao_to_cn == {
        **lao_to_cn,
        "time_utc": "2026-08-03T02:30:00Z",
        "sender_local_time": "2026-08-03T09:30:00+07:00",
        "case": "CN-LA-VN-2026-0042",
        "sender": "Khamla (@" + scene["la"].username + ")",  # type: ignore[operator]
        "sender_agency": "Forest Inspection",
        "sender_country": "LA",
        "recipient_agency": "Customs",
        "original_language": "lo",
        "delivered_language": "zh",
        "delivered_text": "[zh] " + LAO,
        "engine": "tag",
        "model": "tag-1",
        "status": "sent",
        "original_sha256": audit.body_hash(LAO),
        "delivered_sha256": audit.body_hash("[zh] " + LAO),
    }
    cn_row = next(r for r in rows if r["original_text"] == CHINESE and r["recipient_country"] == "VN")
    assert cn_row["sender_local_time"] == "2026-08-03T11:30:00+08:00" and cn_row["delivered_language"] == "vi"
    assert list(rows[0]) == list(exports.CSV_COLUMNS)
    # Events of this case only, chained; the manifest names both ends and the exporter.
    assert {e["case"] for e in events} == {"CN-LA-VN-2026-0042"}
    assert [e["kind"] for e in events] == ["room.created", "message.sent", "message.sent", "message.sent"]
    assert (
        manifest["events"]["first"]["seq"] == events[0]["seq"]
        and manifest["events"]["last"]["hash"] == events[-1]["hash"]
    )
    assert manifest["exported_by"]["officer"]["role"] == "auditor"
    assert manifest["filter"]["case"] == "CN-LA-VN-2026-0042"
    assert manifest["messages"] == {"rows": 6, "messages": 3, "unreadable_values": 0}
    report = exports.verify_bundle(
        out, public_key=crypto.public_key_text(crypto.load_signing_key(core.settings))
    )
    assert report.ok and report.pinned, report.problems
    assert "6 message rows; 6 of them have their original's hash in the exported events" in report.notes


def test_export_is_audited_and_recorded(core: Core, scene: dict[str, OfficerInfo], tmp_path: Path) -> None:
    """The export is an audit event naming the manifest's hash, and a row in audit_exports."""
    result = exports.export_bundle(
        core,
        scene["admin"],
        exports.make_filter(case_tag="CN-VN-2026-0007"),
        tmp_path / "x.zip",
        purpose="court request 17/2026",
    )
    with core.db.session() as s:
        ev = s.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()
        row = s.get(AuditExport, result.export_id)
    assert (
        ev.kind == "export.created" and ev.actor_id == scene["admin"].id and ev.case_tag == "CN-VN-2026-0007"
    )
    assert json.loads(ev.data)["manifest_sha256"] == result.manifest_sha256
    with _zip(result.path) as zf:
        assert hashlib.sha256(zf.read("manifest.json")).hexdigest() == result.manifest_sha256
    assert row is not None and row.manifest_sha256 == result.manifest_sha256
    assert (
        core.cipher.decrypt(row.purpose, f"audit_exports.purpose:{row.id}".encode())
        == "court request 17/2026"
    )
    assert (result.path.stat().st_mode & 0o777) == 0o600
    assert audit.verify_chain(core.db).ok


def test_period_and_officer_filters(core: Core, scene: dict[str, OfficerInfo], tmp_path: Path) -> None:
    """A period (days in a time zone, end day included) and an officer select their rows and events."""
    flt = exports.make_filter(since="2026-08-03", until="2026-08-03", tz="Asia/Vientiane")
    assert flt.since == datetime(2026, 8, 2, 17, tzinfo=UTC) and flt.until == datetime(
        2026, 8, 3, 17, tzinfo=UTC
    )
    r = exports.export_bundle(core, scene["auditor"], flt, tmp_path / "p.zip")
    assert r.messages == 3
    later = exports.export_bundle(
        core, scene["auditor"], exports.make_filter(since="2026-09-01"), tmp_path / "l.zip"
    )
    assert later.messages == 1
    la = scene["la"]
    mine = exports.export_bundle(
        core, None, exports.make_filter(officer=f"@{la.username}"), tmp_path / "o.zip"
    )
    with _zip(mine.path) as zf:
        items = _jsonl(zf, "messages.jsonl")
        events = _jsonl(zf, "events.jsonl")
    # what Khamla sent (two copies) and the copies Khamla received (one per other message)
    assert sorted((i["sender_country"], i["recipient_country"]) for i in items) == [
        ("CN", "LA"),
        ("LA", "CN"),
        ("LA", "VN"),
        ("VN", "LA"),
    ]
    assert {e["actor"] for e in events} == {la.id}
    assert exports.verify_bundle(mine.path).ok


def test_command_arguments() -> None:
    """/export CASE, /export FROM TO, /export CASE FROM TO; anything else is the usage text."""
    f = exports.parse_command_args(["CN-VN-2026-0042"], "Asia/Shanghai")
    assert f.case_tag == "CN-VN-2026-0042" and f.since is None
    f = exports.parse_command_args(["2026-08-01", "2026-08-31"], "Asia/Shanghai")
    assert f.since == datetime(2026, 7, 31, 16, tzinfo=UTC) and f.until == datetime(
        2026, 8, 31, 16, tzinfo=UTC
    )
    assert exports.parse_command_args(["X-1", "2026-08-01", "2026-08-02"], "UTC").case_tag == "X-1"
    for bad in ([], ["a", "b"], ["2026-08-01"], ["2026-08-31", "2026-08-01"], ["2026-13-01", "2026-13-02"]):
        with pytest.raises(InvalidInput):
            exports.parse_command_args(bad, "UTC")


def test_only_auditors_and_admins_export(
    core: Core, scene: dict[str, OfficerInfo], register: Register, tmp_path: Path
) -> None:
    """Officers and coordinators are refused — in the service — and every refusal is an audit event."""
    coordinator = register("coordinator", "VN")
    for who in (scene["cn"], coordinator):
        with pytest.raises(NotAllowed):
            exports.export_bundle(
                core, who, exports.make_filter(case_tag="CN-LA-VN-2026-0042"), tmp_path / "n.zip"
            )
    assert not (tmp_path / "n.zip").exists()
    with core.db.session() as s:
        refused = s.execute(select(AuditEvent).where(AuditEvent.kind == "export.refused")).scalars().all()
    assert [(e.actor_id, json.loads(e.data)["role"]) for e in refused] == [
        (scene["cn"].id, "officer"),
        (coordinator.id, "coordinator"),
    ]
    revoked = replace(scene["auditor"], active=False)
    with pytest.raises(NotAllowed):
        exports.export_bundle(core, revoked, exports.make_filter(), tmp_path / "r.zip")


def test_unknown_case_is_refused_and_audited(
    core: Core, scene: dict[str, OfficerInfo], tmp_path: Path
) -> None:
    """A case nobody knows is a clear error (not an empty bundle), recorded as a failed export."""
    with pytest.raises(NotFound):
        exports.export_bundle(
            core, scene["auditor"], exports.make_filter(case_tag="XX-0000"), tmp_path / "u.zip"
        )
    with core.db.session() as s:
        last = s.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()
    assert last.kind == "export.failed" and "No case XX-0000" in json.loads(last.data)["reason"]


def _rewrite(src: Path, dst: Path, change: dict[str, bytes | None]) -> None:
    """Copy a ZIP, replacing (or dropping, with None) some members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = change.get(name, zin.read(name))
            if data is not None:
                zout.writestr(name, data)
        for name, data in change.items():
            if name not in zin.namelist() and data is not None:
                zout.writestr(name, data)


def test_modified_bundles_fail_verification(
    core: Core, scene: dict[str, OfficerInfo], tmp_path: Path
) -> None:
    """Any change — a text, an event, the manifest, a re-signature by another key — is caught."""
    good = exports.export_bundle(
        core, scene["auditor"], exports.make_filter(case_tag="CN-LA-VN-2026-0042"), tmp_path / "good.zip"
    ).path
    pinned = crypto.public_key_text(crypto.load_signing_key(core.settings))
    with zipfile.ZipFile(good) as zf:
        csv_bytes, events, manifest = (
            zf.read("messages.csv"),
            zf.read("events.jsonl"),
            zf.read("manifest.json"),
        )
        jsonl = zf.read("messages.jsonl")

    def check(name: str, change: dict[str, bytes | None], expect: str, pin: str | None = None) -> None:
        bad = tmp_path / f"{name}.zip"
        _rewrite(good, bad, change)
        report = exports.verify_bundle(bad, public_key=pin)
        assert not report.ok and any(expect in p for p in report.problems), (name, report.problems)

    check(
        "csv",
        {"messages.csv": csv_bytes.replace(CHINESE.encode(), "在磨憨口岸查获穿山甲鳞片三百公斤".encode())},
        "messages.csv does not match",
    )
    check(
        "dropped-event",
        {"events.jsonl": b"".join(events.splitlines(keepends=True)[1:])},
        "events.jsonl does not match",
    )
    doc = json.loads(manifest)
    doc["filter"]["case"] = "CN-VN-2026-0007"
    check("manifest", {"manifest.json": json.dumps(doc).encode()}, "signature does not match")
    check("extra", {"notes.txt": b"hello"}, "notes.txt is in the ZIP but not in the manifest")
    check("missing", {"messages.jsonl": None}, "messages.jsonl is listed in the manifest but missing")
    # A forger who rewrites a text, fixes every hash and re-signs with their own key:
    forged_jsonl = jsonl.replace(LAO.encode(), "ພົບເກັດລີ່ນ 20 ກິໂລ".encode())
    doc = json.loads(manifest)
    doc["files"]["messages.jsonl"]["sha256"] = hashlib.sha256(forged_jsonl).hexdigest()
    doc["files"]["messages.jsonl"]["bytes"] = len(forged_jsonl)
    other = crypto.Ed25519PrivateKey.generate()
    doc["installation"]["public_key"] = crypto.public_key_text(other)
    forged_manifest = (json.dumps(doc, indent=2) + "\n").encode()
    change = {
        "messages.jsonl": forged_jsonl,
        "manifest.json": forged_manifest,
        "manifest.sig": crypto.sign(other, forged_manifest).encode(),
    }
    check("forged", change, "not by the pinned key", pin=pinned)
    check("forged-text", change, "original_text does not match original_sha256")
    assert exports.verify_bundle(good, public_key=pinned).ok


def test_tampered_events_are_caught_even_when_re_hashed(
    core: Core, scene: dict[str, OfficerInfo], tmp_path: Path
) -> None:
    """An event altered inside events.jsonl fails its own hash, even if the file hash were fixed."""
    good = exports.export_bundle(core, None, exports.make_filter(), tmp_path / "all.zip").path
    with zipfile.ZipFile(good) as zf:
        lines = zf.read("events.jsonl").decode().splitlines()
    ev = json.loads(lines[2])
    ev["actor"] = 999
    lines[2] = json.dumps(ev, ensure_ascii=False)
    bad = tmp_path / "ev.zip"
    _rewrite(good, bad, {"events.jsonl": ("\n".join(lines) + "\n").encode()})
    report = exports.verify_bundle(bad)
    assert not report.ok and any("events.jsonl does not match" in p for p in report.problems)
    assert any(f"event {ev['seq']}: its hash does not match its content" in p for p in report.problems)


def test_unreadable_values_are_marked_not_garbage(
    core: Core, scene: dict[str, OfficerInfo], tmp_path: Path
) -> None:
    """With the data key gone from the keyring, texts are marked unreadable; metadata and hashes remain."""
    kid = core.cipher.active
    other = crypto.new_key_text()
    key = crypto._decode_key(other)  # noqa: SLF001 - building a keyring without the data's key
    core.cipher = crypto.DataCipher({crypto.key_id_of(key): key}, crypto.key_id_of(key))
    result = exports.export_bundle(
        core, scene["auditor"], exports.make_filter(case_tag="CN-LA-VN-2026-0042"), tmp_path / "k.zip"
    )
    assert result.unreadable > 0
    with _zip(result.path) as zf:
        items = _jsonl(zf, "messages.jsonl")
    assert all(i["original_text"] is None and f"key {kid}" in i["notes"] for i in items)
    assert {i["original_sha256"] for i in items} == {audit.body_hash(t) for t in (LAO, CHINESE, VIETNAMESE)}
    assert exports.verify_bundle(result.path).ok
