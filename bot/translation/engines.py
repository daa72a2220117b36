"""What every engine shares: a CTranslate2 model loaded once, SentencePiece pieces in and out, batching."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot.translation.families import SPECIAL_TOKENS

logger = logging.getLogger(__name__)

#: (text, source language, target language) — one row of a batch
Row = tuple[str, str, str]


class EngineError(RuntimeError):
    """An engine could not load its model or translate (corrupt files, out of memory ...)."""


@dataclass(frozen=True)
class EngineOptions:
    """How engines run CTranslate2; built from the settings by the factory."""

    beam_size: int = 2
    intra_threads: int = 1
    inter_threads: int = 1
    compute_type: str = "default"
    device: str = "cpu"
    #: the output may be this many times longer than the input (in pieces) ...
    max_length_ratio: float = 3.0
    #: ... plus this many pieces, and never more than `max_length_cap`
    max_length_extra: int = 8
    max_length_cap: int = 400
    #: benchmark only: generate exactly this many tokens (min == max decoding length)
    fixed_length: int | None = None
    max_batch_size: int = 32


class Codec(Protocol):
    """Turns text into model pieces and back."""

    def encode(self, text: str) -> list[str]:
        """Return the pieces of `text`."""
        ...

    def decode(self, pieces: Sequence[str]) -> str:
        """Return the text of `pieces`."""
        ...


class SentencePieceCodec:
    """SentencePiece with optional separate source and target models (Marian has two).

    Unlike argostranslate's tokenizer, decoding keeps every `_` of the output: usernames, URLs and
    case tags would otherwise come back damaged.
    """

    def __init__(self, source_model: Path, target_model: Path | None = None) -> None:
        import sentencepiece

        self.source_model = source_model
        self.target_model = target_model or source_model
        self._source = sentencepiece.SentencePieceProcessor(model_file=str(source_model))
        self._target = (
            self._source
            if self.target_model == source_model
            else sentencepiece.SentencePieceProcessor(model_file=str(self.target_model))
        )

    def encode(self, text: str) -> list[str]:
        """Return the source pieces of `text`."""
        return list(self._source.encode(text, out_type=str))

    def decode(self, pieces: Sequence[str]) -> str:
        """Return the text of target pieces."""
        return str(self._target.decode_pieces(list(pieces)))


class Engine(Protocol):
    """One installed model that translates some directions."""

    kind: str
    name: str
    version: str
    path: Path

    @property
    def model_id(self) -> str:
        """Return "name@version", recorded with every translation."""
        ...

    def pairs(self) -> frozenset[tuple[str, str]]:
        """Return the (source, target) directions this engine translates directly."""
        ...

    def translate_rows(self, rows: Sequence[Row]) -> list[str]:
        """Translate sentences, each with its own direction, in as few model calls as possible."""
        ...

    def load(self) -> Any:
        """Load the model now (it is otherwise loaded on first use)."""
        ...


class CT2Engine:
    """Base of the engines: owns one `ctranslate2.Translator`, loaded once, thread-safe."""

    kind = "ct2"

    def __init__(self, name: str, version: str, path: Path, model_dir: Path, options: EngineOptions) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.model_dir = model_dir
        self.options = options
        self._translator: Any = None
        self._load_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        #: number of `translate_batch` calls and rows sent, for the logs and the tests
        self.batches = 0
        self.rows = 0
        #: seconds spent inside CTranslate2's translate_batch (the rest of a call is our own overhead)
        self.ct2_seconds = 0.0
        self.load_seconds: float | None = None

    @property
    def model_id(self) -> str:
        """Return "name@version", recorded with every translation."""
        return f"{self.name}@{self.version}"

    def pairs(self) -> frozenset[tuple[str, str]]:
        """Return the directions this engine serves."""
        raise NotImplementedError

    def codec(self) -> Codec:
        """Return the tokenizer of this model."""
        raise NotImplementedError

    def encode_row(self, text: str, source: str, target: str) -> tuple[list[str], list[str] | None]:
        """Return the encoder input and the decoder prefix for one sentence."""
        raise NotImplementedError

    def output_tokens_to_drop(self) -> frozenset[str]:
        """Return tokens never kept in an output (language tokens, specials)."""
        return SPECIAL_TOKENS

    def load(self) -> Any:
        """Load the CTranslate2 model once; later calls return the loaded one."""
        if self._translator is not None:
            return self._translator
        with self._load_lock:
            if self._translator is None:
                import ctranslate2

                started = time.perf_counter()
                try:
                    self.codec()
                    self._translator = ctranslate2.Translator(
                        str(self.model_dir),
                        device=self.options.device,
                        compute_type=self.options.compute_type,
                        inter_threads=self.options.inter_threads,
                        intra_threads=self.options.intra_threads,
                    )
                except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError/OSError variously
                    raise EngineError(
                        f"cannot load model {self.model_id} from {self.model_dir}: {exc}"
                    ) from exc
                self.load_seconds = time.perf_counter() - started
                logger.info(
                    "translation model %s (%s) loaded in %.2f s from %s",
                    self.model_id,
                    self.kind,
                    self.load_seconds,
                    self.model_dir,
                )
        return self._translator

    def close(self) -> None:
        """Drop the loaded model (its memory is freed once no translation uses it); it reloads on use."""
        with self._load_lock:
            self._translator = None

    def _max_length(self, sources: Sequence[Sequence[str]]) -> int:
        longest = max(len(s) for s in sources)
        o = self.options
        return min(o.max_length_cap, math.ceil(longest * o.max_length_ratio) + o.max_length_extra)

    def translate_rows(self, rows: Sequence[Row]) -> list[str]:
        """Translate sentences in one `translate_batch` call (rows may have different targets)."""
        if not rows:
            return []
        translator = self.load()
        codec = self.codec()
        encoded = [self.encode_row(text, source, target) for text, source, target in rows]
        sources = [e[0] for e in encoded]
        prefixes = [e[1] for e in encoded]
        prefix_len = max(len(p or ()) for p in prefixes)
        kwargs: dict[str, Any] = {
            "beam_size": self.options.beam_size,
            "max_batch_size": self.options.max_batch_size,
        }
        if self.options.fixed_length is not None:
            kwargs["max_decoding_length"] = self.options.fixed_length + prefix_len
            kwargs["min_decoding_length"] = self.options.fixed_length + prefix_len
        else:
            kwargs["max_decoding_length"] = self._max_length(sources) + prefix_len
        started = time.perf_counter()
        try:
            results = translator.translate_batch(
                sources, target_prefix=prefixes if prefix_len else None, **kwargs
            )
        except Exception as exc:
            raise EngineError(f"{self.model_id} failed to translate: {exc}") from exc
        spent = time.perf_counter() - started
        with self._stats_lock:
            self.batches += 1
            self.rows += len(rows)
            self.ct2_seconds += spent
        drop = self.output_tokens_to_drop()
        out = []
        for result, prefix in zip(results, prefixes, strict=True):
            tokens = list(result.hypotheses[0])
            if prefix and tokens[: len(prefix)] == prefix:
                tokens = tokens[len(prefix) :]
            out.append(codec.decode([t for t in tokens if t not in drop]).strip())
        return out
