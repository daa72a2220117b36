"""End to end through the Bot API emulator: the vetting gate as real users would meet it."""

from __future__ import annotations

import io
import json
import logging

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.core import Core
from bot.logs import configure_logging
from bot.models import AuditEvent
from tests.support.e2e import running_bot

pytestmark = pytest.mark.e2e
STRANGER_VI = "Bot này chỉ dành cho cán bộ đã đăng ký."


async def test_invite_register_refuse_revoke(core: Core, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """CLI admin invite → /start → admin /invite → officer registers → stranger refused → revocation."""
    monkeypatch.setenv("LIAISON_DATABASE_URL", core.settings.database_url)
    monkeypatch.setenv("LIAISON_DATA_DIR", str(core.settings.data_dir))
    monkeypatch.setenv("LIAISON_DATA_KEY", core.settings.data_key.get())  # type: ignore[union-attr]
    monkeypatch.setenv("LIAISON_BOT_USERNAME", "liaison_test_bot")
    assert main(["invite", "create", "--role", "admin", "--json"]) == 0
    admin_code = json.loads(capsys.readouterr().out)["code"]

    async with running_bot(core) as run:
        emu = run.emulator
        # the officers' menu is registered once per language, described in that language
        menus = {lang: emu.commands(None, lang) for lang in ("zh", "lo", "vi", "en")}
        rooms_help = {lang: next(c["description"] for c in menu if c["command"] == "rooms")
                      for lang, menu in menus.items()}
        assert rooms_help == {"zh": "您的案件群组", "lo": "ຫ້ອງຄະດີຂອງທ່ານ", "vi": "Các phòng vụ án của bạn",
                              "en": "Your case rooms"}
        assert all("broadcast" not in {c["command"] for c in menu} for menu in menus.values())
        admin = await emu.create_user("Ana", username="ana_admin", language_code="en")
        officer = await emu.create_user("Văn", username="van_customs", language_code="vi")
        stranger = await emu.create_user("Eve", username="eve", language_code="vi")

        await emu.send_text(admin.id, f"/start {admin_code}")
        (welcome,) = await emu.wait_for_messages(admin.id, 1)
        assert "You are registered as administrator" in welcome.body

        await emu.send_text(admin.id, "/invite officer VN Customs lang=vi")
        invite_msg = (await emu.wait_for_messages(admin.id, 2))[-1]
        assert invite_msg.protect_content
        code = invite_msg.raw_text.split("<code>")[1].split("</code>")[0]  # type: ignore[union-attr]

        await emu.send_text(officer.id, f"/start {code}")
        (greeting,) = await emu.wait_for_messages(officer.id, 1)
        assert greeting.body.startswith("Chào mừng Văn")
        # the officer got a menu of their role, in Vietnamese
        assert any(c["command"] == "rooms" for c in emu.commands(scope={"type": "chat", "chat_id": officer.id}))

        await emu.send_text(stranger.id, "xin chào, ai đang ở đây?")
        await emu.send_text(stranger.id, "/officers")
        replies = await emu.wait_for_messages(stranger.id, 2)
        assert [r.body for r in replies] == [STRANGER_VI, STRANGER_VI]
        assert all(not r.reply_markup for r in replies)

        await emu.send_text(admin.id, "/revoke @van_customs")
        assert "can no longer use the bot" in (await emu.wait_for_messages(admin.id, 3))[-1].body
        await emu.send_text(officer.id, "/help")
        after = await emu.wait_for_messages(officer.id, 2)
        assert after[-1].body == STRANGER_VI

    with core.db.session() as s:
        kinds = list(s.execute(select(AuditEvent.kind).order_by(AuditEvent.seq)).scalars())
    assert kinds == ["invite.created", "officer.registered", "invite.created", "officer.registered",
                     "access.refused", "officer.revoked", "access.refused"]


async def test_token_never_logged_at_debug(core: Core) -> None:
    """With DEBUG logging the whole conversation is logged, and the token appears nowhere in it."""
    sink = io.StringIO()
    token = core.settings.telegram_token.get()  # type: ignore[union-attr]
    handler = configure_logging(core.settings.with_overrides(log_level="DEBUG"), stream=sink)
    # our filter sits on the handler; also let httpx's INFO request lines through to prove they are redacted
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    try:
        async with running_bot(core) as run:
            user = await run.emulator.create_user("Eve", language_code="en")
            await run.emulator.send_text(user.id, "/start wrongcode123")
            await run.emulator.wait_for_messages(user.id, 1)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    output = sink.getvalue()
    assert "getUpdates" in output and "sendMessage" in output  # the log really covers the traffic
    assert token not in output
    assert token.split(":")[1] not in output
