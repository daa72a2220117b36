"""/broadcast, its buttons and /acks through the real application (network replaced by a recorder)."""

from __future__ import annotations

from sqlalchemy import func, select

from bot import broadcasts
from bot.core import Core
from bot.models import AuditEvent
from bot.models.broadcasts import Broadcast
from bot.models.relay import Delivery
from tests.broadcasts.conftest import People
from tests.support.telegram import offline_app


def _count(core: Core, model: type, *where: object) -> int:
    with core.db.session() as s:
        return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


async def test_non_coordinator_is_refused_and_audited(core: Core, people: People) -> None:
    """An officer's /broadcast is refused in their language, audited, and starts no guide."""
    officer = people.add("Lan", "VN")
    async with offline_app(core) as (app, request, users):
        await app.process_update(users.message(officer.telegram_id, "/broadcast all Hello", language="vi"))
        (reply,) = request.sent(officer.telegram_id)
        assert reply.text == core.catalogs.get("vi")("You are not allowed to do that.") != "You are not allowed to do that."
    assert _count(core, AuditEvent, AuditEvent.kind == "broadcast.refused", AuditEvent.actor_id == officer.id) == 1
    assert _count(core, Broadcast) == 0


async def test_guided_broadcast_with_buttons_confirms_once(core: Core, people: People) -> None:
    """Scope button → typed text → priority button → preview → Send pressed twice: one fan-out."""
    boss = people.add("Boss", "LA", "coordinator", language="en")
    vn = [people.add(f"Vn {i}", "VN") for i in range(3)]
    people.add("Li", "CN")
    async with offline_app(core) as (app, request, users):
        uid = boss.telegram_id
        await app.process_update(users.message(uid, "/broadcast"))
        ask = request.sent(uid)[-1]
        assert {b["callback_data"] for b in ask.buttons} == {"bc:scope:all", "bc:scope:country:CN",
                                                             "bc:scope:country:LA", "bc:scope:country:VN"}
        await app.process_update(users.press(uid, "bc:scope:country:VN"))
        assert "country:VN" in request.sent(uid, "sendMessage")[-1].text
        await app.process_update(users.message(uid, "Ivory seized at Cau Treo; watch for the second truck"))
        assert {b["callback_data"] for b in request.sent(uid, "sendMessage")[-1].buttons} == {
            "bc:prio:normal", "bc:prio:urgent"}
        await app.process_update(users.press(uid, "bc:prio:urgent"))
        preview = request.sent(uid, "sendMessage")[-1]
        assert "3 officers" in preview.text and "[vi] Ivory seized at Cau Treo" in preview.text
        (bid,) = {int(b["callback_data"].split(":")[2]) for b in preview.buttons}
        request.clear()
        await app.process_update(users.press(uid, f"bc:ok:{bid}"))
        await app.process_update(users.press(uid, f"bc:ok:{bid}"))
        toasts = [c.params.get("text", "") for c in request.sent(method="answerCallbackQuery")]
        assert "being sent to 3 officers" in toasts[0] and "already been sent" in toasts[1]
    assert _count(core, Delivery, Delivery.kind == broadcasts.KIND) == 3
    with core.db.session() as s:
        assert s.get(Broadcast, bid).priority == "urgent"  # type: ignore[union-attr]
    assert {r.officer.id for r in broadcasts.report(core, boss, bid).recipients} == {o.id for o in vn}


async def test_guide_cancel_and_bad_scope_are_answered_not_relayed(core: Core, people: People) -> None:
    """A typed scope that is not one is explained (the text goes nowhere else); /cancel leaves the guide."""
    boss = people.add("Boss", "VN", "coordinator", language="en")
    people.add("Lan", "VN")
    async with offline_app(core) as (app, request, users):
        uid = boss.telegram_id
        await app.process_update(users.message(uid, "/broadcast"))
        request.clear()
        await app.process_update(users.message(uid, "nation:VN"))
        (reply,) = request.sent(uid)
        assert "I do not understand the scope nation:VN" in reply.text
        await app.process_update(users.message(uid, "/cancel"))
        assert "Broadcast cancelled" in request.sent(uid)[-1].text
        await app.process_update(users.message(uid, "/broadcast all"))
        request.clear()
        await app.process_update(users.message(uid, "   "))
        assert "has no text" in request.sent(uid)[-1].text
        await app.process_update(users.press(uid, "bc:prio:normal"))  # no text yet: nothing is drafted
    assert _count(core, Broadcast) == 0


async def test_acknowledge_button_and_acks_command(core: Core, people: People) -> None:
    """The officer's button records the ack (answered in Lao); /acks lists who did and who did not."""
    boss = people.add("Boss", "VN", "coordinator", language="en")
    khamla, souk = people.add("Khamla", "LA"), people.add("Souk", "LA")
    preview = broadcasts.draft(core, boss, "country:LA", "Check the river crossing")
    broadcasts.confirm(core, boss, preview.id)
    async with offline_app(core) as (app, request, users):
        await app.process_update(users.press(khamla.telegram_id, f"bc:ack:{preview.id}", language="lo"))
        (toast,) = request.sent(method="answerCallbackQuery")
        assert toast.params["text"].startswith("✅ ຢືນຢັນແລ້ວເມື່ອ")
        await app.process_update(users.message(boss.telegram_id, "/acks"))
        text = request.sent(boss.telegram_id, "sendMessage")[-1].text
    assert "1 of 2 acknowledged" in text
    assert text.index("Khamla") < text.index("Not yet acknowledged") < text.index("Souk")
