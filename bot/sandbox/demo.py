"""The sandbox's demo: five officers registered through real invites, a case room, a joint meeting.

Everything goes through the bot as it would on Telegram: each officer is an emulator user who sends
`/start CODE` with an invite created by `bot.vetting.create_invite`. The case room and the meeting are
made by the coordinator through the rooms and meetings services (whose notices the bot then delivers),
and the sample conversation is typed through the emulator. Parts whose area is not available in this
build are skipped with a logged reason, and the page still works with what is there.

Names are invented; the meeting's actions are those agreed at the real tripartite meeting in
Guangzhou in August 2016 (see shared/data/joint-meeting-2016.md), paraphrased.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import vetting
from bot.errors import Conflict
from bot.models.core import COUNTRY_FLAG
from bot.officers import OfficerInfo
from bot.sandbox.web import Pane

if TYPE_CHECKING:
    from bot.core import Core
    from bot.sandbox.emulator import BotApiEmulator

logger = logging.getLogger(__name__)

CASE_TAG = "CN-VN-2026-0042"
CASE_TITLE = "Pangolin scales, Lang Son – Pingxiang corridor"
_REPLY_TIMEOUT = 20.0
#: Telegram ids of the demo's people (fixed, so a kept database recognises them).
FIRST_USER_ID = 700_000_001


@dataclass(frozen=True)
class DemoOfficer:
    """One person of the demo: who they are in Telegram and what their invite says."""

    key: str
    first_name: str
    last_name: str
    username: str
    role: str
    country: str
    agency: str
    language: str
    subtitle: str
    placeholder: str

    @property
    def full_name(self) -> str:
        """Return the name Telegram shows."""
        return " ".join(part for part in (self.first_name, self.last_name) if part)


#: The demo's people, in the order of the page's panes.
OFFICERS: tuple[DemoOfficer, ...] = (
    DemoOfficer(
        "zh-officer",
        "陈志强",
        "",
        "chen_zhiqiang",
        "officer",
        "CN",
        "Guangdong Anti-Smuggling Office",
        "zh",
        "Officer · Guangdong Anti-Smuggling Office · writes Chinese",
        "输入消息…",
    ),
    DemoOfficer(
        "vi-officer",
        "Trần Văn",
        "Hùng",
        "tran_van_hung",
        "officer",
        "VN",
        "Lang Son Customs Department",
        "vi",
        "Officer · Lang Son Customs · writes Vietnamese",
        "Nhập tin nhắn…",
    ),
    DemoOfficer(
        "lo-officer",
        "ສົມພອນ",
        "ພົມມະວົງ",
        "somphone_p",
        "officer",
        "LA",
        "Department of Forest Inspection",
        "lo",
        "Officer · Department of Forest Inspection · writes Lao",
        "ພິມຂໍ້ຄວາມ…",
    ),
    DemoOfficer(
        "coordinator",
        "Nguyễn Thị",
        "Lan",
        "lan_coordinator",
        "coordinator",
        "VN",
        "Standing Office of Steering Committee 389",
        "en",
        "Coordinator · Steering Committee 389 · English",
        "Message…",
    ),
    DemoOfficer(
        "auditor",
        "Wang",
        "Li",
        "auditor_wang",
        "auditor",
        "CN",
        "CITES Management Authority of China",
        "en",
        f"Auditor · CITES Management Authority · English · try /export {CASE_TAG}",
        "Message…",
    ),
)

#: A short exchange so the panes show translated messages at once (sender key, text).
CONVERSATION: tuple[tuple[str, str], ...] = (
    (
        "vi-officer",
        (
            "Sáng nay Hải quan Lạng Sơn phát hiện 300 kg vảy tê tê trên xe tải 12C-345.67. "
            "Phía Trung Quốc có thông tin về người nhận hàng không?"
        ),
    ),
    ("lo-officer", "ພວກເຮົາເຄີຍກວດລົດຄັນນີ້ຢູ່ດ່ານບໍ່ເຕັນ ເມື່ອອາທິດກ່ອນ."),
)

#: The joint meeting: (title, place, [(action text, owner keys, days until due)]).
MEETING_TITLE = "Tripartite meeting on wildlife-trafficking enforcement (follow-up)"
MEETING_PLACE = "Guangzhou"
ACTIONS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    (
        (
            "Propose an official working relationship between the Guangdong Anti-Smuggling Office and "
            "Steering Committee 389 at provincial level"
        ),
        ("zh-officer", "coordinator"),
        30,
    ),
    ("Draft the plan for a joint-agency task force on wildlife trafficking", ("coordinator",), 60),
    (
        (
            "Share the latest policy changes on CITES certificates so false certificates can be recognised "
            "at inspection"
        ),
        ("vi-officer", "zh-officer"),
        14,
    ),
    ("Propose practical means for joint actions at the Lao border checkpoints", ("lo-officer",), 21),
)


@dataclass
class DemoResult:
    """What the seed did: the panes, the registered officers, what was skipped and why."""

    panes: list[Pane] = field(default_factory=list)
    officers: dict[str, OfficerInfo] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def pane_for(person: DemoOfficer, user_id: int) -> Pane:
    """Return the page's pane for a demo person."""
    return Pane(
        id=user_id,
        key=person.key,
        name=person.full_name,
        subtitle=person.subtitle,
        flag=COUNTRY_FLAG.get(person.country, ""),
        country=person.country,
        lang=person.language,
        placeholder=person.placeholder,
    )


