"""Find every localizable text in the code (used by the catalog test and `scripts/i18n_check.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from babel.messages.extract import extract_from_dir

#: functions whose first string argument is a msgid: N_() marks, texts(...) translates,
#: texts.plain/gettext and the error classes' message argument are covered through N_.
KEYWORDS = {"N_": None, "_": None, "gettext": None, "plain": None, "t": None, "texts": None,
            "ngettext": (1, 2), "plural": (1, 2)}


def extract(root: Path) -> Iterator[tuple[str, str, int]]:
    """Yield (msgid, file, line) for each marked text under bot/ and handlers/."""
    for folder in ("bot", "handlers"):
        for filename, lineno, message, _comments, _context in extract_from_dir(
            root / folder, method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=()
        ):
            if filename.startswith("sandbox/emulator"):
                continue  # the Bot API emulator plays Telegram; it shows no texts of the bot's
            messages = message if isinstance(message, tuple) else (message,)
            for msg in messages:
                if msg:
                    yield msg, f"{folder}/{filename}", lineno
