"""Encryption at rest: round trip, wrong and missing keys, rotation without downtime, dropping old keys."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from bot import audit, crypto, keys
from bot.config import Secret, Settings
from bot.core import Core
from bot.crypto import DataCipher, DataKeyError, blob_key_id, load_cipher
from bot.i18n import Catalogs
from bot.models import Base
from tests.audit.conftest import Register
from tests.support.translators import TagTranslator

NOW = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def file_core(settings: Settings, catalogs: Catalogs) -> Iterator[Core]:
    """A core whose keys live in the keyring file (no LIAISON_DATA_KEY), as most installations run."""
    c = Core.build(settings.with_overrides(data_key=None), translator=TagTranslator(), catalogs=catalogs)
    yield c
    c.close()


def _put_export(core: Core, purpose: str) -> int:
    """Insert an audit_exports row with an encrypted purpose (its AAD names the row)."""
    with core.db.transaction() as s:
        new_id = s.execute(
            insert(Base.metadata.tables["audit_exports"]).values(
                created_at=NOW,
                via="cli",
                filter="{}",
                event_count=0,
                message_count=0,
                head_seq=0,
                head_hash="0" * 64,
                manifest_sha256=os.urandom(32).hex(),
                signing_key="k",
            )
        ).inserted_primary_key[0]
        blob = core.cipher.encrypt(purpose, f"audit_exports.purpose:{new_id}".encode())
        s.execute(text("UPDATE audit_exports SET purpose = :b WHERE id = :i"), {"b": blob, "i": new_id})
    return int(new_id)


def _put_room(core: Core, tag: str, title: str) -> None:
    """Insert a relay room with an encrypted title (relay binds values to b'rooms.title_enc')."""
    with core.db.transaction() as s:
        s.execute(
            insert(Base.metadata.tables["rooms"]).values(
                case_tag=tag,
                kind="case",
                handling="H0",
                created_at=NOW,
                title_enc=core.cipher.encrypt(title, b"rooms.title_enc"),
            )
        )


def _values(core: Core) -> dict[str, tuple[str, str]]:
    """Return every stored test value: name → (key id, plaintext)."""
    out = {}
    with core.db.session() as s:
        for i, blob in s.execute(text("SELECT id, purpose FROM audit_exports")):
            out[f"export{i}"] = (
                blob_key_id(blob),
                core.cipher.decrypt(blob, f"audit_exports.purpose:{i}".encode()),
            )
        for tag, blob in s.execute(text("SELECT case_tag, title_enc FROM rooms")):
            out[tag] = (blob_key_id(blob), core.cipher.decrypt(blob, b"rooms.title_enc"))
    return out


def test_round_trip_and_authenticated_data() -> None:
    """Round trip in all scripts; a value moved to another row (other AAD) does not decrypt."""
    key = os.urandom(32)
    c = DataCipher({crypto.key_id_of(key): key}, crypto.key_id_of(key))
    for textv in ["ສະບາຍດີ", "穿山甲鳞片", "Vảy tê tê", ""]:
        blob = c.encrypt(textv, b"t.c:1")
        assert (not textv or textv.encode() not in blob) and c.decrypt(blob, b"t.c:1") == textv
        with pytest.raises(DataKeyError):
            c.decrypt(blob, b"t.c:2")
    flipped = bytearray(c.encrypt("x", b""))
    flipped[-1] ^= 1
    with pytest.raises(DataKeyError, match="altered"):
        c.decrypt(bytes(flipped), b"")


def test_wrong_key_is_a_clear_error_never_garbage(settings: Settings) -> None:
    """Data written with one key, read with another: DataKeyError naming the key, not garbage text."""
    a = load_cipher(settings)
    blob = a.encrypt("rhino horn", b"")
    other = settings.with_overrides(
        data_key=Secret(crypto.new_key_text()), data_dir=settings.data_dir / "other"
    )
    b = load_cipher(other)
    with pytest.raises(DataKeyError, match=f"key {a.active}, which is not in the keyring"):
        b.decrypt(blob, b"")
    with pytest.raises(DataKeyError, match="32 bytes"):
        load_cipher(settings.with_overrides(data_key=Secret("c2hvcnQ=")))
    with pytest.raises(DataKeyError, match="unknown format"):
        a.decrypt(b"plain text", b"")


def test_key_file_is_owner_only_and_checked(settings: Settings) -> None:
    """The keyring file is created 0600 in a 0700 folder; one readable by others is refused."""
    s = settings.with_overrides(data_key=None)
    with pytest.raises(DataKeyError, match="no data key"):
        load_cipher(s, create=False)
    load_cipher(s)
    path = crypto.keyring_path(s)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    os.chmod(path, 0o644)
    with pytest.raises(DataKeyError, match="readable by others"):
        load_cipher(s)
    os.chmod(path, 0o600)
    path.write_text("{not json")
    with pytest.raises(DataKeyError, match="not a valid keyring"):
        load_cipher(s)


def test_missing_key_at_start_is_refused(file_core: Core, settings: Settings, catalogs: Catalogs) -> None:
    """Data dir lost its keyring: the next start creates a fresh key, and the key check refuses to run."""
    _put_room(file_core, "CN-VN-2026-0001", "Pangolin scales, Mong Cai")
    keys.check_keys(file_core)  # fine with the right key
    crypto.keyring_path(file_core.settings).unlink()
    fresh = Core.build(settings.with_overrides(data_key=None), translator=TagTranslator(), catalogs=catalogs)
    try:
        with pytest.raises(DataKeyError, match="restore the keyring file"):
            keys.check_keys(fresh)
    finally:
        fresh.close()


def test_registry_finds_every_area_s_encrypted_columns() -> None:
    """Columns marked in the models and those listed in an area's ENCRYPTED_COLUMNS are all found."""
    found = {c.name: c for c in keys.all_encrypted_columns()}
    assert found["audit_exports.purpose"].aad == "audit_exports.purpose:{id}"
    assert found["audit_exports.purpose"].aad_for({"id": 7}) == b"audit_exports.purpose:7"
    assert found["rooms.title_enc"].aad_for({"id": 1}) == b"rooms.title_enc"
    assert "messages.body_enc" in found and "deliveries.payload_enc" in found
    assert found["message_translations.text_enc"].pk == ("message_id", "version", "lang")


