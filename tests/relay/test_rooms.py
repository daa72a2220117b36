"""Case rooms: tags, membership, who may do what, visibility, one-to-one rooms, handling codes."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot import delivery, rooms
from bot.core import Core
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.models import AuditEvent
from bot.models.relay import Delivery, Room
from tests.relay.conftest import CASE, Team, register


def _events(core: Core, kind: str) -> list[dict]:  # type: ignore[type-arg]
    with core.db.session() as s:
        return [json.loads(e.data) for e in s.execute(select(AuditEvent).where(AuditEvent.kind == kind)
                                                       .order_by(AuditEvent.seq)).scalars()]


@pytest.mark.parametrize("tag", ["CN-VN-2026-0042", "cn-la-vn-2025-7", "#LA-VN-2026-000123"])
def test_valid_case_tags(tag: str) -> None:
    """Country codes, a year and a number; lower case and a leading # are accepted and normalized."""
    assert rooms.parse_case_tag(tag) == tag.upper().lstrip("#")


@pytest.mark.parametrize("tag", ["", "CN-VN-42", "CNVN-2026-0042", "CN-VN-2026-", "CN-VN-1826-1",
                                 "CN-VN-2026-0042; DROP", "中国-2026-1"])
def test_invalid_case_tags(tag: str) -> None:
    """Anything else is refused with the tag named."""
    with pytest.raises(InvalidInput):
        rooms.parse_case_tag(tag)


def test_newcase_rules(core: Core) -> None:
    """Only staff open rooms; tags are unique; a title is required; the title is encrypted at rest."""
    coord = register(core, 1, "coordinator", "VN", "Customs")
    officer = register(core, 2, "officer", "CN")
    with pytest.raises(NotAllowed):
        rooms.create_case(core, officer, CASE, "x")
    with pytest.raises(InvalidInput):
        rooms.create_case(core, coord, CASE, "   ")
    room = rooms.create_case(core, coord, CASE.lower(), "Pangolin  scales")
    assert (room.case_tag, room.title, room.members, room.current, room.handling) == (
        CASE, "Pangolin scales", 1, True, "H0")
    with pytest.raises(Conflict):
        rooms.create_case(core, coord, CASE, "again")
    with core.db.session() as s:
        stored = s.execute(select(Room)).scalar_one()
        assert b"Pangolin" not in stored.title_enc
    assert [e["room"] for e in _events(core, "room.created")] == [room.id]


def test_add_remove_and_notices(core: Core, team: Team) -> None:
    """Adding tells the newcomer and the others (in their languages); removing cancels what was not yet sent."""
    assert [r.members for r in rooms.my_rooms(core, team.cn)] == [4]
    # the first room an officer is added to becomes the room they write to
    assert rooms.current_room(core, team.la).case_tag == CASE  # type: ignore[union-attr]
    with core.db.session() as s:
        notices = s.execute(select(Delivery).where(Delivery.kind == "notice", Delivery.chat_id == 4001)).scalars()
        texts = [json.loads(core.cipher.decrypt(d.payload_enc, b"deliveries.payload_enc"))["parts"][0]
                 for d in notices]
    assert texts[0].startswith("Trần Minh") and "ຫ້ອງຄະດີ" in texts[0]  # Lao officer reads Lao
    with pytest.raises(Conflict):
        rooms.add_member(core, team.coord, "@user4001")
    with pytest.raises(NotAllowed):
        rooms.add_member(core, team.cn, "@user3001")
    auditor = register(core, 9, "auditor", "VN")
    with pytest.raises(NotAllowed):
        rooms.add_member(core, team.coord, f"@user{auditor.telegram_id}")
    with pytest.raises(NotFound):
        rooms.add_member(core, team.coord, "@nobody")
    room, removed = rooms.remove_member(core, team.coord, "4001")
    assert (room.members, removed.id) == (3, team.la.id)
    assert rooms.current_room(core, team.la) is None and rooms.my_rooms(core, team.la) == []
    with pytest.raises(Conflict):
        rooms.remove_member(core, team.coord, "4001")
    assert [e["officer"] for e in _events(core, "room.member_removed")] == [team.la.id]


