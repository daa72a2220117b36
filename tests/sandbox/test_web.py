"""The sandbox page's API over a running sandbox: state, sending as an officer, buttons, files, live events."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from bot.sandbox.emulator import BotApiEmulator
from bot.sandbox.emulator_limits import RateLimits
from bot.sandbox.runner import Sandbox, SandboxError, SandboxOptions
from bot.sandbox.web import Pane, SandboxWeb, TranslationStatus
from handlers.vetting import LANGUAGE_SET
from tests.sandbox.conftest import EventReader, base_settings

pytestmark = pytest.mark.e2e


def pane_id(state: dict, key: str) -> int:
    """Return the user id of a demo pane by its key."""
    return next(p["id"] for p in state["panes"] if p["key"] == key)


async def test_state_has_one_pane_per_demo_officer_registered_through_invites(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    async with http.get(sandbox.url + "api/state") as resp:
        assert resp.status == 200
        state = await resp.json()
    keys = [p["key"] for p in state["panes"]]
    assert keys == ["zh-officer", "vi-officer", "lo-officer", "coordinator", "auditor"]
    assert [p["lang"] for p in state["panes"]] == ["zh", "vi", "lo", "en", "en"]
    # Each officer really registered: they sent /start CODE and the bot welcomed them in their language.
    zh = state["messages"][str(pane_id(state, "zh-officer"))]
    assert re.fullmatch(r"/start \S+", zh[0]["html"]) and not zh[0]["from_bot"]
    welcome = next(m for m in zh if m["from_bot"])
    assert "陈志强" in welcome["html"] and welcome["lang"] == "zh"
    lao = next(m for m in state["messages"][str(pane_id(state, "lo-officer"))] if m["from_bot"])
    assert lao["lang"] == "lo" and re.search("[\u0e80-\u0eff]", lao["html"])
    vi = next(m for m in state["messages"][str(pane_id(state, "vi-officer"))] if m["from_bot"])
    assert vi["lang"] == "vi"
    assert sandbox.demo is not None and len(sandbox.demo.officers) == 5
    assert {o.role for o in sandbox.demo.officers.values()} == {"officer", "coordinator", "auditor"}


async def test_banner_lists_installed_directions_and_how_to_install_models(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    async with http.get(sandbox.url + "api/state") as resp:
        banner = (await resp.json())["translation"]
    assert "zh→vi" in banner["installed"] and "zh→lo" not in banner["installed"]
    assert set(banner["missing"]) == {"zh→lo", "lo→zh"}
    assert banner["install_command"] == "liaison models install FILE"
    assert "lo→zh" in banner["summary"]


async def test_sending_as_an_officer_reaches_the_bot_and_its_answer_streams_live(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    async with http.get(sandbox.url + "api/state") as resp:
        vi = pane_id(await resp.json(), "vi-officer")
    async with http.get(sandbox.url + "api/events") as stream:
        events = EventReader(stream)
        assert (await asyncio.wait_for(events.next(), 10))[0] == "hello"
        async with http.post(sandbox.url + f"api/panes/{vi}/send", json={"text": "/help"}) as resp:
            assert resp.status == 200
            sent = (await resp.json())["message"]
        assert sent["html"] == "/help" and not sent["from_bot"]
        mine = await asyncio.wait_for(
            events.until(lambda e: e["type"] == "message" and not e["message"]["from_bot"]), 10
        )
        assert mine["pane"] == vi and mine["message"]["message_id"] == sent["message_id"]
        # (other bot messages, e.g. the demo meeting's notices, may come in between)
        answer = await asyncio.wait_for(
            events.until(
                lambda e: (
                    e["type"] == "message"
                    and e["pane"] == vi
                    and e["message"]["from_bot"]
                    and "/language" in e["message"]["html"]
                )
            ),
            10,
        )
    # The bot answered the Vietnamese officer in Vietnamese, as it would on Telegram.
    assert (
        answer["pane"] == vi
        and answer["message"]["lang"] == "vi"
        and "/language" in answer["message"]["html"]
    )


async def test_pressing_a_button_as_an_officer(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(sandbox.url + "api/state") as resp:
        auditor = pane_id(await resp.json(), "auditor")
    async with http.get(sandbox.url + "api/events") as stream:
        events = EventReader(stream)
        await asyncio.wait_for(events.next(), 10)
        await http.post(sandbox.url + f"api/panes/{auditor}/send", json={"text": "/language"})
        menu = await asyncio.wait_for(
            events.until(
                lambda e: e["type"] == "message" and e["pane"] == auditor and e["message"]["keyboard"]
            ),
            10,
        )
        buttons = [b for row in menu["message"]["keyboard"] for b in row]
        assert {b["data"] for b in buttons} >= {"lang:zh", "lang:lo", "lang:vi", "lang:en"}
        async with http.post(
            sandbox.url + f"api/panes/{auditor}/press",
            json={"message_id": menu["message"]["message_id"], "data": "lang:vi"},
        ) as resp:
            assert resp.status == 200 and (await resp.json())["callback_query_id"]
        expected = sandbox._core.catalogs.get("vi")(LANGUAGE_SET)
        confirmation = await asyncio.wait_for(
            events.until(
                lambda e: (
                    e["type"] == "message" and e["message"]["from_bot"] and expected in e["message"]["html"]
                )
            ),
            10,
        )
    assert confirmation["pane"] == auditor and confirmation["message"]["lang"] == "vi"


async def test_download_returns_the_file_with_its_name(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    emulator = sandbox._emulator
    uid = sandbox.demo.user_ids["lo-officer"]
    record = await emulator.send_document(uid, "ລາຍງານ,report\n".encode(), "ລາຍງານ.csv", mime_type="text/csv")
    assert record.file is not None
    async with http.get(sandbox.url + "api/state") as resp:
        messages = (await resp.json())["messages"][str(uid)]
    document = next(m["document"] for m in messages if m["document"])
    assert document["name"] == "ລາຍງານ.csv" and document["size"] == len("ລາຍງານ,report\n".encode())
    async with http.get(
        sandbox.url + f"api/files/{document['file_id']}", params={"name": document["name"]}
    ) as resp:
        assert resp.status == 200
        assert await resp.read() == "ລາຍງານ,report\n".encode()
        disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''%E0%BA%A5" in disposition
    async with http.get(sandbox.url + "api/files/no-such-file") as resp:
        assert resp.status == 404


async def test_bad_requests_are_refused_with_a_reason(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    zh = sandbox.demo.user_ids["zh-officer"]
    async with http.post(
        sandbox.url + f"api/panes/{zh}/send",
        data="text=hi",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ) as resp:
        assert resp.status == 415  # only JSON: a foreign page cannot post without a CORS preflight
    async with http.post(sandbox.url + f"api/panes/{zh}/send", json={"text": "   "}) as resp:
        assert resp.status == 400 and "empty" in (await resp.json())["error"]
    async with http.post(sandbox.url + "api/panes/42/send", json={"text": "hi"}) as resp:
        assert resp.status == 404
    async with http.post(
        sandbox.url + f"api/panes/{zh}/press", json={"message_id": 9999, "data": "x"}
    ) as resp:
        assert resp.status == 502 and "no bot message 9999" in (await resp.json())["error"]
    async with http.get(sandbox.url) as resp:
        page = await resp.text()
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert '<main id="panes"' in page and "http" not in page.split("<body>")[0].replace("http-equiv", "")


async def test_page_attaches_to_a_running_emulator(tmp_path, http: aiohttp.ClientSession) -> None:
    async with BotApiEmulator(
        "1234567890:EMULATOR-attach-token-abcdefgh", rate_limits=RateLimits.unlimited()
    ) as emu:
        user = await emu.create_user("Bounmy", language_code="lo")
        await emu.send_text(user.id, "ສະບາຍດີ")
        box = Sandbox(base_settings(tmp_path), SandboxOptions(port=0, emulator_url=emu.base_url))
        await box.start()
        try:
            async with http.get(box.url + "api/state") as resp:
                state = await resp.json()
            assert [(p["id"], p["lang"]) for p in state["panes"]] == [(user.id, "lo")]
            assert state["messages"][str(user.id)][0]["lang"] == "lo"
            assert state["translation"]["known"] is False
            async with http.get(box.url + "api/events") as stream:
                events = EventReader(stream)
                await asyncio.wait_for(events.next(), 10)
                await emu.create_user("Mai", language_code="vi")
                assert (await asyncio.wait_for(events.until(lambda e: True), 10)) == {"type": "panes"}
        finally:
            await box.stop()


async def test_attaching_to_nothing_fails_with_a_clear_message(tmp_path) -> None:
    box = Sandbox(base_settings(tmp_path), SandboxOptions(port=0, emulator_url="http://127.0.0.1:9"))
    with pytest.raises(SandboxError, match="cannot attach"):
        await box.start()


def test_events_from_the_emulator_become_page_updates() -> None:
    panes = {7: Pane(id=7, key="lo", name="Somphone", lang="lo")}
    web = SandboxWeb(link=None, panes=None)  # type: ignore[arg-type]
    message = {
        "message_id": 3,
        "chat_id": 7,
        "from_bot": True,
        "kind": "text",
        "html": "<b>ສະບາຍດີ</b><script>alert(1)</script>",
        "reply_markup": None,
    }
    update = web._translate_event({"type": "bot_message", "chat_id": 7, "message": message}, panes)
    assert update["pane"] == 7 and update["message"]["html"] == "<b>ສະບາຍດີ</b>alert(1)"
    deleted = web._translate_event({"type": "bot_delete", "chat_id": 7, "message": message}, panes)
    assert deleted["message"]["deleted"] is True
    toast = web._translate_event(
        {"type": "callback_answer", "chat_id": 7, "callback": {"text": "ແລ້ວ"}}, panes
    )
    assert toast == {"type": "toast", "pane": 7, "text": "ແລ້ວ"}
    assert web._translate_event({"type": "bot_message", "chat_id": 8, "message": message}, panes) is None
    assert web._translate_event({"type": "chat_action", "chat_id": 7}, panes) is None


def test_translation_status_banner_texts() -> None:
    none = TranslationStatus.from_directions(set()).to_dict()
    assert none["installed"] == [] and len(none["missing"]) == 12 and "untranslated" in none["summary"]
    every = {(a, b) for a in ["zh", "lo", "vi", "en"] for b in ["zh", "lo", "vi", "en"] if a != b}
    assert TranslationStatus.from_directions(every).to_dict()["missing"] == []


def _service(module: str, name: str) -> bool:
    """Tell whether an area's service function exists in this build."""
    import importlib

    try:
        return callable(getattr(importlib.import_module(module), name, None))
    except ImportError:
        return False


