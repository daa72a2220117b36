"""`liaison models install|list|remove|eval`, `liaison translate`, `liaison detect`, `liaison glossary`."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from bot.cli import UserError, out
from bot.config import Settings
from bot.translation.base import LANGUAGES

logger = logging.getLogger(__name__)


def _lang(value: str) -> str:
    code = value.strip().lower()
    if code not in LANGUAGES:
        raise argparse.ArgumentTypeError(f"unknown language {value!r} (use one of {', '.join(LANGUAGES)})")
    return code


def _langs(value: str) -> list[str]:
    return [_lang(v) for v in value.split(",") if v.strip()]


def _direction(value: str) -> tuple[str, str]:
    try:
        source, target = value.replace(">", "-").split("-")
        return _lang(source), _lang(target)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a direction looks like zh-vi, got {value!r}") from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the translation subcommands to the parser."""
    models = sub.add_parser("models", help="translation models (offline)").add_subparsers(
        dest="models_command", metavar="ACTION"
    )
    models.required = True

    p = models.add_parser(
        "install", help="install an .argosmodel, a converted model directory or an archive of one"
    )
    p.add_argument("path", type=Path, metavar="FILE_OR_DIR")
    p.add_argument(
        "--family",
        choices=["nllb", "madlad", "m2m100", "marian"],
        help="for a converted model without liaison-model.json: its family (writes the manifest)",
    )
    p.add_argument("--name", help="model name (default: the directory name)")
    p.add_argument("--version", dest="model_version", help="model version (default: a digest of model.bin)")
    p.add_argument("--languages", type=_langs, help="languages to use, e.g. zh,lo,vi,en (default: all four)")
    p.add_argument("--license", help="license to record, e.g. CC-BY-NC-4.0")
    p.add_argument(
        "--direction",
        type=_direction,
        action="append",
        dest="directions",
        help="for a bilingual (Marian) model: SRC-TGT, e.g. zh-vi; repeatable",
    )
    p.set_defaults(func=cmd_install)

    p = models.add_parser("list", help="installed models and the directions they cover")
    p.set_defaults(func=cmd_list)

    p = models.add_parser("remove", help="remove an installed model (its ID as listed)")
    p.add_argument("model_id", metavar="ID")
    p.set_defaults(func=cmd_remove)

    p = models.add_parser("eval", help="chrF and sentences/s of the installed engine on a test set")
    p.add_argument("--from", dest="source", type=_lang, required=True)
    p.add_argument("--to", dest="target", type=_lang, required=True)
    p.add_argument("src_file", type=Path, metavar="FILE_SRC", help="one sentence per line")
    p.add_argument("ref_file", type=Path, metavar="FILE_REF", help="reference translations, line-aligned")
    p.add_argument("--limit", type=int, default=0, help="use only the first N sentences")
    p.add_argument("--batch", type=int, default=16, help="sentences per batch (default 16)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("translate", help="translate a text with the installed models")
    p.add_argument("--from", dest="source", type=_lang, help="source language (detected when omitted)")
    p.add_argument(
        "--to", dest="targets", type=_langs, required=True, help="target language(s), e.g. lo or lo,vi"
    )
    p.add_argument("text", nargs="?", help="the text (read from standard input when omitted)")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("detect", help="read lines on standard input, print one language code per line")
    p.add_argument(
        "--fallback", type=_lang, default="en", help="language for lines without letters (default en)"
    )
    p.set_defaults(func=cmd_detect)

    glossary = sub.add_parser("glossary", help="the enforcement glossary").add_subparsers(
        dest="glossary_command", metavar="ACTION"
    )
    glossary.required = True
    p = glossary.add_parser(
        "import", help="add terms from a YAML (glossary.yaml layout) or CSV (zh,lo,vi,en) file"
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.set_defaults(func=cmd_glossary_import)
    p = glossary.add_parser("list", help="print the glossary")
    p.add_argument("--review", action="store_true", help="only terms that still need review by officers")
    p.set_defaults(func=cmd_glossary_list)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


def cmd_install(args: argparse.Namespace, settings: Settings) -> int:
    """Install one model into the models folder."""
    from bot.translation.registry import InstallError, install

    try:
        model = install(
            settings.resolved_models_dir,
            args.path,
            family=args.family,
            name=args.name,
            version=args.model_version,
            languages=args.languages,
            license=args.license,
            directions=args.directions,
        )
    except InstallError as exc:
        raise UserError(str(exc)) from None
    directions = " ".join(f"{a}>{b}" for a, b in sorted(model.directions)) or "none of zh/lo/vi/en"
    out(
        f"installed {model.engine} model {model.id} (version {model.version}, {_size(model.size_bytes)}, "
        f"license {model.license})"
    )
    out(f"directions: {directions}")
    out(f"into: {model.path}")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print the installed models and which of the twelve directions are covered, and how."""
    from bot.translation.engines import EngineOptions
    from bot.translation.offline import OfflineTranslator
    from bot.translation.registry import build_engines, list_models

    models_dir = settings.resolved_models_dir
    models = list_models(models_dir)
    out(f"models folder: {models_dir}")
    if not models:
        out("no model installed: messages are relayed untranslated (see `liaison models install`)")
        return 0
    rows = [("ID", "ENGINE", "VERSION", "SIZE", "LICENSE", "DIRECTIONS")]
    for m in models:
        rows.append(
            (
                m.id,
                m.engine,
                m.version,
                _size(m.size_bytes),
                m.license,
                " ".join(f"{a}>{b}" for a, b in sorted(m.directions)) or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        out("  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5])
    translator = OfflineTranslator(
        build_engines(models_dir, EngineOptions()), preference=settings.translation_engines
    )
    out("")
    out(f"coverage (engine preference: {', '.join(settings.translation_engines)}):")
    for a in LANGUAGES:
        for b in LANGUAGES:
            if a == b:
                continue
            route = translator.route(a, b)
            if route is None:
                how = "MISSING (recipients get the original with a note)"
            else:
                how = " then ".join(f"{h.engine.kind}:{h.engine.model_id}" for h in route)
                how = ("via English: " if len(route) > 1 else "") + how
            out(f"  {a}>{b}  {how}")
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    """Delete an installed model."""
    from bot.translation.registry import InstallError, remove

    try:
        model = remove(settings.resolved_models_dir, args.model_id)
    except InstallError as exc:
        raise UserError(str(exc)) from None
    out(f"removed {model.engine} model {model.id} ({_size(model.size_bytes)})")
    return 0


def _read_text(args: argparse.Namespace) -> str:
    if args.text is not None:
        return str(args.text)
    return sys.stdin.read().rstrip("\n")


def cmd_translate(args: argparse.Namespace, settings: Settings) -> int:
    """Translate one text into one or more languages; exit 1 when a target could not be translated."""
    from bot.translation.detect import detect
    from bot.translation.factory import build_translator

    text = _read_text(args)
    if not text.strip():
        raise UserError("nothing to translate")
    source = args.source or detect(text, "en")
    translator = build_translator(settings)
    started = time.perf_counter()
    results = translator.translate(text, source, args.targets)
    elapsed = time.perf_counter() - started
    status = 0
    if args.source is None:
        out(f"(detected source language: {source})")
    for target in args.targets:
        t = results[target]
        out(f"[{target}] {t.text}")
        if t.translated:
            out(f"    engine {t.engine}, model {t.model or '-'}")
        else:
            status = 1
            reason = "no model installed" if t.failure == "missing-model" else "engine error (see the log)"
            out(f"    NOT TRANSLATED {source}>{target}: {reason}; the original is shown")
    out(f"({elapsed:.2f} s)")
    return status


def cmd_detect(args: argparse.Namespace, settings: Settings) -> int:
    """Print the detected language of each line read on standard input."""
    from bot.translation.detect import detect

    for line in sys.stdin:
        out(detect(line.rstrip("\n"), args.fallback))
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Translate a test set with the installed engine and print chrF and speed."""
    import sacrebleu

    from bot.translation.factory import build_translator
    from bot.translation.offline import OfflineTranslator

    try:
        sources = args.src_file.read_text(encoding="utf-8").splitlines()
        references = args.ref_file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"cannot read the test set: {exc}") from None
    if len(sources) != len(references):
        raise UserError(f"{args.src_file} has {len(sources)} lines but {args.ref_file} has {len(references)}")
    if args.limit > 0:
        sources, references = sources[: args.limit], references[: args.limit]
    if not sources:
        raise UserError("the test set is empty")
    # Evaluation measures the model, not the memory: no caching.
    translator = build_translator(settings, memory_entries=0)
    if not isinstance(translator, OfflineTranslator) or translator.route(args.source, args.target) is None:
        raise UserError(
            f"no installed model translates {args.source}>{args.target} (see `liaison models list`)"
        )
    route = translator.route(args.source, args.target) or ()
    load = translator.warm_up()
    hypotheses: list[str] = []
    failures = 0
    started = time.perf_counter()
    for i in range(0, len(sources), max(1, args.batch)):
        for result in translator.translate_many(sources[i : i + args.batch], args.source, [args.target]):
            t = result[args.target]
            failures += 0 if t.translated else 1
            hypotheses.append(t.text)
    elapsed = time.perf_counter() - started
    chrf = sacrebleu.corpus_chrf(hypotheses, [references])
    out(
        f"direction: {args.source}>{args.target} via "
        + " then ".join(f"{h.engine.kind}:{h.engine.model_id}" for h in route)
    )
    out(
        f"sentences: {len(sources)}  beam size: {settings.translation_beam_size}  "
        f"threads: {settings.translation_threads}"
    )
    out(f"model load: {sum(load.values()):.2f} s")
    out(f"chrF2: {chrf.score:.1f}")
    out(f"speed: {len(sources) / elapsed:.2f} sentences/s ({elapsed:.1f} s)")
    if failures:
        out(f"untranslated: {failures} sentence(s) (engine errors, see the log)")
        return 1
    return 0


def cmd_glossary_import(args: argparse.Namespace, settings: Settings) -> int:
    """Add the terms of a file to the coordinators' glossary."""
    from bot.translation.glossary import import_terms, local_path

    try:
        added, updated = import_terms(settings.data_dir, args.file)
    except FileNotFoundError:
        raise UserError(f"{args.file}: no such file") from None
    except ValueError as exc:
        raise UserError(str(exc)) from None
    out(f"glossary: {added} term(s) added, {updated} updated in {local_path(settings.data_dir)}")
    return 0


def cmd_glossary_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print the glossary's terms, one concept per line."""
    from bot.translation.glossary import load_glossary

    glossary = load_glossary(settings.data_dir)
    out(f"glossary version {glossary.version}: {len(glossary)} entries")
    for entry in glossary.entries:
        if args.review and not entry.review:
            continue
        terms = " | ".join(f"{lang}: {entry.terms[lang]}" for lang in LANGUAGES if lang in entry.terms)
        flag = f"  [review: {', '.join(sorted(entry.review))}]" if entry.review else ""
        out(f"{entry.id} ({entry.origin}): {terms}{flag}")
    return 0