async def create_users(core: Core, emulator: BotApiEmulator) -> dict[str, int]:
    """Create the demo's Telegram users in the emulator (before the bot starts); return their ids by key.

    Each person has a fixed Telegram id, so with a kept data directory they are the officers who
    registered in an earlier run: their chat with the bot is already started, and what the bot still
    owed them from that run can be delivered as soon as it starts.
    """
    ids: dict[str, int] = {}
    last_ids = _read_last_message_ids(core.settings.data_dir)
    for number, person in enumerate(OFFICERS):
        user_id = FIRST_USER_ID + number
        registered = await asyncio.to_thread(vetting.active_officer, core, user_id) is not None
        await emulator.create_user(
            person.first_name,
            user_id=user_id,
            last_name=person.last_name or None,
            username=person.username,
            language_code=person.language,
            started=registered,
        )
        if registered:
            # Telegram never reuses a message id in a chat, and the bot relies on it (replies, duplicates):
            # continue the numbering of the earlier run (or jump far ahead if it was not saved).
            fallback = 1_000_000 + int(time.time()) - 1_700_000_000
            emulator._bot(None).private_chat(user_id).next_message_id = last_ids.get(user_id, fallback) + 1
        ids[person.key] = user_id
    return ids


def _state_file(data_dir: Path) -> Path:
    """Return the file where the sandbox keeps the last message id of each demo chat."""
    return data_dir / "sandbox-chats.json"


