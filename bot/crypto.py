"""Encryption at rest (AES-256-GCM with a keyring) and the installation's export-signing key (Ed25519).

Encrypted values name the key that made them (`[version][len][key id][nonce][ciphertext+tag]`), so a
keyring can hold old keys for decryption while a new one encrypts; `bot.keys` rotates keys and
re-encrypts. Every encrypted column is marked in the models with `info=encrypted(...)` (or
`register_encrypted_column`), so rotation and retention find them without knowing each area.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.config import Settings

logger = logging.getLogger(__name__)

_VERSION = 1
KEYRING_FILE = "data-keys.json"
SIGNING_KEY_FILE = "export-signing-key.pem"
#: how often a running process looks whether `liaison keys rotate` changed the keyring file (seconds)
REFRESH_SECONDS = 1.0


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


def blob_key_id(blob: bytes) -> str | None:
    """Return the key id an encrypted value names, or None when the bytes are not our format."""
    if len(blob) < 2 or blob[0] != _VERSION or len(blob) < 2 + blob[1] + 12 + 16:
        return None
    try:
        return bytes(blob[2 : 2 + blob[1]]).decode("ascii")
    except UnicodeDecodeError:
        return None


@dataclass
class DataCipher:
    """Encrypts with the active key; decrypts with whichever key of the ring the data names.

    With `source` set (the keyring file), a running process notices a rotation within
    `REFRESH_SECONDS` and starts encrypting with the new key; a value naming an unknown key makes
    it look at once. `env_active` pins the active key to LIAISON_DATA_KEY's.
    """

    keys: dict[str, bytes]
    active: str
    source: Path | None = None
    env_active: str | None = None
    _aead: dict[str, AESGCM] = field(default_factory=dict, repr=False)
    _stamp: tuple[int, int] | None = field(default=None, repr=False)
    _checked: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _env_key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise DataKeyError("the active data key is not in the keyring")
        if self.env_active is not None:
            self._env_key = self.keys[self.env_active]
        self._aead = {kid: AESGCM(k) for kid, k in self.keys.items()}
        self._stamp = _stamp(self.source)
        self._checked = time.monotonic()

    def __repr__(self) -> str:
        return f"DataCipher(active={self.active!r}, keys={sorted(self.keys)!r})"

    def encrypt(self, plaintext: str, aad: bytes = b"") -> bytes:
        """Encrypt a text; the result names its key so rotation can find it."""
        if self.source is not None and time.monotonic() - self._checked >= REFRESH_SECONDS:
            self.refresh()
        active = self.active
        nonce = os.urandom(12)
        kid = active.encode("ascii")
        ct = self._aead[active].encrypt(nonce, plaintext.encode("utf-8"), aad)
        return bytes([_VERSION, len(kid)]) + kid + nonce + ct

    def key_of(self, blob: bytes) -> str:
        """Return the id of the key a blob was encrypted with."""
        kid = blob_key_id(blob)
        if kid is None:
            raise DataKeyError("encrypted value has an unknown format")
        return kid

    def decrypt(self, blob: bytes, aad: bytes = b"") -> str:
        """Decrypt a blob made by `encrypt`; a wrong key raises `DataKeyError`, never garbage."""
        kid = self.key_of(blob)
        aead = self._aead.get(kid)
        if aead is None and self.source is not None:
            self.refresh(force=True)
            aead = self._aead.get(kid)
        if aead is None:
            raise DataKeyError(f"data was encrypted with key {kid}, which is not in the keyring")
        start = 2 + blob[1]
        try:
            return aead.decrypt(bytes(blob[start : start + 12]), bytes(blob[start + 12 :]), aad).decode(
                "utf-8"
            )
        except InvalidTag:
            raise DataKeyError(
                f"data key {kid} does not decrypt this value (wrong key or altered data)"
            ) from None

    def encrypt_opt(self, plaintext: str | None, aad: bytes = b"") -> bytes | None:
        """Encrypt, passing None through."""
        return None if plaintext is None else self.encrypt(plaintext, aad)

    def decrypt_opt(self, blob: bytes | None, aad: bytes = b"") -> str | None:
        """Decrypt, passing None through."""
        return None if blob is None else self.decrypt(blob, aad)

    def refresh(self, *, force: bool = False) -> bool:
        """Reload the keyring file if it changed since it was read; return whether the keys changed."""
        if self.source is None:
            return False
        with self._lock:
            self._checked = time.monotonic()
            stamp = _stamp(self.source)
            if stamp == self._stamp and not force:
                return False
            try:
                keys, active = _read_keyring(self.source) if stamp is not None else ({}, self.active)
            except DataKeyError as exc:
                # A process keeps working with the keys it has; the operator sees why in the log.
                logger.warning("keyring not reloaded: %s", exc)
                return False
            if self.env_active is not None and self._env_key is not None:
                keys = {**keys, self.env_active: self._env_key}
                active = self.env_active
            if active not in keys:
                logger.warning("keyring not reloaded: its active key is not in it")
                return False
            changed = keys != self.keys or active != self.active
            self._aead = {kid: AESGCM(k) for kid, k in keys.items()}
            self.keys, self.active, self._stamp = keys, active, stamp
            if changed:
                logger.info("data keyring reloaded: active key %s, %d key(s)", active, len(keys))
            return changed


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_ino)


def keyring_path(settings: Settings) -> Path:
    """Return the keyring file's path in the data directory."""
    return settings.data_dir / "keys" / KEYRING_FILE


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def write_keyring(path: Path, keys: dict[str, bytes], active: str) -> None:
    """Write the keyring atomically with owner-only permissions."""
    _private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(
            {"active": active, "keys": {k: base64.urlsafe_b64encode(v).decode() for k, v in keys.items()}}, fh
        )
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_cipher(settings: Settings, *, create: bool = True) -> DataCipher:
    """Return the cipher from LIAISON_DATA_KEY, or from the keyring file (created on first run)."""
    path = keyring_path(settings)
    if settings.data_key is not None:
        key = _decode_key(settings.data_key.get())
        active = key_id_of(key)
        keys = {active: key}
        # Old keys kept after a rotation stay usable for decryption.
        if path.exists():
            keys.update(_read_keyring(path)[0])
        keys[active] = key
        return DataCipher(keys, active, source=path, env_active=active)
    if not path.exists():
        if not create:
            raise DataKeyError(f"no data key: set LIAISON_DATA_KEY or create {path}")
        key = secrets.token_bytes(32)
        write_keyring(path, {key_id_of(key): key}, key_id_of(key))
        logger.info("created a new data key file at %s (owner-only)", path)
    keys, active = _read_keyring(path)
    return DataCipher(keys, active, source=path)


