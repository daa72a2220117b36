"""The relay service: store, translate once per language, queue, deliver; replies, edits, retractions, media."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from bot import delivery, relay, rooms
from bot.core import Core
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.models import AuditEvent, Base
from bot.models.relay import Message, MessageTranslation, MessageVersion
from bot.outbound import OutFile, OutMessage, SendError
from tests.relay.conftest import CASE, FakeOutbound, Team, register


async def deliver(core: Core, out: FakeOutbound) -> None:
    """Run the worker until nothing is due (per-chat spacing off: these tests are not about rates)."""
    worker = delivery.DeliveryWorker(core, out, chat_interval=0.0)
    await worker.start()
    try:
        await worker.wait_idle(10)
    finally:
        await worker.stop()


def _post(core: Core, who, text: str | None, message_id: int, kind: str = "text", **kw):  # type: ignore[no-untyped-def]
    return relay.post(core, who, relay.Incoming(chat_id=who.telegram_id, message_id=message_id, kind=kind,
                                                text=text, **kw))


def _events(core: Core, prefix: str) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    with core.db.session() as s:
        return [(e.kind, json.loads(e.data)) for e in s.execute(
            select(AuditEvent).where(AuditEvent.kind.like(prefix + "%")).order_by(AuditEvent.seq)).scalars()]


def _relayed(out: FakeOutbound, chat_id: int) -> list[OutMessage]:
    return [m for m in out.to(chat_id, "send") if "CN-VN-2026-0042</code>" in m.text]


async def test_each_member_gets_one_copy_in_their_language(core: Core, team: Team) -> None:
    """One translator call for all target languages; each other member gets one copy with the original."""
    core.translator.calls.clear()  # type: ignore[attr-defined]
    result = _post(core, team.cn, "穿山甲鳞片明天经过老街", 10)
    assert (result.recipients, result.source_lang, result.handling) == (3, "zh", "H0")
    assert core.translator.calls == [("穿山甲鳞片明天经过老街", "zh", ("lo", "vi"))]  # type: ignore[attr-defined]
    out = FakeOutbound()
    await deliver(core, out)
    assert _relayed(out, team.cn.telegram_id) == []
    for officer, lang in ((team.coord, "vi"), (team.vn, "vi"), (team.la, "lo")):
        (copy,) = _relayed(out, officer.telegram_id)
        assert f"[{lang}] 穿山甲鳞片明天经过老街" in copy.text
        assert "<blockquote expandable>" in copy.text and copy.text.count("穿山甲鳞片明天经过老街") == 2
        assert "王伟" in copy.text and "Police" in copy.text and not copy.protect
    assert delivery.status_counts(core, "relay", result.message_id) == {"sent": 3}
    kinds = [k for k, _d in _events(core, "message.")] + [k for k, _d in _events(core, "delivery.") if
                                                          _d.get("kind") == "relay"]
    assert kinds == ["message.sent", "message.translated"] + ["delivery.sent"] * 3
    (translated,) = [d for k, d in _events(core, "message.translated")]
    assert sorted(q[1] for q in translated["deliveries"]) == sorted([team.coord.id, team.vn.id, team.la.id])
    assert set(translated["translations"]) == {"vi", "lo"} and translated["translations"]["lo"]["engine"] == "test"
    assert relay.message_text(core, result.message_id, "lo") == "[lo] 穿山甲鳞片明天经过老街"


async def test_bodies_are_encrypted_and_audited_by_hash(core: Core, team: Team) -> None:
    """No table holds the message, its translations or its media details in clear; the chain holds hashes."""
    marker = "Xe tải biển số 24C-12345 chở ngà voi"
    _post(core, team.vn, marker, 11)
    _post(core, team.vn, None, 12, kind="contact", phone_number="+84912345678", first_name="Bình")
    await deliver(core, FakeOutbound())
    with core.db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(text(f'SELECT * FROM "{table.name}"')):
                flat = " ".join(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row)
                assert "ngà voi" not in flat and "24C-12345" not in flat and "912345678" not in flat, table.name
    sent = [d for k, d in _events(core, "message.sent")]
    assert sent[0]["hash"] == relay.body_hash(marker)


def test_hashtags_and_case_tag_are_stored(core: Core, team: Team) -> None:
    """The room's case tag and each #hashtag (any script, once) are stored with the message."""
    result = _post(core, team.la, "ພົບ #ລີ່ນ ແລະ #Pangolin ທີ່ #pangolin ດ່ານ #ບໍ່ແກ້ວ.", 13)
    with core.db.session() as s:
        assert s.get(Message, result.message_id).tags == f"{CASE} #ລີ່ນ #Pangolin #ບໍ່ແກ້ວ"  # type: ignore[union-attr]


