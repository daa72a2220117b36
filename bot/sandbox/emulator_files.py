"""Files the emulator holds: uploads by the bot and by users, addressable by file_id and file_path."""

from __future__ import annotations

import hashlib
import mimetypes
import struct
from typing import Any

from bot.sandbox.emulator_records import StoredFile

#: Telegram's limits for bots: 50 MB per upload, 20 MB per getFile download.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024

_FOLDERS = {
    "photo": "photos",
    "document": "documents",
    "voice": "voice",
    "video": "videos",
    "audio": "music",
    "animation": "animations",
    "sticker": "stickers",
    "video_note": "video_notes",
}
_DEFAULT_EXT = {
    "photo": ".jpg",
    "voice": ".oga",
    "video": ".mp4",
    "audio": ".mp3",
    "animation": ".mp4",
    "sticker": ".webp",
    "video_note": ".mp4",
}


def image_size(data: bytes) -> tuple[int, int] | None:
    """Return (width, height) of a PNG, JPEG, GIF or WebP image, or None if the bytes are none of these."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return int(width) & 0x3FFF, int(height) & 0x3FFF
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return None
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Return the size recorded in a JPEG's start-of-frame marker."""
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        pos += 2 + length
    return None


class FileStore:
    """Every file known to the emulator, by file_id and by download path."""

    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._counter = 0

    def add(
        self, kind: str, data: bytes, file_name: str | None = None, mime_type: str | None = None
    ) -> StoredFile:
        """Store bytes as a new file of the given kind (photo, document, voice, ...) and return it."""
        self._counter += 1
        if mime_type in (None, "", "application/octet-stream") and file_name:
            mime_type = mimetypes.guess_type(file_name)[0] or mime_type
        ext = (mimetypes.guess_extension(mime_type or "") if mime_type else None) or ""
        if file_name and "." in file_name:
            ext = "." + file_name.rsplit(".", 1)[1].lower()
        ext = ext or _DEFAULT_EXT.get(kind, "")
        digest = hashlib.sha256(data).hexdigest()
        stored = StoredFile(
            file_id=f"{kind[:3].upper()}{self._counter:06d}{digest[:16]}",
            file_unique_id=f"U{digest[:10]}{self._counter:x}",
            kind=kind,
            file_path=f"{_FOLDERS.get(kind, kind)}/file_{self._counter}{ext}",
            data=data,
            file_name=file_name,
            mime_type=mime_type,
            size=len(data),
        )
        self._by_id[stored.file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        """Return the file with this file_id, if any."""
        return self._by_id.get(file_id)

    def by_path(self, file_path: str) -> StoredFile | None:
        """Return the file served at this download path, if any."""
        return self._by_path.get(file_path)

    def clear(self) -> None:
        """Forget every file (the counter keeps growing so old ids are never reused)."""
        self._by_id.clear()
        self._by_path.clear()

    def photo_sizes(self, data: bytes, width: int, height: int) -> tuple[list[dict[str, Any]], StoredFile]:
        """Store a photo and return its PhotoSize list (smallest first) and the largest size's file.

        Telegram makes resampled copies (thumbnail up to 1280 px); the emulator does not resample,
        so every size serves the original bytes under its own file_id, with the scaled dimensions.
        """
        sides = [side for side in (90, 320, 800, 1280) if side < max(width, height)]
        sides.append(min(max(width, height), 2560))
        sizes, files = [], []
        for side in sides:
            scale = side / max(width, height, 1)
            stored = self.add("photo", data)
            files.append(stored)
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "width": max(1, round(width * scale)),
                    "height": max(1, round(height * scale)),
                    "file_size": stored.size,
                }
            )
        return sizes, files[-1]


def media_object(stored: StoredFile, **extra: Any) -> dict[str, Any]:
    """Return the Bot API object (Document, Voice, Video, ...) describing a stored file."""
    data: dict[str, Any] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
    }
    if stored.file_name:
        data["file_name"] = stored.file_name
    if stored.mime_type:
        data["mime_type"] = stored.mime_type
    data.update({key: value for key, value in extra.items() if value is not None})
    return data
