"""Encryption at rest: AES-256-GCM with a keyring, so keys can be rotated without downtime."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.config import Settings

logger = logging.getLogger(__name__)

_VERSION = 1
KEYRING_FILE = "data-keys.json"


class DataKeyError(Exception):
    """The data key is missing, malformed, or not the one the data was encrypted with."""


def _decode_key(raw: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(raw.strip() + "=" * (-len(raw.strip()) % 4))
    except (binascii.Error, ValueError):
        raise DataKeyError("LIAISON_DATA_KEY is not base64") from None
    if len(key) != 32:
        raise DataKeyError(f"LIAISON_DATA_KEY must decode to 32 bytes (AES-256), got {len(key)}")
    return key


def key_id_of(key: bytes) -> str:
    """Return a short public identifier of a key (never the key itself)."""
    return hashlib.sha256(b"liaison-key-id" + key).hexdigest()[:12]


def new_key_text() -> str:
    """Return a fresh random key as urlsafe base64 (what LIAISON_DATA_KEY expects)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


@dataclass
class DataCipher:
    """Encrypts with the active key; decrypts with whichever key of the ring the data names."""

    keys: dict[str, bytes]
    active: str
    _aead: dict[str, AESGCM] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise DataKeyError("the active data key is not in the keyring")
        self._aead = {kid: AESGCM(k) for kid, k in self.keys.items()}

    def __repr__(self) -> str:
        return f"DataCipher(active={self.active!r}, keys={sorted(self.keys)!r})"

    def encrypt(self, plaintext: str, aad: bytes = b"") -> bytes:
        """Encrypt a text; the result names its key so rotation can find it."""
        nonce = os.urandom(12)
        kid = self.active.encode("ascii")
        ct = self._aead[self.active].encrypt(nonce, plaintext.encode("utf-8"), aad)
        return bytes([_VERSION, len(kid)]) + kid + nonce + ct

    def key_of(self, blob: bytes) -> str:
        """Return the id of the key a blob was encrypted with."""
        if len(blob) < 2 or blob[0] != _VERSION:
            raise DataKeyError("encrypted value has an unknown format")
        return blob[2 : 2 + blob[1]].decode("ascii")

    def decrypt(self, blob: bytes, aad: bytes = b"") -> str:
        """Decrypt a blob made by `encrypt`; a wrong key raises `DataKeyError`, never garbage."""
        kid = self.key_of(blob)
        aead = self._aead.get(kid)
        if aead is None:
            raise DataKeyError(f"data was encrypted with key {kid}, which is not in the keyring")
        start = 2 + blob[1]
        try:
            return aead.decrypt(blob[start : start + 12], blob[start + 12 :], aad).decode("utf-8")
        except InvalidTag:
            raise DataKeyError(f"data key {kid} does not decrypt this value (wrong key or altered data)") from None

    def encrypt_opt(self, plaintext: str | None, aad: bytes = b"") -> bytes | None:
        """Encrypt, passing None through."""
        return None if plaintext is None else self.encrypt(plaintext, aad)

    def decrypt_opt(self, blob: bytes | None, aad: bytes = b"") -> str | None:
        """Decrypt, passing None through."""
        return None if blob is None else self.decrypt(blob, aad)


def keyring_path(settings: Settings) -> Path:
    """Return the keyring file's path in the data directory."""
    return settings.data_dir / "keys" / KEYRING_FILE


def write_keyring(path: Path, keys: dict[str, bytes], active: str) -> None:
    """Write the keyring atomically with owner-only permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(
            {"active": active, "keys": {k: base64.urlsafe_b64encode(v).decode() for k, v in keys.items()}}, fh
        )
    os.replace(tmp, path)


def load_cipher(settings: Settings, *, create: bool = True) -> DataCipher:
    """Return the cipher from LIAISON_DATA_KEY, or from the keyring file (created on first run)."""
    if settings.data_key is not None:
        key = _decode_key(settings.data_key.get())
        keys = {key_id_of(key): key}
        active = key_id_of(key)
        path = keyring_path(settings)
        # Old keys kept after a rotation stay usable for decryption.
        if path.exists():
            keys.update(_read_keyring(path)[0])
        return DataCipher(keys, active)
    path = keyring_path(settings)
    if not path.exists():
        if not create:
            raise DataKeyError(f"no data key: set LIAISON_DATA_KEY or create {path}")
        key = secrets.token_bytes(32)
        write_keyring(path, {key_id_of(key): key}, key_id_of(key))
        logger.info("created a new data key file at %s (owner-only)", path)
    keys, active = _read_keyring(path)
    return DataCipher(keys, active)


def _read_keyring(path: Path) -> tuple[dict[str, bytes], str]:
    if path.stat().st_mode & 0o077:
        raise DataKeyError(f"{path} is readable by others; run: chmod 600 {path}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        keys = {k: base64.urlsafe_b64decode(v) for k, v in doc["keys"].items()}
        active = doc["active"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise DataKeyError(f"{path} is not a valid keyring file") from None
    if any(len(k) != 32 for k in keys.values()):
        raise DataKeyError(f"{path} holds a key that is not 32 bytes")
    return keys, active
