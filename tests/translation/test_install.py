"""Installing, listing and removing models through the real install code."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from bot.translation.multilingual import MANIFEST
from bot.translation.registry import InstallError, install, list_models, remove

from . import modelkit
from .conftest import Kit


def test_argos_package_install_list_remove(tmp_path: Path, kit: Kit) -> None:
    """An .argosmodel is extracted under <models>/argos, listed with its direction, then removed."""
    models = tmp_path / "models"
    model = install(models, kit.argos[("zh", "en")])
    assert (model.id, model.engine, model.version) == ("translate-zh_en", "argos", "1.0")
    assert model.directions == {("zh", "en")} and model.license == "CC0 (test model)"
    assert (model.path / "model" / "model.bin").exists() and model.path.parent == models / "argos"
    assert [m.id for m in list_models(models)] == ["translate-zh_en"]
    assert not (models / ".staging").exists() or not any((models / ".staging").iterdir())
    remove(models, "translate-zh_en")
    assert list_models(models) == []


def test_newer_argos_package_replaces_the_older(tmp_path: Path, kit: Kit) -> None:
    """Installing version 1.1 of a pair replaces version 1.0 instead of keeping both."""
    models = tmp_path / "models"
    install(models, kit.argos[("en", "vi")])
    newer = modelkit.argos_package(
        tmp_path / "en_vi-1_1.argosmodel", "en", "vi", kit.sp_model, version="1.1", seed=99
    )
    install(models, newer)
    assert [(m.id, m.version) for m in list_models(models)] == [("translate-en_vi", "1.1")]


def test_zip_slip_and_non_packages_are_refused(tmp_path: Path) -> None:
    """A package whose members escape the folder, or a file that is no package, installs nothing."""
    evil = tmp_path / "evil.argosmodel"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("pkg/metadata.json", json.dumps({"from_code": "zh", "to_code": "en"}))
        archive.writestr("../../outside.txt", "gotcha")
    with pytest.raises(InstallError, match="escapes"):
        install(tmp_path / "models", evil)
    assert not (tmp_path / "outside.txt").exists()
    junk = tmp_path / "junk.argosmodel"
    junk.write_bytes(b"not a zip")
    with pytest.raises(InstallError, match="not an Argos package"):
        install(tmp_path / "models", junk)
    with pytest.raises(InstallError, match="no such file"):
        install(tmp_path / "models", tmp_path / "missing.argosmodel")


def test_converted_directory_gets_a_manifest(tmp_path: Path, kit: Kit) -> None:
    """A ct2-converted NLLB folder without manifest installs with --family; version = digest of model.bin."""
    models = tmp_path / "models"
    with pytest.raises(InstallError, match=MANIFEST):
        install(models, kit.bare_nllb)
    model = install(
        models, kit.bare_nllb, family="nllb", name="nllb-200-distilled-600M", license="CC-BY-NC-4.0"
    )
    manifest = json.loads((model.path / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["family"] == "nllb" and manifest["tokenizer"] == "sentencepiece.bpe.model"
    assert manifest["version"].startswith("sha256-") and manifest["languages"] == ["zh", "lo", "vi", "en"]
    assert (model.id, model.license, len(model.directions)) == ("nllb-200-distilled-600M", "CC-BY-NC-4.0", 12)
    assert not (kit.bare_nllb / MANIFEST).exists()  # the administrator's copy is left untouched


def test_archive_of_a_model_directory(tmp_path: Path, kit: Kit) -> None:
    """A .tar.gz carried over on a USB stick installs like the directory inside it."""
    archive = tmp_path / "madlad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(kit.families["madlad"], arcname="madlad400-3b-mt-ct2-int8")
    model = install(tmp_path / "models", archive)
    assert (model.engine, model.id) == ("madlad", "tiny-madlad")


def test_language_token_missing_from_vocabulary_is_refused(tmp_path: Path, kit: Kit) -> None:
    """A manifest naming a language token the model does not know is caught at install, not at run time."""
    broken = tmp_path / "broken"
    modelkit.multilingual_model(broken, "nllb", kit.sp_model, language_tokens={"lo": "lao_Laoo_X"})
    with pytest.raises(InstallError, match="lao_Laoo_X"):
        install(tmp_path / "models", broken)


def test_marian_needs_a_direction(tmp_path: Path, kit: Kit) -> None:
    """A bilingual Marian model cannot guess its direction."""
    bare = tmp_path / "opus"
    modelkit.multilingual_model(bare, "marian", kit.sp_model, manifest=False)
    with pytest.raises(InstallError, match="--direction"):
        install(tmp_path / "models", bare, family="marian")
    model = install(tmp_path / "models", bare, family="marian", directions=[("zh", "vi")])
    assert model.directions == {("zh", "vi")}


def test_remove_unknown_names_the_installed(tmp_path: Path, kit: Kit) -> None:
    """Removing a model that is not there says which ones are."""
    install(tmp_path / "models", kit.argos[("zh", "en")])
    with pytest.raises(InstallError, match="translate-zh_en"):
        remove(tmp_path / "models", "nllb")


def test_extracted_argos_package_folder(tmp_path: Path, kit: Kit) -> None:
    """A package folder copied from another machine's argos-translate/packages installs as well."""
    with zipfile.ZipFile(kit.argos[("vi", "en")]) as archive:
        archive.extractall(tmp_path / "copied")
    folder = next((tmp_path / "copied").iterdir())
    model = install(tmp_path / "models", folder)
    assert (model.engine, model.directions) == ("argos", {("vi", "en")})
    assert folder.exists()  # copied, not moved