async def test_demo_sets_up_the_case_room_and_the_meeting_when_their_areas_exist(sandbox: Sandbox) -> None:
    from bot.sandbox.demo import CASE_TAG

    demo = sandbox.demo
    core = sandbox._core
    if _service("bot.rooms", "my_rooms"):
        from bot.rooms import my_rooms

        assert "case room" not in demo.skipped, demo.skipped
        for key in ("zh-officer", "vi-officer", "lo-officer", "coordinator"):
            assert CASE_TAG in [
                r.case_tag for r in await asyncio.to_thread(my_rooms, core, demo.officers[key])
            ]
    else:
        assert "case room" in demo.skipped
    if _service("bot.meetings", "record_meetings"):
        from sqlalchemy import func, select

        from bot.models.meetings import ActionItem

        assert "meeting" not in demo.skipped, demo.skipped
        with core.db.session() as s:
            assert s.execute(select(func.count()).select_from(ActionItem)).scalar_one() == 4
    else:
        assert "meeting" in demo.skipped


async def test_without_the_demo_the_page_shows_the_emulator_users(
    tmp_path, http: aiohttp.ClientSession
) -> None:
    from tests.support.translators import TagTranslator

    box = Sandbox(
        base_settings(tmp_path / "home"),
        SandboxOptions(data_dir=tmp_path / "d", port=0, seed=False, translator=TagTranslator()),
    )
    await box.start()
    try:
        user = await box._emulator.create_user("Somphone", language_code="lo")
        async with http.get(box.url + "api/state") as resp:
            state = await resp.json()
        assert [p["id"] for p in state["panes"]] == [user.id]
        assert state["translation"]["missing"] == []
    finally:
        await box.stop()