def _read_keyring(path: Path) -> tuple[dict[str, bytes], str]:
    if path.stat().st_mode & 0o077:
        raise DataKeyError(f"{path} is readable by others; run: chmod 600 {path}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        keys = {k: base64.urlsafe_b64decode(v) for k, v in doc["keys"].items()}
        active = doc["active"]
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise DataKeyError(f"{path} is not a valid keyring file") from None
    if any(len(k) != 32 for k in keys.values()):
        raise DataKeyError(f"{path} holds a key that is not 32 bytes")
    if any(key_id_of(k) != kid for kid, k in keys.items()):
        raise DataKeyError(f"{path} names a key by an id that does not match it")
    if active not in keys:
        raise DataKeyError(f"{path}: the active key {active} is not in the file")
    return keys, active


def read_keyring(settings: Settings) -> tuple[dict[str, bytes], str] | None:
    """Return the keyring file's keys and active id, or None when there is no file."""
    path = keyring_path(settings)
    return _read_keyring(path) if path.exists() else None


# ---------------------------------------------------------------------------------------------------
# Which columns hold encrypted values: a marker in the models' column `info`

INFO_KEY = "liaison_encrypted"
#: the associated data most areas use: the bytes "<table>.<column>" (see bot.models.relay.column_aad)
TABLE_COLUMN_AAD = "{table}.{column}"


AadSpec = str | Callable[[Mapping[Any, Any]], bytes] | None


def encrypted(
    aad: AadSpec = TABLE_COLUMN_AAD, *, purge_after: str | None = None, aad_columns: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Return the `info=` of an encrypted column: `mapped_column(LargeBinary, info=encrypted(...))`.

    `aad` is the associated data the area encrypts the column with: a template over the row's columns,
    e.g. "audit_exports.purpose:{id}" (the default means b"<table>.<column>", None means none), or a
    function of the row returning bytes, with `aad_columns` naming the columns it reads.
    `purge_after` names the row's timestamp column by which retention (LIAISON_RETENTION_DAYS) measures
    a value's age; None = never purged by retention.
    """
    return {INFO_KEY: {"aad": aad, "purge_after": purge_after, "aad_columns": tuple(aad_columns)}}


def register_encrypted_column(
    table: Any,
    column: str,
    aad: AadSpec = TABLE_COLUMN_AAD,
    *,
    purge_after: str | None = None,
    aad_columns: tuple[str, ...] = (),
) -> None:
    """Mark an existing model's column as encrypted (the same as `info=encrypted(...)` in its definition)."""
    tbl = getattr(table, "__table__", table)
    if column not in tbl.c:
        raise KeyError(f"{tbl.name} has no column {column}")
    tbl.c[column].info.update(encrypted(aad, purge_after=purge_after, aad_columns=aad_columns))


@dataclass(frozen=True)
class EncryptedColumn:
    """One encrypted column, as rotation and retention see it."""

    table: str
    column: str
    pk: tuple[str, ...]
    aad: AadSpec = None
    purge_after: str | None = None
    nullable: bool = True
    aad_columns: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """Return 'table.column'."""
        return f"{self.table}.{self.column}"

    def aad_fields(self) -> tuple[str, ...]:
        """Return the row columns the associated data is built from."""
        import string

        if callable(self.aad):
            return self.aad_columns
        if not self.aad:
            return ()
        return tuple(f for _lit, f, _spec, _conv in string.Formatter().parse(self.aad) if f)

    def aad_for(self, row: Mapping[Any, Any]) -> bytes:
        """Return the associated data of one row."""
        if callable(self.aad):
            return self.aad(row)
        return self.aad.format(**row).encode("utf-8") if self.aad else b""


def _literal(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def encrypted_columns(metadata: Any, listed: Iterable[Any] = ()) -> list[EncryptedColumn]:
    """Return every encrypted column: those marked in `metadata`, and those an area lists.

    `listed` holds entries of the areas' `ENCRYPTED_COLUMNS` tuples: (table, column) — values bound
    to b"<table>.<column>" — or (table, column, aad template). Sorted by name, without duplicates.
    """
    found: dict[str, EncryptedColumn] = {}
    for table in metadata.tables.values():
        pk = tuple(c.name for c in table.primary_key.columns)
        for col in table.columns:
            spec = col.info.get(INFO_KEY)
            if spec is None:
                continue
            aad = spec.get("aad")
            if aad == TABLE_COLUMN_AAD:
                aad = _literal(f"{table.name}.{col.name}")
            found[f"{table.name}.{col.name}"] = EncryptedColumn(
                table.name,
                col.name,
                pk,
                aad,
                spec.get("purge_after"),
                bool(col.nullable),
                tuple(spec.get("aad_columns", ())),
            )
    for entry in listed:
        table_name, column = entry[0], entry[1]
        aad = entry[2] if len(entry) > 2 else _literal(f"{table_name}.{column}")
        if f"{table_name}.{column}" in found:
            continue
        table = metadata.tables.get(table_name)
        if table is None or column not in table.c:
            raise KeyError(f"an area lists {table_name}.{column} as encrypted, but there is no such column")
        pk = tuple(c.name for c in table.primary_key.columns)
        found[f"{table_name}.{column}"] = EncryptedColumn(
            table_name, column, pk, aad, None, bool(table.c[column].nullable)
        )
    return sorted(found.values(), key=lambda c: c.name)


def binary_columns(metadata: Any) -> list[tuple[str, str, tuple[str, ...]]]:
    """Return (table, column, pk) of every binary column: where unregistered encrypted values could hide."""
    from sqlalchemy import LargeBinary

    out = []
    for table in metadata.tables.values():
        pk = tuple(c.name for c in table.primary_key.columns)
        for col in table.columns:
            if isinstance(col.type, LargeBinary):
                out.append((table.name, col.name, pk))
    return sorted(out)


# ---------------------------------------------------------------------------------------------------
# The installation's signing key (Ed25519), for export manifests


def signing_key_path(settings: Settings) -> Path:
    """Return where the export-signing key is kept."""
    return settings.data_dir / "keys" / SIGNING_KEY_FILE


def load_signing_key(settings: Settings, *, create: bool = True) -> Ed25519PrivateKey:
    """Return the installation's Ed25519 key, creating it (owner-only) on first use."""
    path = signing_key_path(settings)
    if not path.exists():
        if not create:
            raise DataKeyError(f"no export-signing key at {path}")
        _private_dir(path.parent)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        try:
            os.link(tmp, path)  # never replaces a key another process created meanwhile
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        logger.info("created the export-signing key at %s (owner-only)", path)
    if path.stat().st_mode & 0o077:
        raise DataKeyError(f"{path} is readable by others; run: chmod 600 {path}")
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError:
        raise DataKeyError(f"{path} is not a valid PEM private key") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise DataKeyError(f"{path} is not an Ed25519 key")
    return loaded


def public_key_text(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """Return a public key as base64 of its 32 raw bytes (what manifests and auditors pin)."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def public_key_fingerprint(public_text: str) -> str:
    """Return a short fingerprint of a public key (SHA-256 of its raw bytes, 16 bytes, grouped)."""
    digest = hashlib.sha256(base64.b64decode(public_text)).hexdigest()[:32]
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


def parse_public_key(text: str) -> Ed25519PublicKey:
    """Read a public key given as base64 raw bytes or as a PEM block; raise ValueError otherwise."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode("ascii"))
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the public key is not base64") from None
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_signature(public_text: str, signature_b64: str, data: bytes) -> bool:
    """Return whether a base64 Ed25519 signature over data is valid for the public key."""
    try:
        parse_public_key(public_text).verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    """Return the base64 Ed25519 signature of data."""
    return base64.b64encode(key.sign(data)).decode("ascii")


def public_pem(key: Ed25519PrivateKey) -> str:
    """Return the public key as a PEM block (for tools such as openssl)."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def unknown_ids(ids: Iterable[str], cipher: DataCipher) -> list[str]:
    """Return those key ids the cipher cannot decrypt with."""
    return sorted(set(ids) - set(cipher.keys))
