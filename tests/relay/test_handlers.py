"""Room and relay handlers through the real application, Bot API calls recorded instead of sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot import delivery
from bot.config import Settings
from bot.core import Core
from bot.i18n import Catalogs
from handlers.lifecycle import services
from handlers.relay import RelayService
from tests.relay.conftest import CASE, Team, register
from tests.support.telegram import RecordingRequest, Users, offline_app
from tests.support.translators import TagTranslator


@pytest.fixture
def core(settings: Settings, translator: TagTranslator, catalogs: Catalogs) -> Core:  # type: ignore[override]
    """The core with per-chat spacing off (these tests are about behaviour, not rates)."""
    c = Core.build(settings.with_overrides(delivery_chat_interval=0.0), translator=translator, catalogs=catalogs)
    yield c  # type: ignore[misc]
    c.close()


@pytest.fixture
async def bot(core: Core) -> AsyncIterator[tuple[Any, RecordingRequest, Users]]:
    """The running application."""
    async with offline_app(core) as running:
        yield running


async def settle(app: Any) -> None:
    """Wait until the delivery worker has sent everything queued."""
    worker = next(s for s in services(app) if isinstance(s, RelayService)).worker
    assert worker is not None
    await worker.wait_idle(10)


def texts_to(request: RecordingRequest, chat_id: int, method: str = "sendMessage") -> list[str]:
    """Return the texts of one method's calls to a chat."""
    return [c.text for c in request.calls if c.method == method and c.chat_id == chat_id]


def _reply_to(call: Any) -> int | None:
    value = call.params.get("reply_parameters")
    if isinstance(value, str):
        value = json.loads(value)
    return value.get("message_id") if value else None


async def test_newcase_add_and_relay(core: Core, bot: Any) -> None:
    """A coordinator opens a room and adds officers; a message reaches the others, translated."""
    app, request, users = bot
    coord = register(core, 11, "coordinator", "VN", "Customs", "Trần Minh")
    register(core, 22, "officer", "CN", "Police", "王伟")
    register(core, 33, "officer", "LA", "Forest Inspection", "ສົມພອນ")
    await app.process_update(users.message(22, "/newcase CN-VN-2026-0042 x", language="zh"))
    assert texts_to(request, 22)[-1] == core.catalogs.get("zh")("You are not allowed to do that.")
    await app.process_update(users.message(11, "/newcase cn-vn-2026-0042 Pangolin scales via Lao Cai"))
    assert texts_to(request, 11)[-1].startswith("Phòng vụ việc CN-VN-2026-0042")
    await app.process_update(users.message(11, "/add @user22"))
    await app.process_update(users.message(11, "/add 33"))
    assert "ສົມພອນ" in texts_to(request, 11)[-1]
    await app.process_update(users.message(22, "明天有一辆卡车经过老街"))
    await settle(app)
    lao = [t for t in texts_to(request, 33) if "[lo] 明天有一辆卡车经过老街" in t]
    viet = [t for t in texts_to(request, 11) if "[vi] 明天有一辆卡车经过老街" in t]
    assert len(lao) == 1 and len(viet) == 1 and "<blockquote expandable>" in lao[0]
    assert coord.telegram_id == 11 and texts_to(request, 22)[-1].startswith("🇱🇦")  # the join notice, no echo


async def test_reply_edit_and_retract(core: Core, team: Team, bot: Any) -> None:
    """A reply on a copy threads for everyone; an edit edits the copies; /retract deletes them."""
    app, request, users = bot
    await app.process_update(users.message(2001, "货车今晚出发", language="zh"))
    await settle(app)
    la_copy = [c for c in request.calls if c.method == "sendMessage" and c.chat_id == 4001 and "货车" in c.text][0]
    la_copy_id = [m for m in delivery.deliveries_for(core, "relay", 1) if m.chat_id == 4001][0].telegram_message_id
    assert la_copy_id is not None and la_copy.text
    await app.process_update(users.message(4001, "ຂອບໃຈ", language="lo", reply_to=la_copy_id))
    await settle(app)
    to_cn = [c for c in request.calls if c.method == "sendMessage" and c.chat_id == 2001 and "ຂອບໃຈ" in c.text]
    assert len(to_cn) == 1 and _reply_to(to_cn[0]) == 1  # CN's own message had id 1
    edited = users.raw({"edited_message": {
        "message_id": 1, "date": 0, "edit_date": 1, "chat": {"id": 2001, "type": "private"},
        "from": {"id": 2001, "is_bot": False, "first_name": "W", "language_code": "zh"}, "text": "货车明晚出发"}})
    await app.process_update(edited)
    await settle(app)
    edits = [c for c in request.calls if c.method == "editMessageText" and c.chat_id == 4001]
    assert len(edits) == 1 and "[lo] 货车明晚出发" in edits[0].text and int(edits[0].params["message_id"]) == la_copy_id
    await app.process_update(users.message(2001, "/retract", language="zh", reply_to=1))
    await settle(app)
    deleted = [(c.chat_id, int(c.params["message_id"])) for c in request.calls if c.method == "deleteMessage"]
    assert (4001, la_copy_id) in deleted and len(deleted) == 3
    assert "撤回" in texts_to(request, 2001)[-1]