async def test_a_kept_data_directory_starts_again_with_the_same_officers(
    tmp_path, http: aiohttp.ClientSession
) -> None:
    from tests.support.translators import TagTranslator

    def options() -> SandboxOptions:
        return SandboxOptions(data_dir=tmp_path / "kept", port=0, translator=TagTranslator())

    first = Sandbox(base_settings(tmp_path / "home"), options())
    await first.start()
    ids = {k: o.id for k, o in first.demo.officers.items()}
    await first.stop()
    assert (tmp_path / "kept" / "liaison.db").exists()
    again = Sandbox(base_settings(tmp_path / "home"), options())
    await again.start()
    try:
        assert {k: o.id for k, o in again.demo.officers.items()} == ids  # nobody registered twice
        # The rooms, the relay (message ids start again in the new emulator) and the meeting still work.
        assert again.demo.skipped == {}, again.demo.skipped
        async with http.get(again.url + "api/state") as resp:
            state = await resp.json()
        zh = state["messages"][str(again.demo.user_ids["zh-officer"])]
        # (what the bot still owed from the first run may arrive first: it is delivered, not lost)
        assert next(m["html"] for m in zh if not m["from_bot"]) == "/start"
        assert any("陈志强" in m["html"] for m in zh if m["from_bot"])
        # Message ids continue those of the first run, as Telegram never reuses them in a chat.
        assert min(m["message_id"] for m in zh) > 2
    finally:
        await again.stop()


