"""Real engines on tiny real CTranslate2 models: families, batching, pivoting, memory, protection, failures."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.config import Settings
from bot.translation import PassThroughTranslator, Translator, build_translator
from bot.translation.offline import OfflineTranslator
from bot.translation.registry import install

from .conftest import Kit

PROTECTED = [
    "CN-VN-2026-0042",
    "@nguyen_van_a",
    "https://example.org/case_42?id=7",
    "MSCU1234567",
    "29C-123.45",
    "21.0285, 105.8542",
    "#pangolin",
    "120",
]
MESSAGE = (
    "案件 CN-VN-2026-0042：在 21.0285, 105.8542 查获 120 公斤穿山甲鳞片，集装箱 MSCU1234567，车牌 29C-123.45。"
    "请联系 @nguyen_van_a，详情见 https://example.org/case_42?id=7 #pangolin"
)


def _offline(settings: Settings) -> OfflineTranslator:
    translator = build_translator(settings)
    assert isinstance(translator, OfflineTranslator)
    return translator


def _engine(translator: OfflineTranslator, kind: str):  # type: ignore[no-untyped-def]
    return next(e for e in translator.engines if e.kind == kind)


def test_nothing_installed_gives_the_pass_through_translator(settings: Settings) -> None:
    """With no model the factory returns the pass-through translator: originals, marked missing-model."""
    translator = build_translator(settings)
    assert isinstance(translator, PassThroughTranslator)
    result = translator.translate("你好", "zh", ["lo"])
    assert result["lo"].text == "你好" and result["lo"].failure == "missing-model"


def test_argos_package_translates_and_records_engine(settings: Settings, kit: Kit) -> None:
    """An installed Argos package translates its direction; engine and package version are recorded."""
    install(settings.resolved_models_dir, kit.argos[("zh", "en")])
    translator = _offline(settings)
    assert isinstance(translator, Translator)
    assert translator.directions() == {("zh", "en")}
    first = translator.translate("请尽快回复", "zh", ["en"])["en"]
    assert first.translated and first.failure is None
    assert (first.engine, first.model) == ("argos", "translate-zh_en@1.0")
    assert first.text and first.text != "请尽快回复"
    # Random weights, but deterministic: a second translator on the same files says the same.
    assert _offline(settings).translate("请尽快回复", "zh", ["en"])["en"].text == first.text


def test_argos_decoding_keeps_underscores(settings: Settings, kit: Kit) -> None:
    """Our SentencePiece decoding keeps `_`, where argostranslate's decoder turns it into a space."""
    install(settings.resolved_models_dir, kit.argos[("zh", "en")])
    engine = _engine(_offline(settings), "argos")
    pieces = engine.codec().encode("@nguyen_van_a case_42")
    assert engine.codec().decode(pieces) == "@nguyen_van_a case_42"
    assert engine.pkg.tokenizer.decode(pieces) != "@nguyen_van_a case_42"  # the trap we avoid


@pytest.mark.parametrize(
    ("family", "source_start", "prefix"),
    [
        ("nllb", ["zho_Hans"], ["vie_Latn"]),
        ("m2m100", ["__zh__"], ["__vi__"]),
        ("madlad", ["<2vi>"], None),
    ],
)
def test_family_builds_its_inputs_and_batches_targets(
    settings: Settings, kit: Kit, family: str, source_start: list[str], prefix: list[str] | None
) -> None:
    """Each family gets its own source tokens and target prefix; all targets of a message go in one batch."""
    install(settings.resolved_models_dir, kit.families[family])
    translator = _offline(settings)
    engine = _engine(translator, family)
    source, target_prefix = engine.encode_row("请尽快回复", "zh", "vi")
    assert source[: len(source_start)] == source_start and source[-1] == "</s>"
    assert target_prefix == prefix
    assert len(translator.directions()) == 12
    result = translator.translate("请尽快回复", "zh", ["lo", "vi", "en", "zh"])
    assert (engine.batches, engine.rows) == (1, 3)  # one batch, one row per target
    assert {t: r.engine for t, r in result.items()} == {
        "lo": family,
        "vi": family,
        "en": family,
        "zh": "identity",
    }
    assert result["zh"].text == "请尽快回复"
    # The target token steers the model: the same sentence comes out differently per language.
    assert len({result["lo"].text, result["vi"].text, result["en"].text}) == 3


