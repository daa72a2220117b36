"""The vetting gate: invites, registration, throttling, revocation, strangers — services and handlers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import vetting
from bot.audit import GENESIS_HASH, chain_hash, event_content
from bot.core import Core
from bot.errors import Conflict, InvalidInput, NotAllowed
from bot.models import AuditEvent, Invite, Officer
from tests.support.telegram import offline_app


def _events(core: Core) -> list[AuditEvent]:
    with core.db.session() as s:
        return list(s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars())


def _register(core: Core, telegram_id: int, role: str = "officer", country: str | None = "VN", **kw):  # type: ignore[no-untyped-def]
    inv = vetting.create_invite(core, None, role=role, country=country, **kw)
    return vetting.register(core, telegram_id=telegram_id, code=inv.code, display_name=f"U{telegram_id}",
                            username=f"user{telegram_id}")


def test_invite_is_single_use_and_stored_as_hash(core: Core) -> None:
    """A code registers once; only its hash is in the database."""
    inv = vetting.create_invite(core, None, role="officer", country="LA", agency="Forest Inspection")
    officer = vetting.register(core, telegram_id=11, code=inv.code, display_name="Khamla", username="khamla")
    assert (officer.role, officer.country, officer.language, officer.agency_name) == (
        "officer", "LA", "lo", "Forest Inspection")
    assert officer.timezone == "Asia/Vientiane"
    with core.db.session() as s:
        stored = s.execute(select(Invite)).scalar_one()
        assert stored.code_hash != inv.code and inv.code not in stored.code_hash
        assert stored.used_by_id == officer.id
    with pytest.raises(vetting.InvalidCode):
        vetting.register(core, telegram_id=12, code=inv.code, display_name="X", username=None)
    assert inv.link("liaison_bot") == f"https://t.me/liaison_bot?start={inv.code}"


def test_expired_code_is_refused(core: Core) -> None:
    """An invite past its expiry does not register."""
    inv = vetting.create_invite(core, None, role="officer", country="CN", lifetime=timedelta(minutes=1))
    with core.db.transaction() as s:
        s.execute(select(Invite)).scalar_one().expires_at = core.clock.now() - timedelta(seconds=1)
    with pytest.raises(vetting.InvalidCode):
        vetting.register(core, telegram_id=5, code=inv.code, display_name="X", username=None)
    kinds = [e.kind for e in _events(core)]
    assert kinds == ["invite.created", "registration.refused"]
    assert json.loads(_events(core)[-1].data)["reason"] == "expired"


def test_brute_force_is_throttled(core: Core) -> None:
    """After five wrong codes, even the right code is refused for a while."""
    inv = vetting.create_invite(core, None, role="officer", country="VN")
    for i in range(vetting.MAX_FAILED_ATTEMPTS):
        with pytest.raises(vetting.InvalidCode):
            vetting.register(core, telegram_id=99, code=f"wrongcode{i}", display_name="X", username=None)
    with pytest.raises(vetting.Throttled):
        vetting.register(core, telegram_id=99, code=inv.code, display_name="X", username=None)
    # another account is not affected
    assert vetting.register(core, telegram_id=100, code=inv.code, display_name="Y", username=None).active
    assert [e.kind for e in _events(core)].count("registration.throttled") == 1


def test_coordinator_rules(core: Core) -> None:
    """Coordinators invite and revoke within their own country only; officers cannot at all."""
    coord = _register(core, 1, role="coordinator", country="VN", agency="Customs")
    officer = _register(core, 2, role="officer", country="VN")
    lao = _register(core, 3, role="officer", country="LA")
    with pytest.raises(NotAllowed):
        vetting.create_invite(core, coord, role="officer", country="CN")
    with pytest.raises(NotAllowed):
        vetting.create_invite(core, coord, role="admin")
    with pytest.raises(NotAllowed):
        vetting.create_invite(core, officer, role="officer", country="VN")
    made = vetting.create_invite(core, coord, role="officer")
    assert (made.country, made.agency, made.language) == ("VN", "Customs", "vi")
    with pytest.raises(NotAllowed):
        vetting.revoke(core, coord, "@user3")
    with pytest.raises(NotAllowed):
        vetting.revoke(core, officer, "@user2")
    assert not vetting.revoke(core, coord, "@user2").active
    with pytest.raises(Conflict):
        vetting.revoke(core, None, "2")
    assert vetting.active_officer(core, 2) is None and vetting.active_officer(core, 3) == lao


def test_bad_inputs_have_clear_errors(core: Core) -> None:
    """Malformed role, country, language and durations raise InvalidInput with the value named."""
    for kwargs in ({"role": "chief"}, {"role": "officer", "country": "TH"}, {"role": "officer", "country": "VN",
                                                                             "language": "fr"}):
        with pytest.raises(InvalidInput) as err:
            vetting.create_invite(core, None, **kwargs)  # type: ignore[arg-type]
        assert "Unknown" in str(err.value)
    with pytest.raises(InvalidInput):
        vetting.create_invite(core, None, role="officer")  # no country
    for text in ("", "5y", "0h", "45d"):
        with pytest.raises(InvalidInput):
            vetting.parse_duration(text)
    assert vetting.parse_duration("72h") == timedelta(hours=72)


def test_audit_chain_links_every_event(core: Core) -> None:
    """Each event's hash covers the previous hash and its own canonical content."""
    _register(core, 7, role="admin", country=None)
    vetting.revoke(core, None, "7")
    prev = GENESIS_HASH
    events = _events(core)
    assert [e.kind for e in events] == ["invite.created", "officer.registered", "officer.revoked"]
    for e in events:
        assert e.prev_hash == prev
        assert e.hash == chain_hash(prev, event_content(e.seq, e.at, e.kind, e.actor_id, e.case_tag, e.data))
        prev = e.hash


