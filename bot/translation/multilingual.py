"""Multilingual CTranslate2 models (NLLB-200, MADLAD-400, M2M-100, Marian/OPUS-MT) with a small manifest.

A model directory is what `ct2-transformers-converter` writes (model.bin, config.json, the
vocabulary) plus the SentencePiece model and `liaison-model.json`:

    {"format": 1, "family": "nllb", "name": "nllb-200-distilled-600M", "version": "ct2-int8-2024-05",
     "languages": ["zh", "lo", "vi", "en"], "license": "CC-BY-NC-4.0",
     "tokenizer": "sentencepiece.bpe.model"}

Optional keys: "target_tokenizer" (Marian's target.spm), "language_tokens" (override the family's,
e.g. {"vi": ">>vie<<"} for a multi-target OPUS-MT model), "directions" ([["zh", "vi"]] for a
bilingual model), "source" (where it came from). `liaison models install DIR --family ...` writes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tarfile
import uuid
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.translation.base import LANGUAGES
from bot.translation.engines import Codec, CT2Engine, EngineOptions, SentencePieceCodec
from bot.translation.families import SPECIAL_TOKENS, Family, get_family

logger = logging.getLogger(__name__)

MANIFEST = "liaison-model.json"
MULTILINGUAL_SUBDIR = "multilingual"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar", ".zip")


class ModelError(ValueError):
    """A directory or archive is not a usable multilingual model."""


@dataclass(frozen=True)
class Manifest:
    """What `liaison-model.json` says about a model directory."""

    family: str
    name: str
    version: str
    languages: tuple[str, ...]
    license: str = "unknown"
    tokenizer: str = ""
    target_tokenizer: str = ""
    language_tokens: Mapping[str, str] = field(default_factory=dict)
    directions: tuple[tuple[str, str], ...] = ()
    source: str = ""
    format: int = 1

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """Read and check the manifest of a model directory."""
        path = directory / MANIFEST
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{directory}: no {MANIFEST}") from None
        except json.JSONDecodeError as exc:
            raise ModelError(f"{path}: not valid JSON ({exc})") from None
        try:
            get_family(str(raw["family"]))
            return cls(
                family=str(raw["family"]).lower(),
                name=str(raw["name"]),
                version=str(raw["version"]),
                languages=tuple(str(x) for x in raw.get("languages", ())),
                license=str(raw.get("license", "unknown")),
                tokenizer=str(raw.get("tokenizer", "")),
                target_tokenizer=str(raw.get("target_tokenizer", "") or ""),
                language_tokens={str(k): str(v) for k, v in (raw.get("language_tokens") or {}).items()},
                directions=tuple((str(a), str(b)) for a, b in raw.get("directions") or ()),
                source=str(raw.get("source", "")),
                format=int(raw.get("format", 1)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path}: {exc}") from None

    def write(self, directory: Path) -> None:
        """Write this manifest into a model directory."""
        data = asdict(self)
        data["languages"] = list(self.languages)
        data["directions"] = [list(d) for d in self.directions]
        data["language_tokens"] = dict(self.language_tokens)
        (directory / MANIFEST).write_text(
            json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )

    def family_spec(self) -> Family:
        """Return the family this model belongs to."""
        return get_family(self.family)

    def tokens(self) -> dict[str, str]:
        """Return the language tokens: the family's, overridden by the manifest's."""
        return {**self.family_spec().language_tokens, **self.language_tokens}

    def pairs(self) -> frozenset[tuple[str, str]]:
        """Return the directions between the bot's languages that this model serves."""
        if self.directions:
            return frozenset(
                (a, b) for a, b in self.directions if a in LANGUAGES and b in LANGUAGES and a != b
            )
        langs = [lang for lang in self.languages if lang in LANGUAGES]
        return frozenset((a, b) for a in langs for b in langs if a != b)