async def test_handling_code_raise_and_protection(core: Core, team: Team) -> None:
    """#H2 raises one message (protected copies, marker removed); a lower code than the room's is refused."""
    raised = _post(core, team.vn, "#H2 Danh sách người cung cấp tin", 14)
    assert raised.handling == "H2" and raised.notes == ()
    rooms.set_handling(core, team.coord, "H1")
    kept = _post(core, team.vn, "h0: ảnh chụp kho hàng", 15)
    assert kept.handling == "H1" and [n.msgid for n in kept.notes] == [relay.HANDLING_KEPT]
    assert "H1" in relay.render_note(core.catalogs.get("vi"), kept.notes[0])
    out = FakeOutbound()
    await deliver(core, out)
    copies = _relayed(out, team.cn.telegram_id)
    assert [c.protect for c in copies] == [True, False]
    assert "#H2" not in copies[0].text and "<b>H2</b>" in copies[0].text and "<b>H1</b>" in copies[1].text


def test_bad_input_is_refused_clearly(core: Core, team: Team) -> None:
    """Empty texts, a bare code, unsupported kinds, auditors and officers without a room get domain errors."""
    for empty in ("   \n ", "#H2", "H3:  "):
        with pytest.raises(InvalidInput) as err:
            _post(core, team.vn, empty, 20)
        assert err.value.message == relay.EMPTY
    with pytest.raises(InvalidInput):
        _post(core, team.vn, None, 21, kind="sticker")
    auditor = register(core, 7001, "auditor", "CN")
    with pytest.raises(NotAllowed) as refused:
        _post(core, auditor, "hello", 22)
    assert refused.value.message == relay.NO_AUDITOR_POSTS
    loner = register(core, 8001, "officer", "VN")
    with pytest.raises(NotFound):
        _post(core, loner, "xin chào", 23)


async def test_emoji_only_and_mixed_scripts(core: Core, team: Team) -> None:
    """Emoji need no translation (no engine call, no note); mixed scripts are relayed with a note to the sender."""
    core.translator.calls.clear()  # type: ignore[attr-defined]
    thumbs = _post(core, team.la, "👍🙏", 30)
    assert core.translator.calls == [] and thumbs.notes == ()  # type: ignore[attr-defined]
    mixed = _post(core, team.la, "ລົດບັນທຸກ ຂອງ ບໍລິສັດ 老街贸易有限公司 ອອກ ຈາກ ດ່ານ ມື້ນີ້", 31)
    assert [n.msgid for n in mixed.notes] == [relay.MIXED_SCRIPTS]
    assert mixed.source_lang == "lo" and "ລາວ" in relay.render_note(core.catalogs.get("lo"), mixed.notes[0])
    out = FakeOutbound()
    await deliver(core, out)
    first = _relayed(out, team.cn.telegram_id)[0].text
    assert "👍🙏" in first and "blockquote" not in first and "⚠" not in first


def test_redelivered_update_is_stored_once(core: Core, team: Team) -> None:
    """The same Telegram message posted twice (an update redelivered after a restart) is relayed once."""
    first = _post(core, team.vn, "Hàng đã qua cửa khẩu", 40)
    again = _post(core, team.vn, "Hàng đã qua cửa khẩu", 40)
    assert again.duplicate and again.message_id == first.message_id
    assert len(delivery.deliveries_for(core, "relay", first.message_id)) == 3