def _read_last_message_ids(data_dir: Path) -> dict[int, int]:
    """Return the last message id of each demo chat saved by an earlier run ({} if none)."""
    try:
        raw = json.loads(_state_file(data_dir).read_text("utf-8"))
        return {int(k): int(v) for k, v in raw.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def save_last_message_ids(emulator: BotApiEmulator, data_dir: Path, user_ids: dict[str, int]) -> None:
    """Remember the last message id of each demo chat, for the next run on this data directory."""
    last = {}
    for user_id in user_ids.values():
        records = emulator.messages(user_id, include_user=True)
        if records:
            last[str(user_id)] = max(r.message_id for r in records)
    previous = {str(k): v for k, v in _read_last_message_ids(data_dir).items()}
    _state_file(data_dir).write_text(json.dumps({**previous, **last}), "utf-8")


async def register_officer(
    core: Core, emulator: BotApiEmulator, person: DemoOfficer, user_id: int
) -> OfficerInfo:
    """Have the person send `/start CODE` with a fresh invite (or `/start` if registered in an earlier run)."""
    if await asyncio.to_thread(vetting.active_officer, core, user_id) is not None:
        await emulator.send_text(user_id, "/start")
    else:
        invite = await asyncio.to_thread(
            vetting.create_invite,
            core,
            None,
            role=person.role,
            country=person.country,
            agency=person.agency,
            language=person.language,
            lifetime=timedelta(hours=1),
        )
        await emulator.send_text(user_id, f"/start {invite.code}")
    await emulator.wait_for_messages(user_id, 1, timeout=_REPLY_TIMEOUT)
    officer = await asyncio.to_thread(vetting.active_officer, core, user_id)
    if officer is None:
        replies = [m.body[:120] for m in emulator.messages(user_id)]
        raise RuntimeError(f"{person.username} could not register; the bot answered {replies}")
    return officer


async def seed(
    core: Core, emulator: BotApiEmulator, user_ids: dict[str, int], *, conversation: bool = True
) -> DemoResult:
    """Register the demo's people (users made by `create_users`) and set up what the available areas allow."""
    result = DemoResult()
    for person in OFFICERS:
        user_id = user_ids[person.key]
        result.user_ids[person.key] = user_id
        result.officers[person.key] = await register_officer(core, emulator, person, user_id)
        result.panes.append(pane_for(person, user_id))
    result.done.append(f"{len(OFFICERS)} officers registered through invites")
    room = await _optional(result, "case room", _case_room(core, emulator, result))
    if room and conversation:
        await _optional(result, "sample conversation", _conversation(emulator, result))
    await _optional(result, "meeting", _meeting(core, result))
    return result


async def _optional(result: DemoResult, name: str, step: Awaitable[str]) -> bool:
    """Run a part of the demo that depends on another area; log and remember why when it cannot be done."""
    try:
        summary = await step
    except Unavailable as exc:
        result.skipped[name] = str(exc)
        logger.warning("sandbox demo: %s skipped: %s", name, exc)
        return False
    except Exception as exc:  # the area is still being built: keep the sandbox usable without it
        result.skipped[name] = f"{type(exc).__name__}: {exc}"
        logger.warning("sandbox demo: %s skipped after an error", name, exc_info=True)
        return False
    result.done.append(summary)
    logger.info("sandbox demo: %s", summary)
    return True


class Unavailable(RuntimeError):
    """A part of the demo needs an area this build does not have yet."""


def _has_handler(module: str) -> bool:
    """Tell whether an area's handler module registers anything yet (placeholders only define register)."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return False
    source = inspect.getsource(mod)
    return "add_handler" in source


async def _case_room(core: Core, emulator: BotApiEmulator, result: DemoResult) -> str:
    """Have the coordinator open the case room and add the three field officers (rooms service)."""
    create_case = _find("bot.rooms", "create_case")
    add_member = _find("bot.rooms", "add_member")
    coordinator = result.officers["coordinator"]
    try:
        await asyncio.to_thread(create_case, core, coordinator, CASE_TAG, CASE_TITLE)
    except Conflict:  # a kept data directory: the room is there from an earlier run
        logger.info("sandbox demo: case room %s exists already", CASE_TAG)
    for key in ("zh-officer", "vi-officer", "lo-officer"):
        with contextlib.suppress(Conflict):  # already a member
            await asyncio.to_thread(
                add_member, core, coordinator, f"@{result.officers[key].username}", CASE_TAG
            )
    return f"case room {CASE_TAG} ready with 3 officers"


async def _conversation(emulator: BotApiEmulator, result: DemoResult) -> str:
    """Post the sample exchange in the case room and wait until it has been relayed."""
    if not _has_handler("handlers.relay"):
        raise Unavailable("the relay (handlers/relay.py) is not in this build yet")
    for key, text in CONVERSATION:
        others = [result.user_ids[k] for k in ("zh-officer", "vi-officer", "lo-officer") if k != key]
        counts = {uid: len(emulator.messages(uid)) for uid in others}
        await emulator.send_text(result.user_ids[key], text)
        for uid in others:
            await emulator.wait_for_messages(uid, counts[uid] + 1, timeout=_REPLY_TIMEOUT)
    return f"{len(CONVERSATION)} sample messages relayed"


def _find(module: str, *names: str) -> Callable[..., Any]:
    """Return the first of several public functions an area module has (Unavailable if none)."""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise Unavailable(f"{module} is not in this build yet ({exc})") from None
    for name in names:
        fn = getattr(mod, name, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    raise Unavailable(f"{module} has none of {', '.join(names)} yet")


async def _meeting(core: Core, result: DemoResult) -> str:
    """Record the joint meeting and its action items through the meetings service (owners are told)."""
    record = _find("bot.meetings", "record_meetings")
    meeting_draft = importlib.import_module("bot.meetings").MeetingDraft
    item_draft = importlib.import_module("bot.meetings").ItemDraft
    coordinator = result.officers["coordinator"]
    today = core.clock.now().date()
    items = tuple(
        item_draft(
            text=text,
            owners=tuple(f"@{result.officers[k].username}" for k in owners),
            due=today + timedelta(days=days),
            case_tag=CASE_TAG,
        )
        for text, owners, days in ACTIONS
    )
    participants = ", ".join(o.display_name for o in result.officers.values())
    draft = meeting_draft(
        title=MEETING_TITLE,
        held_on=today - timedelta(days=1),
        place=MEETING_PLACE,
        participants=participants,
        language="en",
        items=items,
    )
    try:
        await asyncio.to_thread(record, core, coordinator, [draft], source="sandbox")
    except Conflict:  # the same meeting from an earlier run on a kept data directory
        return "meeting recorded in an earlier run"
    return f"meeting with {len(items)} action items recorded"