async def test_bad_input_gets_clear_answers(core: Core, team: Team, bot: Any) -> None:
    """Stickers, unknown commands, empty marker-only texts and auditors get a localized answer; nothing crashes."""
    app, request, users = bot
    await app.process_update(users.raw({"message": {
        "message_id": 900, "date": 0, "chat": {"id": 3001, "type": "private"},
        "from": {"id": 3001, "is_bot": False, "first_name": "A", "language_code": "vi"},
        "sticker": {"file_id": "S1", "file_unique_id": "s1", "width": 512, "height": 512, "is_animated": False,
                    "is_video": False, "type": "regular"}}}))
    assert texts_to(request, 3001)[-1] == core.catalogs.get("vi")(
        "I cannot relay this kind of message. Send text, photos, documents, voice, video, locations or contacts.")
    await app.process_update(users.message(3001, "/frobnicate", language="vi"))
    assert "/help" in texts_to(request, 3001)[-1]
    await app.process_update(users.message(3001, "#H2", language="vi"))
    assert texts_to(request, 3001)[-1] == core.catalogs.get("vi")("Your message is empty, so nothing was sent.")
    register(core, 9001, "auditor", "CN")
    await app.process_update(users.message(9001, "hello", language="zh"))
    assert texts_to(request, 9001)[-1] == core.catalogs.get("zh")("Auditors cannot post into rooms.")
    loner = register(core, 9002, "officer", "LA")
    await app.process_update(users.message(loner.telegram_id, "ສະບາຍດີ", language="lo"))
    assert "/rooms" in texts_to(request, 9002)[-1] and "ຫ້ອງ" in texts_to(request, 9002)[-1]


async def test_rooms_buttons_and_handling(core: Core, team: Team, bot: Any) -> None:
    """/rooms lists rooms as buttons; pressing one switches; /handling H2 protects the copies."""
    app, request, users = bot
    await app.process_update(users.message(1001, "/newcase LA-VN-2026-0007 Rhino horn"))
    await app.process_update(users.message(1001, "/rooms"))
    listing = [c for c in request.calls if c.method == "sendMessage" and c.chat_id == 1001][-1]
    labels = [b["text"] for b in listing.buttons]
    assert any(label.startswith("▶") and "LA-VN-2026-0007" in label for label in labels)
    target = [b["callback_data"] for b in listing.buttons if CASE in b["text"]][0]
    await app.process_update(users.press(1001, target, language="vi"))
    assert "CN-VN-2026-0042" in [c for c in request.calls if c.method == "editMessageText"][-1].text
    await app.process_update(users.message(1001, "/handling H2"))
    assert "<b>H2</b>" in texts_to(request, 1001)[-1]
    await app.process_update(users.message(3001, "Danh sách nguồn tin", language="vi"))
    await settle(app)
    copy = [c for c in request.calls if c.method == "sendMessage" and c.chat_id == 2001 and "Danh sách" in c.text][0]
    assert copy.params.get("protect_content") in (True, "true", "True")


async def test_dm_picker_by_country_and_agency(core: Core, team: Team, bot: Any) -> None:
    """/dm offers countries, then agencies, then officers the sender may see, and opens the room."""
    app, request, users = bot
    await app.process_update(users.message(4001, "/dm", language="lo"))
    countries = [b["callback_data"] for b in [c for c in request.calls if c.chat_id == 4001][-1].buttons]
    assert countries == ["dm:c:CN", "dm:c:VN"]
    await app.process_update(users.press(4001, "dm:c:CN", language="lo"))
    agencies = [c for c in request.calls if c.method == "editMessageText"][-1].buttons
    assert [b["text"] for b in agencies] == ["Police (1)"]
    await app.process_update(users.press(4001, agencies[0]["callback_data"], language="lo"))
    people = [c for c in request.calls if c.method == "editMessageText"][-1].buttons
    assert [b["text"] for b in people] == ["🇨🇳 王伟"]
    await app.process_update(users.press(4001, people[0]["callback_data"], language="lo"))
    assert "王伟" in [c for c in request.calls if c.method == "editMessageText"][-1].text
    await app.process_update(users.message(4001, "ສະບາຍດີ", language="lo"))
    await settle(app)
    dm_copies = [t for t in texts_to(request, 2001) if "[zh] ສະບາຍດີ" in t]
    assert len(dm_copies) == 1 and texts_to(request, 3001).count(dm_copies[0]) == 0


async def test_files_left_unhashed_are_hashed_at_start(core: Core, team: Team) -> None:
    """A photo stored before a restart without its hash gets one when the bot starts again (via getFile)."""
    from bot import relay

    relay.post(core, team.vn, relay.Incoming(chat_id=3001, message_id=77, kind="photo", file_id="F-1", text="ảnh"))
    assert relay.unhashed_files(core) == [(1, "F-1")]
    async with offline_app(core) as (app, request, _users):
        await settle(app)
        for _ in range(100):
            if any(c.method == "getFile" for c in request.calls):
                break
            await asyncio.sleep(0.02)
    assert [c.params.get("file_id") for c in request.calls if c.method == "getFile"] == ["F-1"]