async def test_reply_goes_to_its_room_as_a_reply_to_each_readers_copy(core: Core, team: Team) -> None:
    """A reply on a relayed copy lands in that room even when the replier writes elsewhere now."""
    original = _post(core, team.cn, "货车今晚出发", 50)
    out = FakeOutbound()
    await deliver(core, out)
    la_copy = {d.recipient_id: d for d in delivery.deliveries_for(core, "relay", original.message_id)}
    rooms.create_case(core, team.coord, "LA-VN-2026-0007", "Other case")
    rooms.add_member(core, team.coord, "@user4001", "LA-VN-2026-0007")
    rooms.choose_room(core, team.la, "LA-VN-2026-0007")
    reply = _post(core, team.la, "ຂອບໃຈ, ພວກເຮົາຈະກວດ", 51,
                  reply_to_message_id=la_copy[team.la.id].telegram_message_id)
    assert reply.case_tag == CASE
    with core.db.session() as s:
        assert s.get(Message, reply.message_id).reply_to_id == original.message_id  # type: ignore[union-attr]
    out.calls.clear()
    await deliver(core, out)
    # the original's sender sees it as a reply to their own message; the others to their copy
    assert [m.reply_to for m in _relayed(out, team.cn.telegram_id)] == [50]
    assert [m.reply_to for m in _relayed(out, team.vn.telegram_id)] == [la_copy[team.vn.id].telegram_message_id]
    # a removed member cannot reply into the room any more
    rooms.remove_member(core, team.coord, "@user4001", CASE)
    with pytest.raises(NotAllowed):
        _post(core, team.la, "ok", 52, reply_to_message_id=la_copy[team.la.id].telegram_message_id)


async def test_edit_updates_every_copy_and_keeps_both_versions(core: Core, team: Team) -> None:
    """An edit is translated once per language, edits each delivered copy and is stored as version 2."""
    posted = _post(core, team.vn, "Xe rời kho lúc 9 giờ", 60)
    out = FakeOutbound()
    await deliver(core, out)
    core.translator.calls.clear()  # type: ignore[attr-defined]
    assert relay.edit(core, team.vn, 3001, 60, "Xe rời kho lúc 10 giờ") == 2
    assert core.translator.calls == [("Xe rời kho lúc 10 giờ", "vi", ("lo", "zh"))]  # type: ignore[attr-defined]
    assert relay.edit(core, team.vn, 3001, 60, "Xe rời kho lúc 10 giờ") is None  # unchanged
    assert relay.edit(core, team.cn, 3001, 60, "not mine") is None
    out.calls.clear()
    await deliver(core, out)
    copies = {d.recipient_id: d.telegram_message_id for d in delivery.deliveries_for(core, "relay", posted.message_id)}
    (cn_edit,) = out.to(team.cn.telegram_id, "edit")
    assert cn_edit[0] == copies[team.cn.id] and "[zh] Xe rời kho lúc 10 giờ" in cn_edit[1] and "✏️" in cn_edit[1]
    assert out.to(team.coord.telegram_id, "edit")[0][1].count("Xe rời kho lúc 10 giờ") == 1  # same language
    with core.db.session() as s:
        versions = s.execute(select(MessageVersion.version).where(MessageVersion.message_id == posted.message_id)
                             .order_by(MessageVersion.version)).scalars().all()
        translations = len(s.execute(select(MessageTranslation).where(
            MessageTranslation.message_id == posted.message_id)).all())
    assert [relay.message_text(core, posted.message_id, version=v) for v in versions] == [
        "Xe rời kho lúc 9 giờ", "Xe rời kho lúc 10 giờ"]
    assert translations == 6  # (vi as is, zh, lo) × 2 versions
    assert [d["version"] for _k, d in _events(core, "message.edited")] == [2]


