"""Translation benchmark: the bot's engine against raw CTranslate2 on deployment-sized synthetic models.

Builds, on the spot, random-weight int8 models of two realistic shapes:
  base  Transformer-base as in an Argos package (6+6 layers, d_model 512, ffn 2048, 32k vocabulary);
        two packages, zh>en and zh>vi, as the bot would run them
  nllb  NLLB-200-distilled-600M shape (12+12 layers, d_model 1024, ffn 4096, 256k vocabulary),
        one multilingual model for both targets
and measures, each in a fresh process: load time and RSS; latency of one ~20-token chat message into
two target languages; batch throughput (32 messages). The engine runs with its translation memory
off, and both paths decode exactly the same number of tokens (min == max decoding length).

Usage: .venv/bin/python benchmarks/bench_translation.py [--models base,nllb] [--workdir DIR] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "translation"))

FLORES = ROOT.parent / "shared" / "data" / "flores"
OUTPUT_TOKENS = 30
MESSAGE_PIECES = 20
BATCH = 32
THREADS = max(1, os.cpu_count() or 1)
BEAM = 2

SHAPES: dict[str, dict[str, Any]] = {
    "base": {"layers": (6, 6), "heads": 8, "d_model": 512, "ffn": 2048, "vocab_size": 32_000},
    "nllb": {"layers": (12, 12), "heads": 16, "d_model": 1024, "ffn": 4096, "vocab_size": 256_206},
}


def rss_mb() -> tuple[float, float]:
    """Return (current RSS, peak RSS) of this process in MB."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":")
            values[key] = int(value.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def dir_mb(path: Path) -> float:
    """Return the size of a folder in MB."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def corpus() -> list[str]:
    """Return training sentences for the tokenizer: FLORES when present, else the test corpus."""
    import modelkit

    if FLORES.is_dir():
        lines: list[str] = []
        for name in ("zho_Hans", "lao_Laoo", "vie_Latn", "eng_Latn"):
            lines += (FLORES / f"{name}.dev").read_text(encoding="utf-8").splitlines()
        return lines
    return list(modelkit.CORPUS)


def build(workdir: Path, kinds: list[str]) -> None:
    """Build the tokenizer and the models, and install them into one models folder per shape."""
    import modelkit

    from bot.translation.registry import install

    started = time.perf_counter()
    sp_model = workdir / "bench.spm"
    if not sp_model.exists():
        modelkit.train_sentencepiece(sp_model, corpus(), vocab_size=8000)
    for kind in kinds:
        models_dir = workdir / kind / "models"
        if models_dir.exists():
            continue
        shape = dict(SHAPES[kind])
        if kind == "base":
            for seed, (src, tgt) in enumerate([("zh", "en"), ("zh", "vi")]):
                pkg = modelkit.argos_package(
                    workdir / kind / f"{src}_{tgt}.argosmodel",
                    src,
                    tgt,
                    sp_model,
                    seed=seed,
                    shared_embeddings=True,
                    **shape,
                )
                install(models_dir, pkg)
                pkg.unlink()
        else:
            model = modelkit.multilingual_model(
                workdir / kind / "build",
                "nllb",
                sp_model,
                name="bench-nllb",
                seed=7,
                shared_embeddings=True,
                **shape,
            )
            install(models_dir, model)
            shutil.rmtree(model)
        sys.stderr.write(f"built {kind} in {time.perf_counter() - started:.0f} s\n")


def messages(engine: Any, count: int) -> list[str]:
    """Return `count` distinct chat messages of about 20 pieces with nothing to protect."""
    from bot.translation.glossary import load_glossary
    from bot.translation.protect import find_protected
    from bot.translation.splitter import split_sentences

    glossary = load_glossary(None)
    codec = engine.codec()
    source = (FLORES / "zho_Hans.dev").read_text(encoding="utf-8").splitlines() if FLORES.is_dir() else []
    source += ["请在中午之前发送卡车照片和集装箱号码", "我们今天下午在边境口岸等待你们的回复"] * count
    out: list[str] = []
    for line in source:
        text = codec.decode(codec.encode(line)[:MESSAGE_PIECES]).strip()
        if (
            text
            and text not in out
            and not find_protected(text)
            and not glossary.find(text, "zh", ["en", "vi"])
            and len(split_sentences(text, "zh")) == 1
        ):
            out.append(text)
        if len(out) == count:
            break
    while len(out) < count:  # synthetic fallback without FLORES: vary the message
        out.append(out[len(out) % 2] + "吗"[: len(out) % 2])
    return out


def child_load(workdir: Path, kind: str, mode: str) -> dict[str, Any]:
    """Load the models of one shape either raw or through the engine; report time and RSS."""
    import ctranslate2

    from bot.config import Settings
    from bot.translation.factory import build_translator

    models_dir = workdir / kind / "models"
    model_dirs = (
        [p / "model" for p in sorted((models_dir / "argos").glob("*"))]
        if kind == "base"
        else [p for p in sorted((models_dir / "multilingual").glob("*"))]
    )
    import sentencepiece  # noqa: F401  (imported by both paths; keep it out of the load figure)

    before, _ = rss_mb()
    started = time.perf_counter()
    if mode == "raw":
        keep = [ctranslate2.Translator(str(d), inter_threads=1, intra_threads=THREADS) for d in model_dirs]
    else:
        settings = Settings(
            data_dir=workdir / "data",
            database_url="sqlite://",
            models_dir=models_dir,
            translation_threads=THREADS,
            translation_beam_size=BEAM,
        )
        keep = [build_translator(settings, preload=True)]
    seconds = time.perf_counter() - started
    after, _ = rss_mb()
    del keep
    return {"load_s": seconds, "rss_mb": after - before, "disk_mb": sum(dir_mb(d) for d in model_dirs)}


def child_speed(workdir: Path, kind: str, runs: int) -> dict[str, Any]:
    """Time one message into two languages and a batch of 32, engine against raw, interleaved."""
    from bot.config import Settings
    from bot.translation.factory import build_translator, engine_options
    from bot.translation.offline import OfflineTranslator

    settings = Settings(
        data_dir=workdir / "data",
        database_url="sqlite://",
        models_dir=workdir / kind / "models",
        translation_threads=THREADS,
        translation_beam_size=BEAM,
    )
    options = engine_options(settings, fixed_length=OUTPUT_TOKENS)
    translator = build_translator(settings, memory_entries=0, options=options, preload=True)
    assert isinstance(translator, OfflineTranslator)
    targets = ["en", "vi"] if kind == "base" else ["lo", "vi"]
    hops = {t: (translator.route("zh", t) or ())[0] for t in targets}
    texts = messages(hops[targets[0]].engine, BATCH + 1)
    message, batch = texts[0], texts[1:]

    # Raw CTranslate2 gets exactly the token lists the engine builds, grouped per model as the engine does.
    def raw_calls(
        items: list[str], langs: list[str]
    ) -> list[tuple[Any, list[list[str]], list[Any] | None, int]]:
        calls = []
        for engine in dict.fromkeys(hops[t].engine for t in langs):
            rows = [
                engine.encode_row(text, "zh", t) for t in langs if hops[t].engine is engine for text in items
            ]
            prefixes = [r[1] for r in rows]
            plen = max(len(p or ()) for p in prefixes)
            calls.append((engine.load(), [r[0] for r in rows], prefixes if plen else None, plen))
        return calls

    def run_raw(calls: list[tuple[Any, list[list[str]], list[Any] | None, int]]) -> float:
        started = time.perf_counter()
        for translator_, sources, prefixes, plen in calls:
            translator_.translate_batch(
                sources,
                target_prefix=prefixes,
                beam_size=BEAM,
                max_batch_size=32,
                min_decoding_length=OUTPUT_TOKENS + plen,
                max_decoding_length=OUTPUT_TOKENS + plen,
            )
        return time.perf_counter() - started

    engines = list(dict.fromkeys(h.engine for h in hops.values()))

    def run_engine(items: list[str], langs: list[str]) -> tuple[float, float]:
        """Return (wall time of the engine call, time of it spent inside CTranslate2)."""
        inside = sum(e.ct2_seconds for e in engines)
        started = time.perf_counter()
        results = translator.translate_many(items, "zh", langs)
        elapsed = time.perf_counter() - started
        assert all(r[t].translated for r in results for t in langs)
        return elapsed, sum(e.ct2_seconds for e in engines) - inside

    one_calls = raw_calls([message], targets)
    batch_calls = raw_calls(batch, targets[:1])
    source_tokens = len(one_calls[0][1][0])
    for _ in range(2):  # warm-up
        run_raw(one_calls)
        run_engine([message], targets)
    def measure(calls: Any, items: list[str], langs: list[str]) -> dict[str, float]:
        raw, engine, own = [], [], []
        for i in range(runs):  # interleaved, in alternating order, so bursts of other work hit both alike
            if i % 2:
                raw.append(run_raw(calls))
            elapsed, inside = run_engine(items, langs)
            engine.append(elapsed)
            own.append(elapsed - inside)
            if not i % 2:
                raw.append(run_raw(calls))
        return {
            "raw": statistics.median(raw),
            "engine": statistics.median(engine),
            "raw_best": min(raw),
            "engine_best": min(engine),
            # The machine is shared: the median of the paired ratios resists bursts of other work ...
            "paired": statistics.median(e / r for e, r in zip(engine, raw, strict=True)) - 1,
            # ... and the engine's own work (everything outside translate_batch) is timed directly.
            "own": statistics.median(own),
        }

    one = measure(one_calls, [message], targets)
    bat = measure(batch_calls, batch, targets[:1])
    _, peak = rss_mb()
    return {"targets": targets, "source_tokens": source_tokens, "one": one, "batch": bat,
            "peak_rss_mb": peak, "runs": runs}


def run_child(args: list[str]) -> dict[str, Any]:
    """Run this script in a fresh process and return the JSON it prints."""
    proc = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    """Build the models, measure each in fresh processes, print the table."""
    global BEAM
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="base,nllb")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--beam", type=int, default=BEAM, help="beam size (the bot's default is 2)")
    parser.add_argument("--keep", action="store_true", help="keep the built models in --workdir")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="liaison-bench-"))
    BEAM = args.beam
    if args.child:
        kind, mode = args.child
        result = child_speed(workdir, kind, args.runs) if mode == "speed" else child_load(workdir, kind, mode)
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    kinds = [k for k in args.models.split(",") if k]
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        build(workdir, kinds)
        out = sys.stdout.write
        out(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, "
            f"ctranslate2 {__import__('ctranslate2').__version__}; intra_threads={THREADS}, beam {BEAM}, "
            f"{OUTPUT_TOKENS} generated tokens per row; median (and best) of {args.runs} interleaved runs\n"
        )
        out(
            "| model | disk | load raw / engine | RSS after load raw / engine | peak RSS in use "
            "| message -> 2 languages raw / engine | engine vs raw (paired) | engine's own work "
            "| batch of 32 raw / engine | engine vs raw (paired) | engine's own work | engine tokens/s |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        )
        for kind in kinds:
            for path in (workdir / kind / "models").rglob("*"):  # warm the page cache for both loads
                if path.is_file():
                    with path.open("rb") as fh:
                        while fh.read(1 << 24):
                            pass
            # Three fresh processes each, alternating; the fastest load is the least disturbed one.
            loads = [run_child(["--workdir", str(workdir), "--child", kind, mode]) for _ in range(3)
                     for mode in ("raw", "engine")]
            raw = min(loads[0::2], key=lambda r: r["load_s"])
            eng = min(loads[1::2], key=lambda r: r["load_s"])
            speed = run_child(
                ["--workdir", str(workdir), "--runs", str(args.runs), "--beam", str(BEAM), "--child", kind, "speed"]
            )
            one, bat = speed["one"], speed["batch"]
            label = "2 Argos packages" if kind == "base" else "1 model"
            out(
                f"| {kind} ({label}, zh -> {'+'.join(speed['targets'])}, {speed['source_tokens']} source tokens) "
                f"| {raw['disk_mb']:.0f} MB | {raw['load_s']:.2f} / {eng['load_s']:.2f} s "
                f"| {raw['rss_mb']:.0f} / {eng['rss_mb']:.0f} MB | {speed['peak_rss_mb']:.0f} MB "
                f"| {one['raw']:.3f} / {one['engine']:.3f} s (best {one['raw_best']:.3f} / {one['engine_best']:.3f}) "
                f"| {one['paired']:+.1%} "
                f"| {1000 * one['own']:.1f} ms ({one['own'] / one['raw']:.2%}) "
                f"| {bat['raw']:.2f} / {bat['engine']:.2f} s (best {bat['raw_best']:.2f} / {bat['engine_best']:.2f}) "
                f"| {bat['paired']:+.1%} "
                f"| {1000 * bat['own']:.1f} ms ({bat['own'] / bat['raw']:.2%}) "
                f"| {BATCH * OUTPUT_TOKENS / bat['engine']:.0f} |\n"
            )
            sys.stdout.flush()
    finally:
        if not args.keep and not args.child:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