def test_marian_models(settings: Settings, kit: Kit) -> None:
    """A bilingual OPUS-MT pair serves one direction; a multi-target one puts >>vie<< before the source."""
    install(settings.resolved_models_dir, kit.marian_pair)
    install(settings.resolved_models_dir, kit.families["marian"])
    translator = _offline(settings)
    assert translator.directions() == {("zh", "vi"), ("en", "vi"), ("en", "lo")}
    multi = next(e for e in translator.engines if e.name == "tiny-marian-multi")
    assert multi.encode_row("hello", "en", "vi")[0][0] == ">>vie<<"
    pair = next(e for e in translator.engines if e.name == "tiny-opus-zh-vi")
    assert pair.encode_row("你好", "zh", "vi")[0][0] != ">>vie<<"
    result = translator.translate("请尽快回复", "zh", ["vi"])["vi"]
    assert (result.engine, result.model, result.translated) == ("marian", "tiny-opus-zh-vi@test-1", True)


def test_pivot_through_english(settings: Settings, kit: Kit) -> None:
    """Without a zh>vi model, zh>en then en>vi is composed, and both models are recorded."""
    install(settings.resolved_models_dir, kit.argos[("zh", "en")])
    install(settings.resolved_models_dir, kit.argos[("en", "vi")])
    translator = _offline(settings)
    assert ("zh", "vi") in translator.directions() and ("vi", "zh") not in translator.directions()
    result = translator.translate("请尽快回复", "zh", ["vi", "en"])
    vi = result["vi"]
    assert vi.translated and vi.engine == "argos+argos"
    assert vi.model == "zh-en:translate-zh_en@1.0; en-vi:translate-en_vi@1.0"
    zh_en = next(e for e in translator.engines if e.name == "translate-zh_en")
    en_vi = next(e for e in translator.engines if e.name == "translate-en_vi")
    # The English step is shared by the en target and the pivot: translated once.
    assert zh_en.rows == 1
    hop1 = zh_en.translate_rows([("请尽快回复", "zh", "en")])[0]
    assert result["en"].text == hop1
    assert vi.text == en_vi.translate_rows([(hop1, "en", "vi")])[0]


def test_translation_memory(settings: Settings, kit: Kit) -> None:
    """The same message again is served from memory, keyed by engine, model version and direction."""
    install(settings.resolved_models_dir, kit.families["nllb"])
    translator = _offline(settings)
    engine = _engine(translator, "nllb")
    first = translator.translate("请尽快回复。谢谢！", "zh", ["lo", "vi"])
    batches = engine.batches
    again = translator.translate("请尽快回复。谢谢！", "zh", ["lo", "vi"])
    assert engine.batches == batches and translator.memory.hits >= 4
    assert {t: r.text for t, r in again.items()} == {t: r.text for t, r in first.items()}
    keys = list(translator.memory._items)
    assert all(key[0] == "nllb:tiny-nllb@test-1" and key[1] == "zh" for key in keys)
    assert {key[2] for key in keys} == {"lo", "vi"}
    # A sentence seen before inside a new message is not translated again either.
    translator.translate("谢谢！", "zh", ["lo"])
    assert engine.batches == batches


def test_protected_items_and_glossary_terms_come_through(settings: Settings, kit: Kit) -> None:
    """Tags, names, links, numbers and codes are byte-identical; glossary terms become the officers' terms."""
    install(settings.resolved_models_dir, kit.families["nllb"])
    result = _offline(settings).translate(MESSAGE, "zh", ["vi", "lo", "en"])
    terms = {"vi": "vảy tê tê", "lo": "ເກັດລີ່ນ", "en": "pangolin scales"}
    for target, translation in result.items():
        assert translation.translated, target
        for item in PROTECTED:
            assert translation.text.count(item) == MESSAGE.count(item), (target, item, translation.text)
        assert terms[target] in translation.text
        assert "穿山甲鳞片" not in translation.text


def test_missing_direction_returns_the_original(settings: Settings, kit: Kit) -> None:
    """A direction without a model gives the original, marked missing-model; the others are translated."""
    install(settings.resolved_models_dir, kit.argos[("zh", "en")])
    result = _offline(settings).translate("请尽快回复", "zh", ["lo", "en"])
    assert (result["lo"].text, result["lo"].translated, result["lo"].failure) == (
        "请尽快回复",
        False,
        "missing-model",
    )
    assert result["en"].translated