def test_removed_officer_loses_pending_copies(core: Core, team: Team) -> None:
    """Copies queued for an officer but not yet sent are cancelled when they leave the room."""
    from bot import relay

    posted = relay.post(core, team.vn, relay.Incoming(chat_id=3001, message_id=5, kind="text", text="Xe tải"))
    rooms.remove_member(core, team.coord, "@user4001")
    statuses = {d.recipient_id: d.status for d in delivery.deliveries_for(core, "relay", posted.message_id)}
    assert statuses[team.la.id] == delivery.CANCELLED
    assert statuses[team.cn.id] == delivery.PENDING


def test_choose_room_and_membership(core: Core, team: Team) -> None:
    """Officers choose among their own rooms only."""
    other = rooms.create_case(core, team.coord, "LA-VN-2026-0001", "Rhino horn")
    with pytest.raises(NotFound):
        rooms.choose_room(core, team.cn, "LA-VN-2026-0001")
    assert rooms.choose_room(core, team.coord, CASE).current
    assert rooms.choose_room(core, team.coord, other.id).case_tag == "LA-VN-2026-0001"
    assert [r.case_tag for r in rooms.my_rooms(core, team.coord) if r.current] == ["LA-VN-2026-0001"]


def test_visibility_and_dm(core: Core, team: Team) -> None:
    """Officers see room-mates and introduced officers only; staff see everyone; DM rooms are reused."""
    stranger = register(core, 5001, "officer", "CN", "Customs", "李娜")
    register(core, 6001, "auditor", "VN")
    visible = {o.id for o in rooms.visible_officers(core, team.cn)}
    assert visible == {team.coord.id, team.vn.id, team.la.id}
    assert stranger.id in {o.id for o in rooms.visible_officers(core, team.coord)}
    with pytest.raises(NotAllowed):
        rooms.open_dm(core, team.la, "@user5001")
    rooms.introduce(core, team.coord, "@user4001", "@user5001")
    assert stranger.id in {o.id for o in rooms.visible_officers(core, team.la, country="CN")}
    room, other = rooms.open_dm(core, team.la, "@user5001")
    assert (room.kind, room.case_tag, other.id) == ("dm", f"DM-{team.la.id}-{stranger.id}", stranger.id)
    again, _ = rooms.open_dm(core, stranger, "@user4001")
    assert again.id == room.id and again.counterpart == team.la.display_name
    with pytest.raises(InvalidInput):
        rooms.open_dm(core, team.la, "@user4001")
    with pytest.raises(NotAllowed):  # a coordinator cannot act on a DM they are not part of
        rooms.add_member(core, team.coord, "@user2001", room.case_tag)
    rooms.open_dm(core, team.coord, "@user2001")
    with pytest.raises(InvalidInput):  # and a DM keeps its two members
        rooms.add_member(core, team.coord, "@user3001")
    by_country = dict(rooms.countries_of(rooms.visible_officers(core, team.coord)))
    assert by_country == {"CN": 2, "VN": 1, "LA": 1}


def test_handling_codes(core: Core, team: Team) -> None:
    """Staff set H0–H3 on the current room; H3 needs conditions, translated once into every language."""
    with pytest.raises(NotAllowed):
        rooms.set_handling(core, team.vn, "H2")
    with pytest.raises(InvalidInput):
        rooms.set_handling(core, team.coord, "H5")
    with pytest.raises(InvalidInput):
        rooms.set_handling(core, team.coord, "H3")
    calls_before = len(core.translator.calls)  # type: ignore[attr-defined]
    room = rooms.set_handling(core, team.coord, "h3", "Chỉ dành cho tổ điều tra Lào Cai")
    assert room.handling == "H3"
    assert len(core.translator.calls) == calls_before + 1  # type: ignore[attr-defined]
    with core.db.session() as s:
        stored = s.execute(select(Room)).scalar_one()
        assert rooms.room_conditions(core, stored, "zh") == "[zh] Chỉ dành cho tổ điều tra Lào Cai"
        assert rooms.room_conditions(core, stored, "vi") == "Chỉ dành cho tổ điều tra Lào Cai"
    assert _events(core, "room.handling_changed")[-1]["to"] == "H3"