async def test_stranger_gets_one_short_reply_and_nothing_else(core: Core) -> None:
    """A stranger's messages, commands and buttons get only the localized refusal."""
    async with offline_app(core) as (app, request, users):
        for text in ("hello", "/help", "/officers", "/start", "/start notavalidcode"):
            request.clear()
            await app.process_update(users.message(500, text, language="vi"))
            sent = request.sent(500)
            assert len(sent) == 1, text
            if text == "/start notavalidcode":
                assert "Mã mời này không hợp lệ" in sent[0].text
            else:
                assert sent[0].text == "Bot này chỉ dành cho cán bộ đã đăng ký."
            assert not sent[0].buttons
        request.clear()
        await app.process_update(users.press(500, "lang:zh", language="zh"))
        answers = request.sent(method="answerCallbackQuery")
        assert answers and answers[0].params["text"] == "本机器人仅供已注册的官员使用。"
    assert [e.kind for e in _events(core)].count("access.refused") == 1  # once per hour per account


async def test_registration_invite_and_revocation_through_handlers(core: Core) -> None:
    """/start CODE registers; an admin's /invite makes a working code; /revoke cuts the officer off."""
    admin_code = vetting.create_invite(core, None, role="admin").code
    async with offline_app(core) as (app, request, users):
        await app.process_update(users.message(1, f"/start {admin_code}", language="en"))
        assert "You are registered as administrator" in request.sent(1)[-1].text
        request.clear()
        await app.process_update(users.message(1, "/invite officer VN Customs Department lang=vi expires=24h"))
        reply = request.sent(1)[-1]
        assert reply.params.get("protect_content") is True
        code = reply.text.split("<code>")[1].split("</code>")[0]
        assert f"https://t.me/liaison_test_bot?start={code}" in reply.text
        await app.process_update(users.message(2, f"/start {code}", language="vi", username="vanan"))
        assert "Chào mừng" in request.sent(2)[-1].text
        request.clear()
        await app.process_update(users.message(2, "/help", language="vi"))
        assert "/rooms" in request.sent(2)[-1].text and "/invite" not in request.sent(2)[-1].text
        await app.process_update(users.message(1, "/revoke @vanan"))
        assert "can no longer use the bot" in request.sent(1)[-1].text
        request.clear()
        await app.process_update(users.message(2, "/help", language="vi"))
        assert [c.text for c in request.sent(2)] == ["Bot này chỉ dành cho cán bộ đã đăng ký."]
    kinds = [e.kind for e in _events(core)]
    assert kinds[:5] == ["invite.created", "officer.registered", "invite.created", "officer.registered",
                         "officer.revoked"]


async def test_redelivered_update_is_ignored(core: Core) -> None:
    """The same update_id twice (redelivery after a restart) is handled once."""
    code = vetting.create_invite(core, None, role="officer", country="CN").code
    async with offline_app(core) as (app, request, users):
        update = users.message(3, f"/start {code}", language="zh")
        await app.process_update(update)
        await app.process_update(update)
        assert len(request.sent(3)) == 1
        assert "欢迎" in request.sent(3)[0].text


async def test_language_and_errors_are_localized(core: Core) -> None:
    """/language switches texts; a permission error answers in the officer's language."""
    _register(core, 4, role="officer", country="LA")
    async with offline_app(core) as (app, request, users):
        await app.process_update(users.message(4, "/invite officer LA", language="en"))
        assert request.sent(4)[-1].text == "ທ່ານບໍ່ໄດ້ຮັບອະນຸຍາດໃຫ້ເຮັດສິ່ງນີ້."
        await app.process_update(users.message(4, "/language"))
        assert len(request.sent(4)[-1].buttons) == 4
        await app.process_update(users.press(4, "lang:vi"))
        assert request.sent(4, "sendMessage")[-1].text == "Ngôn ngữ của bạn bây giờ là tiếng Việt."
        await app.process_update(users.message(4, "/nosuchcommand"))
        assert "Tôi không biết lệnh này" in request.sent(4)[-1].text
    with core.db.session() as s:
        assert s.execute(select(Officer.language).where(Officer.telegram_id == 4)).scalar_one() == "vi"