def test_rotate_reencrypts_everything_and_drops_the_old_key(file_core: Core) -> None:
    """After rotation every value uses the new key, reads back the same, the old key is gone; all audited."""
    core = file_core
    old = core.cipher.active
    ids = [_put_export(core, p) for p in ["court request 2026/17", "审计请求", "ຄຳຮ້ອງ"]]
    for i in range(7):
        _put_room(core, f"LA-VN-2026-{i:04d}", f"ຫ້ອງ {i} phòng")
    before = {k: v[1] for k, v in _values(core).items()}
    report = keys.rotate(core, drop_old=True, batch=3, grace=0)
    new = core.cipher.active
    assert new != old and report.new_active == new
    assert report.reencrypted.rewritten == {"audit_exports.purpose": 3, "rooms.title_enc": 7}
    after = _values(core)
    assert {k: v[1] for k, v in after.items()} == before
    assert {v[0] for v in after.values()} == {new}
    assert report.dropped == [old] and set(core.cipher.keys) == {new}
    assert set(crypto.read_keyring(core.settings)[0]) == {new}  # type: ignore[index]
    kinds = [
        k for (k,) in core.db.engine.connect().execute(text("SELECT kind FROM audit_events ORDER BY seq"))
    ]
    assert kinds[-2:] == ["keys.rotated", "keys.reencrypted"]
    assert audit.verify_chain(core.db).ok
    assert ids


def test_unreadable_values_are_reported_and_keep_the_old_key(file_core: Core) -> None:
    """A value that cannot be decrypted is listed, left untouched, and its key is not dropped."""
    core = file_core
    _put_room(core, "CN-LA-2026-0001", "ok")
    with core.db.transaction() as s:  # encrypted with the wrong associated data: undecryptable
        s.execute(
            insert(Base.metadata.tables["rooms"]).values(
                case_tag="CN-LA-2026-0002",
                kind="case",
                handling="H0",
                created_at=NOW,
                title_enc=core.cipher.encrypt("x", b"somewhere.else"),
            )
        )
    old = core.cipher.active
    report = keys.rotate(core, drop_old=True, grace=0)
    assert len(report.reencrypted.failures) == 1 and report.reencrypted.failures[0][0] == "rooms.title_enc"
    assert report.dropped == [] and "1 value(s) still use it" in report.kept[old]
    assert old in core.cipher.keys


