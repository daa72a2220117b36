"""Builds real CTranslate2 models with random weights and real SentencePiece tokenizers, on the spot.

Used by the translation tests (tiny models) and by benchmarks/bench_translation.py (deployment-sized
ones). Random weights give nonsense but deterministic output: what is tested is the plumbing.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

FAMILY_TOKENS = {
    "nllb": ["zho_Hans", "lao_Laoo", "vie_Latn", "eng_Latn"],
    "m2m100": ["__zh__", "__lo__", "__vi__", "__en__"],
    "madlad": ["<2zh>", "<2lo>", "<2vi>", "<2en>"],
    "marian": [">>cmn_Hans<<", ">>lao<<", ">>vie<<", ">>eng<<"],
}
FAMILY_TOKENIZER = {
    "nllb": "sentencepiece.bpe.model",
    "m2m100": "sentencepiece.bpe.model",
    "madlad": "spiece.model",
    "marian": "source.spm",
}

CORPUS = [
    "The officers seized pangolin scales and ivory at the border crossing.",
    "Please send the photos of the truck and the container number before noon.",
    "We arrested two suspects with rhino horn, tiger bone and bear bile.",
    "Rosewood logs were found in a warehouse near the river.",
    "海关在边境查获了穿山甲鳞片和象牙。",
    "请在中午之前发送卡车照片和集装箱号码。",
    "我们抓获了两名携带犀牛角、虎骨和熊胆的犯罪嫌疑人。",
    "ເຈົ້າໜ້າທີ່ໄດ້ຍຶດເກັດລີ່ນ ແລະ ງາຊ້າງຢູ່ດ່ານຊາຍແດນ.",
    "ກະລຸນາສົ່ງຮູບລົດບັນທຸກ ແລະ ເລກຕູ້ຄອນເທນເນີກ່ອນທ່ຽງ.",
    "ພວກເຮົາໄດ້ຈັບກຸມຜູ້ຕ້ອງສົງໄສສອງຄົນພ້ອມນໍແຮດ ແລະ ກະດູກເສືອ.",
    "Lực lượng chức năng đã thu giữ vảy tê tê và ngà voi tại cửa khẩu.",
    "Vui lòng gửi ảnh xe tải và số container trước buổi trưa.",
    "Chúng tôi đã bắt giữ hai nghi phạm mang sừng tê giác, xương hổ và mật gấu.",
    "{0} {1} {2} {3} 0123456789 @ # - _ / : . , ! ?",
]


def train_sentencepiece(path: Path, sentences: Iterable[str] = CORPUS, vocab_size: int = 400) -> Path:
    """Train a small SentencePiece model on `sentences` and write it to `path`."""
    import sentencepiece

    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(list(sentences) * 4),
        model_writer=buffer,
        vocab_size=vocab_size,
        character_coverage=1.0,
        hard_vocab_limit=False,
        model_type="unigram",
        minloglevel=2,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path


def sp_vocabulary(sp_model: Path) -> list[str]:
    """Return the pieces of a SentencePiece model in id order (<unk>, <s>, </s> first)."""
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(sp_model))
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def padded(vocab: Sequence[str], size: int | None) -> list[str]:
    """Return `vocab` filled up to `size` entries with filler tokens (deployment-sized vocabularies)."""
    vocab = list(vocab)
    if size is not None and size > len(vocab):
        vocab += [f"<extra_{i}>" for i in range(size - len(vocab))]
    return vocab


def _shape(name: str, d: int, ffn: int, src_vocab: int, tgt_vocab: int) -> tuple[int, ...]:
    parts = name.split("/")
    parent = parts[-2]
    if parent.startswith("embeddings"):
        return (src_vocab if parts[0] == "encoder" else tgt_vocab, d)
    if parent == "projection":
        return (tgt_vocab, d)
    if "layer_norm" in parent:
        return (d,)
    block = parts[-3]
    if block == "self_attention":
        return {"linear_0": (3 * d, d), "linear_1": (d, d)}[parent]
    if block == "attention":
        return {"linear_0": (d, d), "linear_1": (2 * d, d), "linear_2": (d, d)}[parent]
    if block == "ffn":
        return {"linear_0": (ffn, d), "linear_1": (d, ffn)}[parent]
    raise KeyError(name)


def _set(spec: object, name: str, value: np.ndarray) -> None:
    obj = spec
    parts = name.split("/")
    for part in parts[:-1]:
        base, _, index = part.rpartition("_")
        if index.isdigit() and isinstance(getattr(obj, base, None), list):
            obj = getattr(obj, base)[int(index)]
        else:
            obj = getattr(obj, part)
    setattr(obj, parts[-1], value)


def build_transformer(
    out_dir: Path,
    source_vocab: Sequence[str],
    target_vocab: Sequence[str] | None = None,
    *,
    layers: tuple[int, int] = (2, 2),
    heads: int = 4,
    d_model: int = 64,
    ffn: int = 128,
    seed: int = 0,
    quantization: str = "int8",
    shared_embeddings: bool = False,
) -> Path:
    """Build a Transformer with random weights and save it as a CTranslate2 model directory.

    `shared_embeddings` uses one matrix for both embeddings and the output projection (as NLLB does);
    CTranslate2 then stores it once.
    """
    import ctranslate2.specs as specs

    target_vocab = list(target_vocab) if target_vocab is not None else list(source_vocab)
    spec = specs.TransformerSpec.from_config(layers, heads, pre_norm=True)
    rng = np.random.default_rng(seed)
    shared: np.ndarray | None = None
    if shared_embeddings:
        if list(target_vocab) != list(source_vocab):
            raise ValueError("shared embeddings need one vocabulary")
        shared = rng.standard_normal((len(source_vocab), d_model), dtype=np.float32)
        shared *= np.float32(1.0 / np.sqrt(d_model))
    for name, value in spec.variables(ordered=True):
        if value is not None:
            continue
        shape = _shape(name, d_model, ffn, len(source_vocab), len(target_vocab))
        if shared is not None and (name.endswith("projection/weight") or "embeddings" in name):
            array = shared
        elif name.endswith("gamma"):
            array = np.ones(shape, np.float32)
        elif name.endswith("beta"):
            array = np.zeros(shape, np.float32)
        else:
            array = rng.standard_normal(shape, dtype=np.float32) * np.float32(1.0 / np.sqrt(d_model))
        _set(spec, name, array)
    spec.register_source_vocabulary(list(source_vocab))
    spec.register_target_vocabulary(target_vocab)
    spec.validate()
    spec.optimize(quantization=quantization)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec.save(str(out_dir))
    return out_dir


def argos_package(
    out_file: Path,
    from_code: str,
    to_code: str,
    sp_model: Path,
    *,
    version: str = "1.0",
    seed: int = 0,
    vocab_size: int | None = None,
    **model_kwargs: object,
) -> Path:
    """Build an `.argosmodel` zip (metadata.json, model/, sentencepiece.model) for one direction."""
    work = out_file.parent / f".build-{out_file.stem}"
    folder = work / f"translate-{from_code}_{to_code}-{version.replace('.', '_')}"
    vocab = padded(sp_vocabulary(sp_model), vocab_size)
    build_transformer(folder / "model", vocab, seed=seed, **model_kwargs)  # type: ignore[arg-type]
    shutil.copy(sp_model, folder / "sentencepiece.model")
    metadata = {
        "package_version": version,
        "argos_version": "1.9",
        "from_code": from_code,
        "to_code": to_code,
        "from_name": from_code,
        "to_name": to_code,
        "license": "CC0 (test model)",
    }
    (folder / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    (folder / "README.md").write_text("Test package with random weights.\n", encoding="utf-8")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_file, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(work))
    shutil.rmtree(work)
    return out_file


def multilingual_model(
    out_dir: Path,
    family: str,
    sp_model: Path,
    *,
    name: str | None = None,
    version: str = "test-1",
    languages: Sequence[str] = ("zh", "lo", "vi", "en"),
    seed: int = 0,
    manifest: bool = True,
    directions: Sequence[tuple[str, str]] = (),
    language_tokens: dict[str, str] | None = None,
    vocab_size: int | None = None,
    **model_kwargs: object,
) -> Path:
    """Build a converted-model directory of a family (+ its tokenizer file and, optionally, manifest)."""
    pieces = sp_vocabulary(sp_model)
    extra = [t for t in FAMILY_TOKENS[family] if t not in pieces]
    vocab = padded(pieces + extra, vocab_size)
    build_transformer(out_dir, vocab, seed=seed, **model_kwargs)  # type: ignore[arg-type]
    shutil.copy(sp_model, out_dir / FAMILY_TOKENIZER[family])
    if family == "marian":
        shutil.copy(sp_model, out_dir / "target.spm")
    if manifest:
        data = {
            "format": 1,
            "family": family,
            "name": name or f"tiny-{family}",
            "version": version,
            "languages": list(languages),
            "license": "CC0 (test model)",
            "tokenizer": FAMILY_TOKENIZER[family],
            "target_tokenizer": "target.spm" if family == "marian" else "",
            "directions": [list(d) for d in directions],
            "language_tokens": language_tokens or {},
        }
        (out_dir / "liaison-model.json").write_text(json.dumps(data), encoding="utf-8")
    return out_dir