def _vocabulary(directory: Path, side: str) -> set[str] | None:
    for name in (f"{side}_vocabulary.json", "shared_vocabulary.json"):
        path = directory / name
        if path.exists():
            return set(json.loads(path.read_text(encoding="utf-8")))
    for name in (f"{side}_vocabulary.txt", "shared_vocabulary.txt"):
        path = directory / name
        if path.exists():
            return set(path.read_text(encoding="utf-8").splitlines())
    return None


def find_tokenizer(directory: Path, family: Family) -> tuple[str, str]:
    """Return the (source, target) tokenizer file names the family's converter leaves in `directory`."""
    source = next((f for f in family.tokenizer_files if (directory / f).exists()), "")
    target = next((f for f in family.target_tokenizer_files if (directory / f).exists()), "")
    if not source:
        raise ModelError(
            f"{directory}: no SentencePiece model (looked for {', '.join(family.tokenizer_files)}); "
            "copy it from the original model next to model.bin"
        )
    return source, target


def check_model_dir(directory: Path, manifest: Manifest) -> None:
    """Check that the model, its tokenizer and every language token it needs are there."""
    if not (directory / "model.bin").exists():
        raise ModelError(
            f"{directory}: no model.bin (convert the model with ct2-transformers-converter first)"
        )
    for name in filter(None, (manifest.tokenizer, manifest.target_tokenizer)):
        path = directory / name
        if not path.exists():
            raise ModelError(f"{directory}: tokenizer {name} named in {MANIFEST} is missing")
        try:
            SentencePieceCodec(path)
        except (OSError, RuntimeError) as exc:
            raise ModelError(f"{path}: not a SentencePiece model ({exc})") from None
    if not manifest.pairs():
        raise ModelError(f"{directory}: the model serves none of {', '.join(LANGUAGES)} in two directions")
    tokens = manifest.tokens()
    family = manifest.family_spec()
    needed_langs = {lang for pair in manifest.pairs() for lang in pair}
    if family.name != "marian":
        missing_token = [lang for lang in needed_langs if lang not in tokens]
        if missing_token:
            raise ModelError(f"{directory}: no language token for {', '.join(sorted(missing_token))}")
    source_vocab = _vocabulary(directory, "source")
    target_vocab = _vocabulary(directory, "target")
    for lang in sorted(needed_langs):
        token = tokens.get(lang)
        if token is None:
            continue
        # NLLB / M2M-100: the token starts the decoder and the source; MADLAD / Marian: only the source.
        sides = [("target", target_vocab)] if family.target_token_in_prefix else [("source", source_vocab)]
        if family.target_token_in_prefix and family.source_language_token:
            sides.append(("source", source_vocab))
        for side, vocab in sides:
            if vocab is not None and token not in vocab:
                raise ModelError(
                    f"{directory}: language token {token!r} ({lang}) is not in the model's {side} vocabulary"
                )


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def make_manifest(
    directory: Path,
    family: str,
    *,
    name: str | None = None,
    version: str | None = None,
    languages: Iterable[str] | None = None,
    license: str | None = None,
    directions: Iterable[tuple[str, str]] | None = None,
) -> Manifest:
    """Build a manifest for a converted model directory; the version defaults to a digest of model.bin."""
    spec = get_family(family)
    tokenizer, target_tokenizer = find_tokenizer(directory, spec)
    if not (directory / "model.bin").exists():
        raise ModelError(f"{directory}: no model.bin")
    langs = (
        tuple(languages) if languages else tuple(lang for lang in LANGUAGES if lang in spec.language_tokens)
    )
    pairs = tuple(directions or ())
    if spec.name == "marian" and not pairs:
        raise ModelError("a Marian (OPUS-MT) model needs --direction SRC-TGT (e.g. zh-vi)")
    return Manifest(
        family=spec.name,
        name=name or directory.name,
        version=version or ("sha256-" + _digest(directory / "model.bin")),
        languages=langs or tuple(sorted({lang for pair in pairs for lang in pair})),
        license=license or "unknown",
        tokenizer=tokenizer,
        target_tokenizer=target_tokenizer,
        directions=pairs,
    )