async def test_edit_before_delivery_rewrites_the_queued_copies(core: Core, team: Team) -> None:
    """Copies still queued are rewritten, so readers get only the new text, once."""
    _post(core, team.vn, "Bản nháp", 61)
    relay.edit(core, team.vn, 3001, 61, "Bản chính thức")
    out = FakeOutbound()
    await deliver(core, out)
    texts = [m.text for m in _relayed(out, team.cn.telegram_id)]
    assert len(texts) == 1 and "Bản chính thức" in texts[0] and "Bản nháp" not in texts[0]
    assert out.to(team.cn.telegram_id, "edit") == []


async def test_retract_deletes_copies_and_keeps_the_record(core: Core, team: Team) -> None:
    """Only the sender retracts; copies are deleted (or replaced by a notice where Telegram refuses)."""
    posted = _post(core, team.vn, "Thông tin sai", 70)
    out = FakeOutbound()
    await deliver(core, out)
    with pytest.raises(InvalidInput):
        relay.retract(core, team.vn, 3001, None)
    la_copy = [d for d in delivery.deliveries_for(core, "relay", posted.message_id) if d.recipient_id == team.la.id][0]
    with pytest.raises(NotAllowed):
        relay.retract(core, team.la, 4001, la_copy.telegram_message_id)
    assert relay.retract(core, team.vn, 3001, 70) == 3
    with pytest.raises(Conflict):
        relay.retract(core, team.vn, 3001, 70)
    too_old = SendError("gone", "Bad Request: message can't be deleted for everyone")
    out.fail = lambda method, chat: too_old if method == "delete" and chat == team.la.telegram_id else None
    await deliver(core, out)
    copies = {d.recipient_id: d.telegram_message_id for d in delivery.deliveries_for(core, "relay", posted.message_id)}
    assert out.to(team.cn.telegram_id, "delete") == [copies[team.cn.id]]
    assert delivery.status_counts(core, "relay", posted.message_id) == {"sent": 3}  # the copies' own record stays
    (replaced,) = out.to(team.la.telegram_id, "edit")
    assert "ຖືກຖອນຄືນ" in replaced[1]  # the Lao reader sees a Lao notice instead
    assert relay.message_text(core, posted.message_id) == "Thông tin sai"
    assert [d["copies"] for _k, d in _events(core, "message.retracted")] == [3]


async def test_photo_caption_translated_and_file_hash_recorded(core: Core, team: Team) -> None:
    """A photo goes to each member by file id with its caption translated; its SHA-256 is recorded."""
    posted = _post(core, team.la, "ເກັດລີ່ນ 40 ກິໂລ", 80, kind="photo", file_id="PHOTO-1", file_unique_id="u1",
                   file_size=12)
    assert posted.file_id == "PHOTO-1"
    out = FakeOutbound()
    await deliver(core, out)
    (photo,) = out.to(team.cn.telegram_id, "send_file")
    assert isinstance(photo, OutFile) and (photo.kind, photo.file_id) == ("photo", "PHOTO-1")
    assert "[zh] ເກັດລີ່ນ 40 ກິໂລ" in (photo.caption or "")
    relay.record_file_hash(core, posted.message_id, relay.sha256_hex(b"jpeg bytes"), 10)
    with core.db.session() as s:
        assert s.get(Message, posted.message_id).file_sha256 == relay.sha256_hex(b"jpeg bytes")  # type: ignore[union-attr]
    assert [d["sha256"] for _k, d in _events(core, "message.file_hashed")] == [relay.sha256_hex(b"jpeg bytes")]
    assert relay.unhashed_files(core) == []


async def test_location_and_contact_arrive_with_a_header(core: Core, team: Team) -> None:
    """A location or contact comes as the header message, then the pin itself."""
    _post(core, team.vn, None, 90, kind="location", latitude=22.49, longitude=103.97)
    _post(core, team.vn, None, 91, kind="contact", phone_number="+84900000000", first_name="Bình")
    out = FakeOutbound()
    await deliver(core, out)
    methods = [m for m, chat, _w in out.calls if chat == team.la.telegram_id]
    assert methods[-4:] == ["send", "send_location", "send", "send_contact"]
    assert out.to(team.la.telegram_id, "send_location")[0][:2] == (22.49, 103.97)