def test_rotation_while_the_bot_writes(
    file_core: Core, settings: Settings, catalogs: Catalogs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second process's cipher writes during rotation; it switches keys by itself, nothing is lost."""
    monkeypatch.setattr(crypto, "REFRESH_SECONDS", 0.05)
    bot = Core.build(settings.with_overrides(data_key=None), translator=TagTranslator(), catalogs=catalogs)
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:
        i = 0
        while not stop.is_set():
            _put_room(bot, f"VN-CN-2026-{i:04d}", f"live {i}")
            # the running bot reads what it wrote (some of it re-encrypted under its feet)
            assert _values(bot)[f"VN-CN-2026-{i:04d}"][1] == f"live {i}"
            written.append(f"VN-CN-2026-{i:04d}")
            i += 1

    for i in range(20):
        _put_room(file_core, f"CN-VN-2026-{i:04d}", f"old {i}")
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        report = keys.rotate(file_core, drop_old=True, batch=5, grace=0.3)
    finally:
        stop.set()
        thread.join()
    try:
        new = file_core.cipher.active
        assert written and report.dropped == [report.old_active]
        assert bot.cipher.active == new  # picked up from the keyring file, no restart
        values = _values(file_core)
        assert {v[0] for v in values.values()} == {new}
        assert all(values[tag][1].startswith("live ") for tag in written)
    finally:
        bot.close()


def test_env_key_rotation_procedure(settings: Settings, catalogs: Catalogs) -> None:
    """LIAISON_DATA_KEY: rotate refuses with instructions; keep-env-key, new env key, reencrypt, drop."""
    core = Core.build(settings, translator=TagTranslator(), catalogs=catalogs)
    try:
        _put_room(core, "LA-CN-2026-0001", "ວັງຊ້າງ")
        with pytest.raises(keys.KeyRotationError, match="keep-env-key"):
            keys.rotate(core)
        old = keys.keep_env_key(core)
    finally:
        core.close()
    rotated = settings.with_overrides(data_key=Secret(keys.new_env_key()))
    core = Core.build(rotated, translator=TagTranslator(), catalogs=catalogs)
    try:
        assert old in core.cipher.keys and core.cipher.active != old
        keys.check_keys(core)
        report = keys.finish(core, drop_old=True)
        assert report.reencrypted.rewritten["rooms.title_enc"] == 1 and report.dropped == [old]
        assert not crypto.keyring_path(rotated).exists()  # no key left on disk
        assert _values(core)["LA-CN-2026-0001"] == (core.cipher.active, "ວັງຊ້າງ")
    finally:
        core.close()


def test_usage_counts_values_per_key(file_core: Core) -> None:
    """`keys status` counts values per key per column, and finds unregistered encrypted values."""
    _put_room(file_core, "CN-VN-2026-0009", "t")
    _put_export(file_core, "p")
    u = keys.usage(file_core)
    kid = file_core.cipher.active
    assert u.by_column["rooms.title_enc"] == {kid: 1} and u.by_column["audit_exports.purpose"] == {kid: 1}
    assert u.totals()[kid] == 2
    with file_core.db.session() as s:
        assert s.execute(select(text("count(*)")).select_from(text("rooms"))).scalar() == 1


def test_associated_data_from_a_function(file_core: Core) -> None:
    """Associated data computed from the row (a function and the columns it reads) is re-encrypted."""
    ids = [_put_export(file_core, f"purpose {i}") for i in range(3)]
    col = crypto.EncryptedColumn(
        "audit_exports",
        "purpose",
        ("id",),
        aad=lambda row: f"audit_exports.purpose:{row['id']}".encode(),
        aad_columns=("id",),
    )
    assert col.aad_fields() == ("id",)
    ring, _active = crypto.read_keyring(file_core.settings)  # type: ignore[misc]
    fresh = os.urandom(32)
    crypto.write_keyring(
        crypto.keyring_path(file_core.settings),
        {**ring, crypto.key_id_of(fresh): fresh},
        crypto.key_id_of(fresh),
    )
    report = keys.reencrypt(file_core, columns=[col])
    assert report.rewritten["audit_exports.purpose"] == 3 and not report.failures
    assert file_core.cipher.active == crypto.key_id_of(fresh)
    info = crypto.encrypted(lambda row: b"x", aad_columns=("item_id",))[crypto.INFO_KEY]
    assert info["aad_columns"] == ("item_id",) and callable(info["aad"])
    assert {v[1] for v in _values(file_core).values()} == {f"purpose {i}" for i in range(3)} and ids


def test_rotation_covers_the_relay_tables(file_core: Core, register: Register, tmp_path: Path) -> None:
    """Messages, versions, translations (three-column key) and copies are re-encrypted batch by batch."""
    from bot import exports
    from tests.audit import relaydata

    core = file_core
    la, cn, vn = register("officer", "LA"), register("officer", "CN"), register("officer", "VN")
    room = relaydata.room(core, "CN-LA-VN-2026-0900", [la, cn, vn], NOW)
    for i in range(5):
        relaydata.send(core, room, "CN-LA-VN-2026-0900", la, f"ຂໍ້ຄວາມ {i}", [cn, vn], NOW, i)
    old = core.cipher.active
    report = keys.rotate(core, drop_old=True, batch=2, grace=0)
    assert report.reencrypted.rewritten == {
        "deliveries.payload_enc": 10,
        "message_translations.text_enc": 10,
        "message_versions.body_enc": 5,
        "messages.body_enc": 5,
        "rooms.title_enc": 1,
    }
    assert report.dropped == [old] and not report.reencrypted.failures
    use = keys.usage(core)
    assert set(use.totals()) == {core.cipher.active} and not use.unregistered
    result = exports.export_bundle(
        core, None, exports.make_filter(case_tag="CN-LA-VN-2026-0900"), tmp_path / "k.zip"
    )
    assert result.rows == 10 and result.unreadable == 0