def _extract_archive(source: Path, dest: Path) -> None:
    name = source.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(source) as archive:
            root = dest.resolve()
            for member in archive.infolist():
                if root not in (dest / member.filename).resolve().parents:
                    raise ModelError(f"archive member escapes the model folder: {member.filename!r}")
            archive.extractall(dest)
    else:
        with tarfile.open(source) as archive:
            archive.extractall(dest, filter="data")


def _model_root(staging: Path) -> Path:
    hits = [p.parent for p in staging.rglob("model.bin")]
    if len(hits) != 1:
        raise ModelError(f"expected exactly one model.bin in the archive, found {len(hits)}")
    return hits[0]


def install_model(
    models_dir: Path,
    source: Path,
    *,
    family: str | None = None,
    **manifest_fields: Any,
) -> tuple[Manifest, Path]:
    """Install a model directory or archive under `<models_dir>/multilingual/<name>`; return its manifest."""
    staging = models_dir / ".staging" / uuid.uuid4().hex
    staging.mkdir(parents=True)
    try:
        if source.is_dir():
            work = staging / "model"
            shutil.copytree(source, work)
        elif source.name.lower().endswith(ARCHIVE_SUFFIXES):
            _extract_archive(source, staging / "x")
            work = _model_root(staging / "x")
        else:
            raise ModelError(
                f"{source}: not a model directory, an .argosmodel or an archive "
                f"({', '.join(ARCHIVE_SUFFIXES)})"
            )
        if family is not None:
            manifest = make_manifest(work, family, **{k: v for k, v in manifest_fields.items() if v})
            manifest.write(work)
        manifest = Manifest.read(work)
        check_model_dir(work, manifest)
        root = models_dir / MULTILINGUAL_SUBDIR
        root.mkdir(parents=True, exist_ok=True)
        final = root / manifest.name.replace("/", "_")
        if final.exists():
            logger.info("replacing model %s", final)
            shutil.rmtree(final)
        shutil.move(str(work), final)
        logger.info("installed %s model %s@%s -> %s", manifest.family, manifest.name, manifest.version, final)
        return manifest, final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def installed_models(models_dir: Path) -> list[tuple[Manifest, Path]]:
    """Return the installed multilingual models, skipping broken ones with a warning."""
    root = models_dir / MULTILINGUAL_SUBDIR
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.iterdir()):
        if path.is_dir() and not path.name.startswith("."):
            try:
                out.append((Manifest.read(path), path))
            except ModelError as exc:
                logger.warning("ignoring %s", exc)
    return out


class MultilingualEngine(CT2Engine):
    """One multilingual model: every direction it knows, all targets of a message in one batch."""

    def __init__(self, manifest: Manifest, path: Path, options: EngineOptions) -> None:
        super().__init__(manifest.name, manifest.version, path, path, options)
        self.manifest = manifest
        self.family = manifest.family_spec()
        self.kind = self.family.name
        self._tokens = manifest.tokens()
        self._codec: Codec | None = None
        self._drop = SPECIAL_TOKENS | frozenset(self._tokens.values())

    def pairs(self) -> frozenset[tuple[str, str]]:
        """Return the directions named by the manifest."""
        return self.manifest.pairs()

    def codec(self) -> Codec:
        """Return the SentencePiece codec named by the manifest."""
        if self._codec is None:
            target = self.path / self.manifest.target_tokenizer if self.manifest.target_tokenizer else None
            self._codec = SentencePieceCodec(self.path / self.manifest.tokenizer, target)
        return self._codec

    def encode_row(self, text: str, source: str, target: str) -> tuple[list[str], list[str] | None]:
        """Return the family's encoder input and target prefix for one sentence."""
        pieces = self.codec().encode(text)
        return (
            self.family.source_tokens(pieces, source, target, self._tokens),
            self.family.target_prefix(target, self._tokens),
        )

    def output_tokens_to_drop(self) -> frozenset[str]:
        """Return special and language tokens."""
        return self._drop
