"""The Bot API emulator, driven by the real python-telegram-bot (Bot and Application in polling mode)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
)
from telegram import InputFile, ReplyParameters, Update
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes
from telegram.ext import MessageHandler, filters
from telegram.request import HTTPXRequest

from bot.sandbox import BotApiEmulator, ControlError, EmulatorClient, RateLimits
from bot.sandbox.emulator_html import EntityParseError, entity_text, parse_html, render_html, utf16_len

TOKEN = "1234567890:EMULATOR-test-token-abcdefghijklmnop"
ROOT = Path(__file__).resolve().parents[1]


def png(width: int, height: int) -> bytes:
    """Return a valid PNG image of the given size."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + b"\x10\x80\x20" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    """Run an emulator without rate limits on a free port."""
    emulator = BotApiEmulator(TOKEN, rate_limits=RateLimits.unlimited())
    await emulator.start()
    yield emulator
    await emulator.stop()


def make_bot(emu: BotApiEmulator, **request: float) -> Bot:
    """Return a real telegram.Bot pointed at the emulator."""
    kwargs = {"request": HTTPXRequest(**request)} if request else {}
    return Bot(TOKEN, base_url=f"{emu.base_url}/bot", base_file_url=f"{emu.base_url}/file/bot", **kwargs)


@pytest.fixture
async def bot(emu: BotApiEmulator) -> AsyncIterator[Bot]:
    """Return an initialized telegram.Bot talking to the emulator."""
    async with make_bot(emu) as telegram_bot:
        yield telegram_bot


@contextlib.asynccontextmanager
async def polling_app(emu: BotApiEmulator, *handlers: object) -> AsyncIterator[Application]:
    """Run a real Application in polling mode against the emulator with the given handlers."""
    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(f"{emu.base_url}/bot")
        .base_file_url(f"{emu.base_url}/file/bot")
        .build()
    )
    for handler in handlers:
        app.add_handler(handler)  # type: ignore[arg-type]
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


async def raw_call(
    emu: BotApiEmulator, method: str, token: str = TOKEN, **kwargs: object
) -> tuple[int, dict]:
    """Call the Bot API with aiohttp directly; return (status, JSON body)."""
    http_method = str(kwargs.pop("http_method", "POST"))
    async with (
        aiohttp.ClientSession() as session,
        session.request(http_method, f"{emu.base_url}/bot{token}/{method}", **kwargs) as response,  # type: ignore[arg-type]
    ):
        return response.status, await response.json()


# --------------------------------------------------------------------------- wire format


async def test_get_me_and_error_shapes(emu: BotApiEmulator, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (1234567890, "liaison_bot", True)
    assert await raw_call(emu, "getMe", token="1:wrong") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert await raw_call(emu, "noSuchMethod") == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    # Method names are case-insensitive on Telegram too.
    status, body = await raw_call(emu, "getme", http_method="GET")
    assert status == 200 and body["ok"] is True and body["result"]["username"] == "liaison_bot"


async def test_every_request_encoding_is_understood(emu: BotApiEmulator) -> None:
    user = await emu.create_user("Ana", started=True)
    keyboard = {"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]}
    await raw_call(emu, "sendMessage", json={"chat_id": user.id, "text": "json", "reply_markup": keyboard})
    await raw_call(
        emu,
        "sendMessage",
        data={"chat_id": str(user.id), "text": "form", "reply_markup": json.dumps(keyboard)},
    )
    await raw_call(emu, "sendMessage", params={"chat_id": user.id, "text": "query"}, http_method="GET")
    form = aiohttp.FormData()
    form.add_field("chat_id", str(user.id))
    form.add_field("caption", "multipart <b>bold</b>")
    form.add_field("parse_mode", "HTML")
    form.add_field("reply_markup", json.dumps(keyboard))
    form.add_field("document", b"%PDF-1.4 test", filename="report.pdf", content_type="application/pdf")
    status, body = await raw_call(emu, "sendDocument", data=form)
    assert status == 200, body
    sent = emu.messages(user.id)
    assert [m.body for m in sent] == ["json", "form", "query", "multipart bold"]
    assert [m.reply_markup for m in sent] == [keyboard, keyboard, None, keyboard]
    assert sent[3].file is not None and sent[3].file.file_name == "report.pdf"
    assert sent[3].entities == [{"type": "bold", "offset": 10, "length": 4}]


# --------------------------------------------------------------------------- updates and polling


async def test_application_routes_commands_in_polling_mode(emu: BotApiEmulator) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Echo the deep-link code."""
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"code={context.args[0] if context.args else '-'}")

    async def text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Echo plain texts."""
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"echo:{update.effective_message.text}")

    user = await emu.create_user("Li", language_code="zh")
    async with polling_app(
        emu, CommandHandler("start", start), MessageHandler(filters.TEXT & ~filters.COMMAND, text)
    ):
        sent = await emu.send_text(user.id, "/start INV-42")
        assert sent.entities == [{"type": "bot_command", "offset": 0, "length": 6}]
        await emu.send_text(user.id, "你好")
        replies = await emu.wait_for_messages(user.id, 2)
    assert [r.text for r in replies] == ["code=INV-42", "echo:你好"]
    assert emu.meter.calls["deleteWebhook"] == 1 and emu.meter.calls["getUpdates"] >= 1
    assert emu.pending_updates() == []  # the Application confirmed what it handled


async def test_long_poll_returns_as_soon_as_an_update_arrives(emu: BotApiEmulator, bot: Bot) -> None:
    user = await emu.create_user("Vu")
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=10, read_timeout=15))
    await asyncio.sleep(0.2)
    assert not poll.done()
    await emu.send_text(user.id, "xin chào")
    updates = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 1.5
    assert updates[0].message is not None and updates[0].message.text == "xin chào"
    assert updates[0].message.from_user is not None and updates[0].message.from_user.id == user.id


async def test_unconfirmed_updates_are_delivered_again(emu: BotApiEmulator, bot: Bot) -> None:
    user = await emu.create_user("Khamla")
    for text in ("one", "two", "three"):
        await emu.send_text(user.id, text)
    first = await bot.get_updates(limit=2)
    again = await bot.get_updates()
    assert [u.message.text for u in first] == ["one", "two"]  # type: ignore[union-attr]
    assert [u.update_id for u in again] == [u.update_id for u in first] + [first[-1].update_id + 1]
    await bot.get_updates(offset=first[-1].update_id + 1, timeout=0)  # confirms one and two
    # A bot that restarts (a new process, no memory of offsets) gets what was never confirmed.
    async with make_bot(emu) as restarted:
        redelivered = await restarted.get_updates()
    assert [u.message.text for u in redelivered] == ["three"]  # type: ignore[union-attr]


async def test_a_second_poller_terminates_the_first_with_conflict(emu: BotApiEmulator, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5, read_timeout=10))
    await asyncio.sleep(0.1)
    async with make_bot(emu) as other:
        assert await other.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="(?i)terminated by other getUpdates request"):
        await asyncio.wait_for(first, 2)


async def test_stop_ends_pending_long_polls_at_once(emu: BotApiEmulator, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30, read_timeout=40))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await emu.stop()
    with contextlib.suppress(NetworkError):
        assert await asyncio.wait_for(poll, 3) == ()
    assert time.monotonic() - started < 2.5


# ------------------------------------------------------------------ keyboards, replies, edits, deletions


async def test_button_press_reaches_the_bot_and_its_answer_is_recorded(emu: BotApiEmulator) -> None:
    async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Offer two rooms."""
        keyboard = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("Room A", callback_data="room:A"),
                    InlineKeyboardButton("Room B", callback_data="room:B"),
                ]
            ]
        )
        assert update.effective_message is not None
        await update.effective_message.reply_text("Choose a room", reply_markup=keyboard)

    async def chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answer the press and show the choice."""
        query = update.callback_query
        assert query is not None and query.data is not None
        await query.answer(f"Switched to {query.data}", show_alert=True)
        await query.edit_message_text(f"Current room: {query.data.split(':')[1]}")

    user = await emu.create_user("Mai")
    async with polling_app(emu, CommandHandler("rooms", menu), CallbackQueryHandler(chosen)):
        await emu.send_text(user.id, "/rooms")
        (keyboard_message,) = await emu.wait_for_messages(user.id, 1)
        assert keyboard_message.button_texts == ["Room A", "Room B"]
        callback_id = await emu.press_button(user.id, keyboard_message.message_id, button_text="Room B")
        answer = await emu.wait_for_callback_answer(callback_id)
        await emu.wait_for(lambda: keyboard_message.edited)
    assert (answer.data, answer.text, answer.show_alert) == ("room:B", "Switched to room:B", True)
    assert keyboard_message.text == "Current room: B"
    assert keyboard_message.reply_markup is None  # editMessageText without reply_markup drops the keyboard
    assert keyboard_message.history[0]["text"] == "Choose a room"
    with pytest.raises(ControlError, match="(?i)no button"):
        await emu.press_button(user.id, keyboard_message.message_id, "room:A")


async def test_callback_data_longer_than_64_bytes_is_refused(emu: BotApiEmulator, bot: Bot) -> None:
    user = await emu.create_user("Mai", started=True)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 33)]])
    with pytest.raises(BadRequest, match="(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(user.id, "menu", reply_markup=too_long)
    fits = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 32)]])
    await bot.send_message(user.id, "menu", reply_markup=fits)


async def test_replies_in_both_directions(emu: BotApiEmulator, bot: Bot) -> None:
    user = await emu.create_user("Somchai")
    question = await emu.send_text(user.id, "where is the shipment?")
    answer = await bot.send_message(
        user.id, "at the border", reply_parameters=ReplyParameters(question.message_id)
    )
    assert answer.reply_to_message is not None and answer.reply_to_message.text == "where is the shipment?"
    assert emu.message(user.id, answer.message_id).reply_to_message_id == question.message_id
    await emu.send_text(user.id, "thanks", reply_to=answer.message_id)
    updates = await bot.get_updates()
    reply = updates[-1].message
    assert reply is not None and reply.reply_to_message is not None
    assert reply.reply_to_message.message_id == answer.message_id
    assert reply.reply_to_message.from_user is not None and reply.reply_to_message.from_user.is_bot

    with pytest.raises(BadRequest, match="(?i)message to be replied not found"):
        await bot.send_message(user.id, "?", reply_to_message_id=999)
    sent = await bot.send_message(
        user.id, "anyway", reply_parameters=ReplyParameters(999, allow_sending_without_reply=True)
    )
    assert sent.reply_to_message is None


async def test_edits_deletions_and_their_errors(emu: BotApiEmulator, bot: Bot) -> None:
    user = await emu.create_user("Huong", started=True)
    sent = await bot.send_message(user.id, "draft", protect_content=True, disable_notification=True)
    await bot.edit_message_text("final", chat_id=user.id, message_id=sent.message_id)
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_text("final", chat_id=user.id, message_id=sent.message_id)
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=user.id, message_id=77)
    record = emu.message(user.id, sent.message_id)
    assert (record.text, [v["text"] for v in record.versions]) == ("final", ["draft", "final"])
    assert record.protect_content and record.disable_notification and record.edit_date

    assert await bot.delete_message(user.id, sent.message_id) is True
    assert record.deleted
    with pytest.raises(BadRequest, match="(?i)message to delete not found"):
        await bot.delete_message(user.id, sent.message_id)
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_text("late", chat_id=user.id, message_id=sent.message_id)

    old = await bot.send_message(user.id, "old news")
    emu.set_message_date(user.id, old.message_id, int(time.time()) - 49 * 3600)
    with pytest.raises(BadRequest, match="(?i)message can't be deleted"):
        await bot.delete_message(user.id, old.message_id)

    mine = await emu.send_text(user.id, "typo")
    with pytest.raises(BadRequest, match="(?i)message can't be edited"):
        await bot.edit_message_text("fixed", chat_id=user.id, message_id=mine.message_id)
    await emu.edit_text(user.id, mine.message_id, "no typo")
    edited = [u for u in await bot.get_updates() if u.edited_message]
    assert edited[-1].edited_message is not None and edited[-1].edited_message.text == "no typo"
    assert edited[-1].edited_message.message_id == mine.message_id


async def test_keyboard_and_caption_edits(emu: BotApiEmulator, bot: Bot) -> None:
    user = await emu.create_user("Bounmy", started=True)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Ack", callback_data="ack")]])
    sent = await bot.send_message(user.id, "alert", reply_markup=keyboard)
    await bot.edit_message_reply_markup(user.id, sent.message_id, reply_markup=None)
    assert emu.message(user.id, sent.message_id).reply_markup is None
    with pytest.raises(BadRequest, match="(?i)there is no caption"):
        await bot.edit_message_caption(user.id, sent.message_id, caption="x")
    photo = await bot.send_photo(user.id, png(40, 30), caption="evidence")
    await bot.edit_message_caption(
        user.id, photo.message_id, caption="<i>evidence</i> #ivory", parse_mode="HTML"
    )
    record = emu.message(user.id, photo.message_id)
    assert record.caption == "evidence #ivory" and record.html == "<i>evidence</i> #ivory"
    assert {"type": "hashtag", "offset": 9, "length": 6} in record.entities
    assert record.history[0]["caption"] == "evidence"


# --------------------------------------------------------------------------- Telegram's text rules


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<script>x</script>", 'Unsupported start tag "script" at byte offset 0'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("Tom & Jerry", 'Unescaped "&" at byte offset 4'),
    ],
)
async def test_html_parse_errors(emu: BotApiEmulator, bot: Bot, text: str, error: str) -> None:
    user = await emu.create_user("Le", started=True)
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(user.id, text, parse_mode="HTML")
    assert caught.value.message.lower().startswith(f"can't parse entities: {error}".lower())
    assert emu.messages(user.id) == []


async def test_allowed_html_becomes_entities(emu: BotApiEmulator, bot: Bot) -> None:
    user = await emu.create_user("Le", started=True)
    html_text = (
        "<b>CN-VN</b> <i>象牙</i> <u>u</u> <s>s</s> <tg-spoiler>secret</tg-spoiler> "
        '<a href="https://example.org">link</a> <code>c</code> <pre><code class="language-py">p</code></pre>'
        "<blockquote expandable>original: ສະບາຍດີ 🐘</blockquote> &lt;tag&gt; &amp;"
    )
    sent = await bot.send_message(user.id, html_text, parse_mode="HTML")
    types = [entity.type for entity in sent.entities]
    assert types == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "text_link",
        "code",
        "pre",
        "expandable_blockquote",
    ]
    assert sent.text is not None and sent.text.endswith("<tag> &")
    record = emu.message(user.id, sent.message_id)
    quote = record.entities[-1]
    assert entity_text(record.text or "", quote) == "original: ສະບາຍດີ 🐘"
    assert parse_html(record.html) == (record.text, record.entities)  # the rendering round-trips


async def test_text_length_is_counted_after_parsing_in_utf16(emu: BotApiEmulator, bot: Bot) -> None:
    user = await emu.create_user("Le", started=True)
    await bot.send_message(user.id, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
    await bot.send_message(user.id, "🐘" * 2048)  # 4096 UTF-16 code units
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.send_message(user.id, "🐘" * 2048 + "a")
    with pytest.raises(BadRequest, match="(?i)message text is empty"):
        await bot.send_message(user.id, "<b> </b>", parse_mode="HTML")
    await bot.send_photo(user.id, png(2, 2), caption="象" * 1024)
    with pytest.raises(BadRequest, match="(?i)message caption is too long"):
        await bot.send_photo(user.id, png(2, 2), caption="象" * 1025)
    assert len(emu.messages(user.id)) == 3


def test_html_parser_offsets_and_rendering() -> None:
    text, entities = parse_html("  😀 <b>ປ່າ 森林</b> &#x1F418; ")
    assert text == "😀 ປ່າ 森林 🐘"
    assert entities == [{"type": "bold", "offset": 3, "length": 6}]
    assert entity_text(text, entities[0]) == "ປ່າ 森林"
    assert utf16_len(text) == 12
    assert render_html(text, entities) == "😀 <b>ປ່າ 森林</b> 🐘"
    assert parse_html("Tom & Jerry", strict=False) == ("Tom & Jerry", [])  # what Telegram itself does
    with pytest.raises(EntityParseError):
        parse_html("<a href=x y>z</a>")


# --------------------------------------------------------------------------- who can be written to


async def test_blocked_and_unknown_recipients(emu: BotApiEmulator, bot: Bot) -> None:
    user = await emu.create_user("Wang", started=True)
    stranger = await emu.create_user("Never started")
    await bot.send_message(user.id, "hello")
    await emu.block(user.id)
    with pytest.raises(Forbidden, match="(?i)bot was blocked by the user"):
        await bot.send_message(user.id, "still there?")
    with pytest.raises(Forbidden, match="(?i)bot can't initiate conversation"):
        await bot.send_message(stranger.id, "hi")
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await bot.send_message(424242, "hi")
    member_updates = [u.my_chat_member for u in await bot.get_updates() if u.my_chat_member]
    assert member_updates[-1].new_chat_member.status == "kicked"  # type: ignore[union-attr]
    with pytest.raises(ControlError, match="(?i)blocked the bot"):
        await emu.send_text(user.id, "hello?")
    await emu.unblock(user.id)
    await bot.send_message(user.id, "welcome back")
    assert [m.text for m in emu.messages(user.id)] == ["hello", "welcome back"]
    chat = await bot.get_chat(user.id)
    assert (chat.id, chat.first_name, chat.type) == (user.id, "Wang", "private")


# --------------------------------------------------------------------------- rate limits


async def test_per_chat_limit_answers_429_with_retry_after() -> None:
    async with BotApiEmulator(TOKEN, rate_limits=RateLimits.telegram()) as emu, make_bot(emu) as bot:
        user = await emu.create_user("Zhang", started=True)
        other = await emu.create_user("Nguyen", started=True)
        await bot.send_message(user.id, "1")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(user.id, "2")
        await bot.send_message(other.id, "another chat is not affected")
        assert caught.value.message.startswith("Flood control exceeded")  # PTB's wording of a 429
        status, body = await raw_call(emu, "sendMessage", json={"chat_id": user.id, "text": "3"})
    assert status == 429 and body["parameters"] == {"retry_after": 1}
    assert body["description"] == "Too Many Requests: retry after 1"
    assert [m.text for m in emu.messages(user.id)] == ["1"]
    assert emu.meter.max_per_second_chat() == 1
    assert emu.meter.count_429 == 2 and emu.meter.rejections["chat"] == 2


async def test_overall_limit_is_30_per_second_and_the_meter_measures_it() -> None:
    async with BotApiEmulator(TOKEN, rate_limits=RateLimits.telegram()) as emu, make_bot(emu) as bot:
        users = [await emu.create_user(f"Officer {i}", started=True) for i in range(31)]
        results = await asyncio.gather(
            *(bot.send_message(u.id, "alert") for u in users), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, RetryAfter)]
        async with EmulatorClient(emu.base_url) as client:
            over_http = await client.stats()
    assert len(refused) == 1 and sum(1 for r in results if not isinstance(r, Exception)) == 30
    assert emu.meter.max_per_second_overall() == 30
    assert emu.meter.max_per_second_chat() == 1
    assert emu.meter.rejections == {"overall": 1}
    assert (over_http["max_per_second_overall"], over_http["count_429"], over_http["sends"]) == (30, 1, 30)
    assert over_http["calls"]["sendMessage"] == 31


async def test_group_limit_and_burst_configuration() -> None:
    limits = RateLimits(per_chat=3, per_chat_window=3.0, per_group=2, per_group_window=60.0)
    async with BotApiEmulator(TOKEN, rate_limits=limits) as emu, make_bot(emu) as bot:
        user = await emu.create_user("Lan", started=True)
        group = await emu.create_group("Border post", [user.id])
        for i in range(3):  # a burst of three is allowed in a private chat
            await bot.send_message(user.id, f"burst {i}")
        with pytest.raises(RetryAfter):
            await bot.send_message(user.id, "fourth")
        await bot.send_message(group, "g1")
        await bot.send_message(group, "g2")
        with pytest.raises(RetryAfter):
            await bot.send_message(group, "g3")
    assert emu.meter.max_per_second_chat(user.id) == 3
    assert emu.meter.max_per_minute_group() == 2
    assert emu.meter.rejections == {"chat": 1, "group": 1}


# --------------------------------------------------------------------------- files


async def test_user_files_can_be_fetched_by_the_bot(emu: BotApiEmulator, bot: Bot) -> None:
    user = await emu.create_user("Phet")
    evidence = os.urandom(200_000)
    doc = await emu.send_document(
        user.id, evidence, "seizure.pdf", mime_type="application/pdf", caption="report"
    )
    photo = await emu.send_photo(user.id, png(1600, 1200), caption="pangolin scales #CN-VN")
    await emu.send_voice(user.id, b"OggS voice", duration=3)
    await emu.send_location(user.id, 21.68, 102.1)
    await emu.send_contact(user.id, "+856 20 555 0101", "Phet")
    await emu.send_sticker(user.id, emoji="🐘")
    updates = [u.message for u in await bot.get_updates()]
    assert [m.effective_attachment.__class__.__name__ for m in updates if m] == [  # type: ignore[union-attr]
        "Document",
        "tuple",
        "Voice",
        "Location",
        "Contact",
        "Sticker",
    ]
    document = updates[0].document  # type: ignore[union-attr]
    assert (document.file_name, document.mime_type, updates[0].caption) == (  # type: ignore[union-attr]
        "seizure.pdf",
        "application/pdf",
        "report",
    )
    downloaded = await (await bot.get_file(document.file_id)).download_as_bytearray()  # type: ignore[union-attr]
    assert bytes(downloaded) == evidence == emu.file_bytes(doc.file.file_id)  # type: ignore[union-attr]
    sizes = updates[1].photo  # type: ignore[union-attr]
    assert (sizes[-1].width, sizes[-1].height) == (1600, 1200) and sizes[0].width == 90
    assert updates[1].caption_entities[0].type == "hashtag"  # type: ignore[union-attr]
    assert bytes(await (await bot.get_file(sizes[-1].file_id)).download_as_bytearray()) == png(1600, 1200)
    assert photo.file is not None and photo.file.file_id == sizes[-1].file_id


async def test_bot_documents_are_readable_through_the_control_api(emu: BotApiEmulator, bot: Bot) -> None:
    user = await emu.create_user("Auditor", started=True)
    export = os.urandom(50_000)
    sent = await bot.send_document(user.id, InputFile(export, filename="audit-CN-VN.zip"), caption="export")
    record = emu.message(user.id, sent.message_id)
    assert record.kind == "document" and record.file is not None
    assert (record.file.file_name, record.file.mime_type, record.file.data) == (
        "audit-CN-VN.zip",
        "application/zip",
        export,
    )
    async with EmulatorClient(emu.base_url) as client:
        (remote,) = await client.messages(user.id)
        assert remote.file is not None and await client.file_bytes(remote.file.file_id) == export
    # Re-sending by file_id reuses the stored bytes.
    again = await bot.send_document(user.id, sent.document.file_id)  # type: ignore[union-attr]
    assert emu.message(user.id, again.message_id).file.data == export  # type: ignore[union-attr]
    with pytest.raises(BadRequest, match="(?i)wrong file identifier"):
        await bot.send_document(user.id, "no-such-file-id")
    with pytest.raises(BadRequest, match="(?i)can't use file of type document as photo"):
        await bot.send_photo(user.id, sent.document.file_id)  # type: ignore[union-attr]
    with pytest.raises(BadRequest, match="(?i)IMAGE_PROCESS_FAILED"):
        await bot.send_photo(user.id, b"not an image")


async def test_other_send_methods_parse_as_telegram_objects(emu: BotApiEmulator, bot: Bot) -> None:
    user = await emu.create_user("Kham", started=True)
    voice = await bot.send_voice(user.id, InputFile(b"OggS-voice", filename="note.ogg"), duration=4)
    video = await bot.send_video(user.id, b"\x00\x00\x00\x18ftypmp42", width=320, height=240, caption="truck")
    audio = await bot.send_audio(user.id, b"ID3-audio", title="Briefing", performer="Desk")
    place = await bot.send_location(user.id, 22.5, 103.9)
    card = await bot.send_contact(user.id, "+84 24 555 0199", "Duty officer")
    assert (voice.voice.duration, video.video.width, video.caption) == (4, 320, "truck")  # type: ignore[union-attr]
    assert (audio.audio.title, place.location.latitude, card.contact.first_name) == (  # type: ignore[union-attr]
        "Briefing",
        22.5,
        "Duty officer",
    )
    assert emu.file_bytes(voice.voice.file_id) == b"OggS-voice"  # type: ignore[union-attr]
    kinds = [m.kind for m in emu.messages(user.id)]
    assert kinds == ["voice", "video", "audio", "location", "contact"]
    assert await bot.delete_messages(user.id, [voice.message_id, place.message_id, 999]) is True
    assert [m.deleted for m in emu.messages(user.id)] == [True, False, False, True, False]


async def test_user_caption_edit_reaches_the_bot(emu: BotApiEmulator, bot: Bot) -> None:
    user = await emu.create_user("Pham")
    photo = await emu.send_photo(user.id, png(8, 8), caption="3 kg")
    await emu.edit_text(user.id, photo.message_id, "3.5 kg, corrected")
    updates = await bot.get_updates()
    edited = updates[-1].edited_message
    assert edited is not None and edited.caption == "3.5 kg, corrected" and edited.photo
    assert [v["caption"] for v in photo.versions] == ["3 kg", "3.5 kg, corrected"]


async def test_copy_forward_and_protected_content(emu: BotApiEmulator, bot: Bot) -> None:
    alice = await emu.create_user("Alice", started=True)
    bob = await emu.create_user("Bob", started=True)
    original = await emu.send_text(alice.id, "tip: truck at gate 3")
    copied = await bot.copy_message(bob.id, alice.id, original.message_id)
    forwarded = await bot.forward_message(bob.id, alice.id, original.message_id)
    assert emu.message(bob.id, copied.message_id).text == "tip: truck at gate 3"
    assert forwarded.forward_origin is not None and forwarded.forward_origin.sender_user.id == alice.id  # type: ignore[attr-defined]
    protected = await bot.send_message(alice.id, "H2: no further dissemination", protect_content=True)
    assert protected.has_protected_content
    with pytest.raises(BadRequest, match="(?i)protected content"):
        await bot.forward_message(bob.id, alice.id, protected.message_id)


async def test_commands_menu_and_chat_actions(emu: BotApiEmulator, bot: Bot) -> None:
    user = await emu.create_user("Lin", started=True)
    await bot.set_my_commands(
        [BotCommand("rooms", "列出案件室")], language_code="zh", scope=BotCommandScopeAllPrivateChats()
    )
    await bot.set_my_commands([BotCommand("rooms", "List case rooms")])
    assert [
        c.description
        for c in await bot.get_my_commands(language_code="zh", scope=BotCommandScopeAllPrivateChats())
    ] == ["列出案件室"]
    assert await bot.get_my_commands(language_code="vi") == ()
    assert emu.commands({"type": "all_private_chats"}, "zh") == [
        {"command": "rooms", "description": "列出案件室"}
    ]
    with pytest.raises(BadRequest, match="(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])
    await bot.delete_my_commands()
    assert emu.commands() == []
    await bot.set_chat_menu_button()
    await bot.send_chat_action(user.id, "typing")
    assert emu.chat_state(user.id)["last_action"] == "typing"
    assert (await bot.get_webhook_info()).url == ""


# ------------------------------------------------------------------ faults, events, control over HTTP


async def test_fault_injection(emu: BotApiEmulator) -> None:
    user = await emu.create_user("Tran", started=True)
    other = await emu.create_user("Dao", started=True)
    async with make_bot(emu, read_timeout=0.5) as bot:
        emu.inject_fault("sendMessage", chat_id=user.id, retry_after=7)
        await bot.send_message(other.id, "other chats are unaffected")
        with pytest.raises(RetryAfter):
            await bot.send_message(user.id, "throttled")
        emu.inject_fault("sendMessage", error_code=502, times=2)
        for _ in range(2):
            with pytest.raises(NetworkError, match="(?i)Bad Gateway"):
                await bot.send_message(user.id, "gateway")
        emu.inject_fault("sendMessage", drop=True)
        with pytest.raises(NetworkError):
            await bot.send_message(user.id, "dropped before sending")
        emu.inject_fault("sendMessage", delay=1.0, process=True)
        with pytest.raises(TimedOut):
            await bot.send_message(user.id, "slow but delivered")
        await emu.wait_for(lambda: emu.messages(user.id))
        await bot.send_message(user.id, "back to normal")
    assert [m.text for m in emu.messages(user.id)] == ["slow but delivered", "back to normal"]
    assert emu.faults() == [] and emu.meter.rejections == {"fault": 1}


async def test_event_stream_in_process(emu: BotApiEmulator, bot: Bot) -> None:
    user = await emu.create_user("Ngoc")
    events = emu.subscribe(chat_id=user.id)
    await emu.send_text(user.id, "/start")
    sent = await bot.send_message(
        user.id, "hi", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="ok")]])
    )
    await bot.edit_message_text("hello", user.id, sent.message_id, reply_markup=sent.reply_markup)
    callback_id = await emu.press_button(user.id, sent.message_id, "ok")
    await bot.answer_callback_query(callback_id, "done")
    await bot.delete_message(user.id, sent.message_id)
    kinds = []
    while not events.empty():
        event = events.get_nowait()
        assert event is not None
        kinds.append(event["type"])
    assert kinds == [
        "user_message",
        "bot_message",
        "bot_edit",
        "callback_query",
        "callback_answer",
        "bot_delete",
    ]
    emu.unsubscribe(events)


async def test_control_api_over_http_with_server_sent_events(emu: BotApiEmulator, bot: Bot) -> None:
    async with EmulatorClient(emu.base_url) as client:
        user = await client.create_user("Xay", language_code="lo", username="xay_la")
        received: list[dict] = []

        async def listen() -> None:
            async for event in client.events(chat_id=user.id):
                received.append(event)
                if event["type"] == "callback_answer":
                    return

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0.1)
        await client.send_text(user.id, "ສະບາຍດີ")
        (update,) = await bot.get_updates()
        assert update.message is not None and update.message.from_user.language_code == "lo"  # type: ignore[union-attr]
        sent = await bot.send_message(
            user.id,
            "<b>ok</b>",
            parse_mode="HTML",
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Acknowledge", callback_data="ack:1")]]),
        )
        (record,) = await client.wait_for_messages(user.id, 1)
        assert (record.text, record.html, record.button_texts) == ("ok", "<b>ok</b>", ["Acknowledge"])
        callback_id = await client.press_button(user.id, sent.message_id, "ack:1")
        updates = await bot.get_updates(offset=update.update_id + 1)
        await bot.answer_callback_query(updates[-1].callback_query.id, "Recorded")  # type: ignore[union-attr]
        answer = await client.wait_for_callback_answer(callback_id)
        await asyncio.wait_for(listener, 3)
        photo = await client.send_photo(user.id, png(10, 10), caption="photo")
        assert photo.media["photo"][-1]["width"] == 10
        with pytest.raises(ControlError, match="(?i)unknown user"):
            await client.send_text(999, "nobody")
        with pytest.raises(TimeoutError):
            await client.wait_for_messages(user.id, 5, timeout=0.2)
        fault = await client.inject_fault("getMe", error_code=500)
        assert [f.id for f in await client.faults()] == [fault.id]
        await client.clear_faults()
        await client.reset()
        assert await client.users() == []
    assert answer.text == "Recorded"
    assert [e["type"] for e in received] == [
        "user_message",
        "bot_message",
        "callback_query",
        "callback_answer",
    ]


async def test_runs_as_a_separate_process(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.sandbox.emulator", "--port", "0", "--token", TOKEN, "--unlimited"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = (await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 20)).strip()
        assert url.startswith("http://127.0.0.1:")
        async with Bot(TOKEN, base_url=f"{url}/bot") as remote_bot:
            assert (await remote_bot.get_me()).username == "liaison_bot"
        async with EmulatorClient(url) as client:
            user = await client.create_user("Remote", started=True)
            async with Bot(TOKEN, base_url=f"{url}/bot") as remote_bot:
                await remote_bot.send_message(user.id, "from afar")
            assert [m.text for m in await client.messages(user.id)] == ["from afar"]
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert process.returncode == 0