async def test_a_message_stored_before_a_crash_is_relayed_on_resume(core: Core, team: Team) -> None:
    """If the bot stops between storing a message and queuing its copies, `resume` relays it once."""
    class Crashing:
        def translate(self, *_a: object) -> None:
            raise SystemError("process killed")

        def directions(self) -> set[tuple[str, str]]:
            return set()

    working, core.translator = core.translator, Crashing()  # type: ignore[assignment]
    with pytest.raises(SystemError):
        _post(core, team.vn, "Hàng đã qua cửa khẩu", 95)
    core.translator = working
    assert delivery.deliveries_for(core, "relay", 1) == []
    assert relay.resume(core, timedelta(0)) == 1
    assert relay.resume(core, timedelta(0)) == 0
    out = FakeOutbound()
    await deliver(core, out)
    assert len(_relayed(out, team.la.telegram_id)) == 1


async def test_sender_is_told_when_a_member_blocked_the_bot(core: Core, team: Team) -> None:
    """A blocked recipient is marked blocked, the others still get it, and the sender gets a notice."""
    out = FakeOutbound(fail=lambda method, chat: SendError("blocked", "Forbidden: bot was blocked by the user")
                       if chat == team.la.telegram_id else None)
    delivery.outbox(core).subscribe("relay", lambda event: relay.notify_sender(core, event) and None)
    posted = _post(core, team.cn, "明天行动", 99)
    await deliver(core, out)
    statuses = {d.recipient_id: d.status for d in delivery.deliveries_for(core, "relay", posted.message_id)}
    assert statuses == {team.coord.id: "sent", team.vn.id: "sent", team.la.id: "blocked"}
    notices = [m for m in out.to(team.cn.telegram_id, "send") if "屏蔽" in m.text]
    (notice,) = notices
    assert "ສົມພອນ" in notice.text and notice.reply_to == 99


async def test_a_reply_faster_than_the_record_of_its_copy_still_threads(core: Core, team: Team) -> None:
    """A reply to a copy Telegram already shows but the worker has not yet recorded waits for that record."""
    import asyncio

    await deliver(core, FakeOutbound())  # the join notices are out of the way
    original = _post(core, team.cn, "货车今晚出发", 110)
    (job,) = [j for j in delivery.claim(core, "w:1:a", 10) if j.chat_id == team.la.telegram_id]
    assert (job.kind, job.ref_id) == ("relay", original.message_id)

    async def record_later() -> None:
        await asyncio.sleep(0.3)  # Telegram answered; the outcome is committed a moment later
        await asyncio.to_thread(delivery.finish, core, "w:1:a", job, delivery.Outcome("sent", sent=[(777, "text")]))

    recording = asyncio.create_task(record_later())
    reply = await asyncio.to_thread(_post, core, team.la, "ຂອບໃຈ", 111, reply_to_message_id=777)
    await recording
    with core.db.session() as s:
        assert s.get(Message, reply.message_id).reply_to_id == original.message_id  # type: ignore[union-attr]


async def test_an_edited_caption_edits_each_copys_caption(core: Core, team: Team) -> None:
    """Editing a photo's caption re-translates it and edits the caption of every delivered copy."""
    posted = _post(core, team.vn, "Ảnh kho hàng", 120, kind="photo", file_id="PHOTO-9")
    out = FakeOutbound()
    await deliver(core, out)
    assert relay.edit(core, team.vn, 3001, 120, "Ảnh kho hàng ở Lào Cai") == 2
    await deliver(core, out)
    ((message_id, caption, _buttons),) = out.to(team.la.telegram_id, "edit_caption")
    (la_copy,) = [d for d in delivery.deliveries_for(core, "relay", posted.message_id) if d.recipient_id == team.la.id]
    assert message_id == la_copy.telegram_message_id and "[lo] Ảnh kho hàng ở Lào Cai" in (caption or "")
    assert out.to(team.la.telegram_id, "edit") == []
