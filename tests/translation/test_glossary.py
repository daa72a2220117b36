"""The enforcement glossary: curated file, matching, coordinators' additions and imports."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.translation.base import LANGUAGES
from bot.translation.glossary import (
    GlossaryStore,
    GlossaryTermInvalid,
    add_term,
    builtin_path,
    import_terms,
    load_glossary,
    local_path,
)


def test_curated_glossary_is_complete_and_cites_sources() -> None:
    """Every curated entry has all four languages, known sources, and the core trade terms are there."""
    raw = yaml.safe_load(builtin_path().read_text(encoding="utf-8"))
    glossary = load_glossary(None)
    assert glossary.version == raw["version"]
    ids = {e.id for e in glossary.entries}
    assert {
        "pangolin",
        "pangolin-scales",
        "ivory",
        "rhino-horn",
        "tiger-bone",
        "bear-bile",
        "siamese-rosewood",
        "customs",
        "controlled-delivery",
        "smuggling",
    } <= ids
    for entry in glossary.entries:
        assert set(entry.terms) == set(LANGUAGES), entry.id
        assert set(entry.sources) <= set(raw["sources"]), entry.id
        assert entry.review <= set(LANGUAGES), entry.id
    assert sum(1 for e in glossary.entries if e.sources) >= 20


@pytest.mark.parametrize(
    ("text", "source", "found"),
    [
        ("海关查获穿山甲鳞片和象牙", "zh", ["海关", "查获", "穿山甲鳞片", "象牙"]),
        ("We seized Pangolin Scales and a rhino horn", "en", ["seized", "Pangolin Scales", "rhino horn"]),
        ("Thu giữ vảy tê tê và sừng tê giác", "vi", ["Thu giữ", "vảy tê tê", "sừng tê giác"]),
        ("ຍຶດເກັດລີ່ນ ແລະ ງາຊ້າງ", "lo", ["ຍຶດ", "ເກັດລີ່ນ", "ງາຊ້າງ"]),
        ("we suspect the driver", "en", []),  # "suspect" the verb is not the glossary noun
        ("the rhinoceroses", "en", []),  # whole words only in English
    ],
)
def test_find_longest_matches(text: str, source: str, found: list[str]) -> None:
    """Terms are found longest first, whole words in English/Vietnamese, substrings in Chinese/Lao."""
    spans = load_glossary(None).find(text, source, ["vi", "lo", "zh", "en"])
    assert [s.text for s in spans] == found


def test_span_carries_the_officers_terms() -> None:
    """A matched term renders as the glossary's term in each target language."""
    span = load_glossary(None).find("穿山甲鳞片", "zh", ["vi", "lo"])[0]
    assert (span.render("vi"), span.render("lo"), span.render("en")) == (
        "vảy tê tê",
        "ເກັດລີ່ນ",
        "pangolin scales",
    )


def test_add_term_is_stored_and_seen_by_a_running_store(tmp_path: Path) -> None:
    """A coordinator's term lands in the data folder and the translator's store picks it up."""
    store = GlossaryStore(tmp_path)
    before = store.current()
    assert not before.find("Saola", "en", ["vi"])
    entry = add_term(tmp_path, {"en": "saola", "vi": "sao la", "zh": "中南大羚", "lo": "ເສົາຫຼາ"}, added_by=42)
    assert entry.origin == "local" and entry.added_by == "42"
    assert local_path(tmp_path).exists()
    after = store.current()
    assert after.version != before.version
    assert [s.render("zh") for s in after.find("A saola was seen", "en", ["zh"])] == ["中南大羚"]
    # Adding the same concept again completes it instead of duplicating it.
    add_term(tmp_path, {"en": "saola", "vi": "sao la"}, note="Pseudoryx nghetinhensis")
    assert sum(1 for e in load_glossary(tmp_path).entries if e.origin == "local") == 1


@pytest.mark.parametrize(
    "terms", [{"en": "only one"}, {"en": "x" * 200, "vi": "y"}, {"en": "a\nb", "vi": "c"}]
)
def test_add_term_rejects_unusable_terms(tmp_path: Path, terms: dict[str, str]) -> None:
    """A term with one language, too long, or on several lines is refused with a localizable error."""
    with pytest.raises(GlossaryTermInvalid) as info:
        add_term(tmp_path, terms)
    assert info.value.params == {"max": 80}
    assert not local_path(tmp_path).exists()


def test_import_yaml_and_csv(tmp_path: Path) -> None:
    """Terms import from a YAML list and from a CSV with a language header; re-importing updates."""
    yml = tmp_path / "terms.yaml"
    yml.write_text("terms:\n  - {en: gaur, vi: bò tót, zh: 印度野牛, lo: ກະທິງ}\n", encoding="utf-8")
    csv = tmp_path / "terms.csv"
    csv.write_text("en,vi,zh,lo,note\nsun bear,gấu chó,马来熊,ໝີໝາ,Helarctos\n", encoding="utf-8")
    data = tmp_path / "data"
    assert import_terms(data, yml) == (1, 0)
    assert import_terms(data, csv) == (1, 0)
    assert import_terms(data, csv) == (0, 1)
    glossary = load_glossary(data)
    assert [s.render("lo") for s in glossary.find("a sun bear and a gaur", "en", ["lo"])] == ["ໝີໝາ", "ກະທິງ"]


def test_import_rejects_bad_rows(tmp_path: Path) -> None:
    """A row with a single language stops the import and says which entry."""
    bad = tmp_path / "bad.csv"
    bad.write_text("en,vi\nok,được\nlonely,\n", encoding="utf-8")
    with pytest.raises(ValueError, match="entry 2"):
        import_terms(tmp_path / "data", bad)