def test_engine_error_returns_the_original_and_logs(
    settings: Settings, kit: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    """A model that cannot load is an engine error for its targets only; the message is never lost."""
    install(settings.resolved_models_dir, kit.argos[("zh", "en")])
    model = install(settings.resolved_models_dir, kit.families["nllb"])
    (model.path / "model.bin").write_bytes(b"this is not a model")
    translator = _offline(settings)
    with caplog.at_level(logging.ERROR, logger="bot.translation.offline"):
        result = translator.translate("请尽快回复", "zh", ["vi", "en"])
    assert (result["vi"].text, result["vi"].failure, result["vi"].engine) == (
        "请尽快回复",
        "engine-error",
        "nllb",
    )
    assert result["en"].translated and result["en"].engine == "argos"
    assert any("tiny-nllb" in r.getMessage() for r in caplog.records)


def test_engine_preference_is_configurable(settings: Settings, kit: Kit) -> None:
    """The configured engine order decides between installed models; an unlisted engine is not used."""
    install(settings.resolved_models_dir, kit.argos[("zh", "en")])
    install(settings.resolved_models_dir, kit.families["nllb"])
    assert _offline(settings).translate("你好", "zh", ["en"])["en"].engine == "argos"
    nllb_first = settings.with_overrides(translation_engines=("nllb", "argos"))
    assert _offline(nllb_first).translate("你好", "zh", ["en"])["en"].engine == "nllb"
    only_argos = settings.with_overrides(translation_engines=("argos",))
    assert _offline(only_argos).directions() == {("zh", "en")}


def test_concurrent_callers_get_the_same_results(settings: Settings, kit: Kit) -> None:
    """Many threads translating at once (as asyncio.to_thread does) get what one thread would get."""
    install(settings.resolved_models_dir, kit.families["madlad"])
    texts = [f"请在{i}点之前回复。" for i in range(8)] + ["海关查获象牙", "请尽快回复"] * 4
    expected = [r["lo"].text for r in _offline(settings).translate_many(texts, "zh", ["lo"])]
    shared = _offline(settings)
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(lambda t: shared.translate(t, "zh", ["lo", "vi"])["lo"].text, texts))
    assert got == expected


async def test_translate_off_the_event_loop(settings: Settings, kit: Kit) -> None:
    """The relay's way of calling: asyncio.to_thread, several messages at once."""
    install(settings.resolved_models_dir, kit.families["m2m100"])
    translator = build_translator(settings)
    results = await asyncio.gather(
        *(asyncio.to_thread(translator.translate, text, "zh", ["vi"]) for text in ["你好", "谢谢", "再见"])
    )
    assert all(r["vi"].translated and r["vi"].engine == "m2m100" for r in results)


def test_warm_up_loads_every_model_once(
    settings: Settings, kit: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    """preload=True loads the models at start and logs each load time."""
    install(settings.resolved_models_dir, kit.argos[("zh", "en")])
    install(settings.resolved_models_dir, kit.families["nllb"])
    with caplog.at_level(logging.INFO, logger="bot.translation.engines"):
        translator = build_translator(settings, preload=True)
    assert isinstance(translator, OfflineTranslator)
    loads = [r.getMessage() for r in caplog.records if "loaded in" in r.getMessage()]
    assert len(loads) == 2
    engine = translator.engines[0]
    assert engine.load() is engine.load()
    loaded = engine.load()
    translator.close()  # what the bot does at shutdown; a later use loads again
    assert engine._translator is None and engine.load() is not loaded


def test_whitespace_and_symbol_only_messages(settings: Settings, kit: Kit) -> None:
    """Messages with nothing to translate come back as they are, without a model call."""
    install(settings.resolved_models_dir, kit.families["nllb"])
    translator = _offline(settings)
    for text in ["", "  ", "👍", "MSCU1234567", "https://example.org/a_b 120"]:
        assert translator.translate(text, "zh", ["vi"])["vi"].text == text
    assert _engine(translator, "nllb").batches == 0


def test_lines_and_sentences_keep_their_layout(settings: Settings, kit: Kit) -> None:
    """A multi-line message keeps its line breaks; Chinese output drops the spaces between sentences."""
    install(settings.resolved_models_dir, kit.families["nllb"])
    translator = _offline(settings)
    text = "Please reply today. Thank you!\n\nSee the photos:\n- truck\n- container"
    result = translator.translate(text, "en", ["vi", "zh"])
    assert result["vi"].text.count("\n") == text.count("\n") and "\n\n" in result["vi"].text
    zh_first_line = result["zh"].text.split("\n")[0]
    vi_first_line = result["vi"].text.split("\n")[0]
    assert " " in vi_first_line  # the space between the two sentences stays for Vietnamese ...
    single = translator.translate("Please reply today.", "en", ["zh"])["zh"].text
    assert zh_first_line.startswith(single) and not zh_first_line.startswith(single + " ")  # ... not for Chinese
