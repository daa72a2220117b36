"""Argos Translate packages (`.argosmodel`), read with argostranslate's package code, run on CTranslate2.

Deliberate choices (see the README's translation section):
- Only `argostranslate.package` is imported, inside functions. `argostranslate.translate` imports
  torch, stanza, spaCy and onnxruntime (about 2 s and 320 MB) and its default sentence splitter
  (MiniSBD) downloads a model on first use; we split sentences ourselves (`splitter.py`).
- `argostranslate.package.install_from_path` extracts into the directory that argostranslate read
  from ARGOS_PACKAGES_DIR when it was imported, then imports `argostranslate.translate` to clear a
  cache. We extract into `<models_dir>/argos/` ourselves, under argostranslate's own `package_lock`,
  and let `argostranslate.package.Package` read and check what we extracted.
- Decoding is our own SentencePiece call: argostranslate's decoder turns every `_` into a space.
"""

from __future__ import annotations

import logging
import shutil
import uuid
import zipfile
from pathlib import Path
from typing import Any

from bot.translation.base import LANGUAGES
from bot.translation.engines import Codec, CT2Engine, EngineOptions, SentencePieceCodec

logger = logging.getLogger(__name__)

ARGOS_SUBDIR = "argos"


class PackageError(ValueError):
    """A file is not a usable Argos package."""


def _argos_package_module() -> Any:
    # Imported late: importing it creates argostranslate's folders in $HOME and reads its env vars.
    from argostranslate import package

    return package


def read_package(directory: Path) -> Any:
    """Return argostranslate's `Package` for an extracted package directory, or raise PackageError."""
    try:
        pkg = _argos_package_module().Package(directory)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise PackageError(f"{directory} is not an Argos package: {exc}") from None
    if pkg.type not in ("translate", None):
        raise PackageError(f"{directory}: Argos package of type {pkg.type!r}, only 'translate' is used")
    if not pkg.from_code or not pkg.to_code:
        raise PackageError(f"{directory}: metadata.json names no from_code/to_code")
    if not (directory / "model" / "model.bin").exists():
        raise PackageError(f"{directory}: no CTranslate2 model in model/")
    if getattr(pkg, "tokenizer", None) is None:
        raise PackageError(f"{directory}: no sentencepiece.model or bpe.model")
    return pkg


def installed_packages(models_dir: Path) -> list[Any]:
    """Return the Argos packages installed under `<models_dir>/argos`, skipping broken ones with a warning."""
    root = models_dir / ARGOS_SUBDIR
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.iterdir()):
        if not path.is_dir() or path.name.startswith("."):
            continue
        try:
            out.append(read_package(path))
        except PackageError as exc:
            logger.warning("ignoring %s", exc)
    return out


def package_label(pkg: Any) -> str:
    """Return the name shown for a package, e.g. "translate-zh_en"."""
    return str(pkg.code or f"translate-{pkg.from_code}_{pkg.to_code}")


def _safe_extract(archive: zipfile.ZipFile, dest: Path) -> None:
    root = dest.resolve()
    for member in archive.infolist():
        target = (dest / member.filename).resolve()
        if root not in target.parents and target != root:
            raise PackageError(f"archive member escapes the package folder: {member.filename!r}")
        if (member.external_attr >> 16) & 0o170000 == 0o120000:
            raise PackageError(f"archive member is a symbolic link: {member.filename!r}")
    archive.extractall(dest)


def install_package(models_dir: Path, source: Path) -> Any:
    """Install an `.argosmodel` file or an extracted package folder; replace an older one of the same pair."""
    root = models_dir / ARGOS_SUBDIR
    staging = models_dir / ".staging" / uuid.uuid4().hex
    staging.mkdir(parents=True)
    lock = _argos_package_module().package_lock
    try:
        with lock:
            if source.is_dir():
                shutil.copytree(source, staging / source.name)
            else:
                if not zipfile.is_zipfile(source):
                    raise PackageError(f"{source} is not an Argos package (not a zip archive)")
                with zipfile.ZipFile(source) as archive:
                    _safe_extract(archive, staging)
            candidates = (
                [staging]
                if (staging / "metadata.json").exists()
                else [p for p in staging.iterdir() if p.is_dir() and (p / "metadata.json").exists()]
            )
            if len(candidates) != 1:
                raise PackageError(f"{source}: expected one package folder with a metadata.json")
            pkg = read_package(candidates[0])
            folder = f"translate-{pkg.from_code}_{pkg.to_code}-{pkg.package_version or '0'}".replace(".", "_")
            root.mkdir(parents=True, exist_ok=True)
            for old in installed_packages(models_dir):
                if (old.from_code, old.to_code) == (pkg.from_code, pkg.to_code):
                    logger.info("replacing Argos package %s %s", package_label(old), old.package_version)
                    shutil.rmtree(old.package_path)
            final = root / folder
            if final.exists():
                shutil.rmtree(final)
            shutil.move(str(candidates[0]), final)
        logger.info("installed Argos package %s -> %s", source, final)
        return read_package(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_package(pkg: Any) -> None:
    """Delete an installed package folder (under argostranslate's package lock)."""
    with _argos_package_module().package_lock:
        shutil.rmtree(pkg.package_path)


class ArgosEngine(CT2Engine):
    """One Argos package: one direction, its CTranslate2 model and its tokenizer."""

    kind = "argos"

    def __init__(self, pkg: Any, options: EngineOptions) -> None:
        super().__init__(
            package_label(pkg),
            str(pkg.package_version or "0"),
            Path(pkg.package_path),
            Path(pkg.package_path) / "model",
            options,
        )
        self.pkg = pkg
        self.source_lang = str(pkg.from_code)
        self.target_lang = str(pkg.to_code)
        self.prefix = [pkg.target_prefix] if getattr(pkg, "target_prefix", "") else None
        self._codec: Codec | None = None

    def pairs(self) -> frozenset[tuple[str, str]]:
        """Return the package's direction when both languages are ones the bot speaks."""
        if self.source_lang in LANGUAGES and self.target_lang in LANGUAGES:
            return frozenset({(self.source_lang, self.target_lang)})
        return frozenset()

    def codec(self) -> Codec:
        """Return our SentencePiece codec, or argostranslate's BPE tokenizer for BPE packages."""
        if self._codec is None:
            sp_model = Path(self.pkg.package_path) / "sentencepiece.model"
            self._codec = SentencePieceCodec(sp_model) if sp_model.exists() else self.pkg.tokenizer
        return self._codec

    def encode_row(self, text: str, source: str, target: str) -> tuple[list[str], list[str] | None]:
        """Return the pieces of a sentence (Argos models take no language tokens) and the package's prefix."""
        return self.codec().encode(text), self.prefix

    def output_tokens_to_drop(self) -> frozenset[str]:
        """Return the special tokens and the package's target prefix."""
        extra = frozenset(self.prefix or ())
        return super().output_tokens_to_drop() | extra