async def test_replies_and_files_are_sent_as_the_officer(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    emulator = sandbox._emulator
    vi = sandbox.demo.user_ids["vi-officer"]
    welcome = next(m for m in emulator.messages(vi) if "Trần Văn Hùng" in m.body)
    async with http.post(
        sandbox.url + f"api/panes/{vi}/send", json={"text": "Cảm ơn", "reply_to": welcome.message_id}
    ) as resp:
        assert resp.status == 200 and (await resp.json())["message"]["reply_to"] == welcome.message_id
    assert emulator.message(vi, welcome.message_id + 0).message_id == welcome.message_id
    sent = [m for m in emulator.messages(vi, include_user=True) if m.body == "Cảm ơn"]
    assert sent and sent[0].reply_to_message_id == welcome.message_id  # the bot sees a Telegram reply

    form = aiohttp.FormData()
    form.add_field("file", "biên bản\n".encode(), filename="biên-bản.txt", content_type="text/plain")
    form.add_field("caption", "Biên bản thu giữ")
    async with http.post(sandbox.url + f"api/panes/{vi}/upload", data=form) as resp:
        assert resp.status == 403  # without the header a page of another origin could post this form
    form = aiohttp.FormData()
    form.add_field("file", "biên bản\n".encode(), filename="biên-bản.txt", content_type="text/plain")
    form.add_field("caption", "Biên bản thu giữ")
    async with http.post(
        sandbox.url + f"api/panes/{vi}/upload", data=form, headers={"X-Sandbox": "1"}
    ) as resp:
        assert resp.status == 200
        message = (await resp.json())["message"]
    assert message["document"]["name"] == "biên-bản.txt" and "Biên bản thu giữ" in message["html"]
    record = emulator.message(vi, message["message_id"])
    assert record.kind == "document" and emulator.file_bytes(record.file.file_id) == "biên bản\n".encode()
