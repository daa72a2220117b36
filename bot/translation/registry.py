"""Installed models: install, list and remove them, and build one engine per installed model."""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.translation import argos, multilingual
from bot.translation.engines import CT2Engine, EngineOptions

logger = logging.getLogger(__name__)


class InstallError(ValueError):
    """A model cannot be installed or removed; the message says why, in one line."""


@dataclass(frozen=True)
class InstalledModel:
    """One installed model as `liaison models list` shows it."""

    #: what `liaison models remove` takes
    id: str
    #: "argos" or the multilingual family (nllb, madlad, m2m100, marian)
    engine: str
    name: str
    version: str
    path: Path
    directions: frozenset[tuple[str, str]]
    license: str
    size_bytes: int


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _argos_license(pkg: Any) -> str:
    try:
        meta = json.loads((Path(pkg.package_path) / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unknown"
    return str(meta.get("license") or "see package README")


def _from_argos(pkg: Any) -> InstalledModel:
    engine = argos.ArgosEngine(pkg, EngineOptions())
    return InstalledModel(
        id=argos.package_label(pkg),
        engine="argos",
        name=engine.name,
        version=engine.version,
        path=Path(pkg.package_path),
        directions=engine.pairs(),
        license=_argos_license(pkg),
        size_bytes=_size(Path(pkg.package_path)),
    )


def _from_manifest(manifest: multilingual.Manifest, path: Path) -> InstalledModel:
    return InstalledModel(
        id=manifest.name,
        engine=manifest.family,
        name=manifest.name,
        version=manifest.version,
        path=path,
        directions=manifest.pairs(),
        license=manifest.license,
        size_bytes=_size(path),
    )


def list_models(models_dir: Path) -> list[InstalledModel]:
    """Return every installed model, Argos packages first."""
    models = [_from_argos(p) for p in argos.installed_packages(models_dir)]
    models += [_from_manifest(m, p) for m, p in multilingual.installed_models(models_dir)]
    return models


def _is_argos(source: Path) -> bool:
    if source.is_dir():
        return (source / "metadata.json").exists()
    if source.suffix == ".argosmodel":
        return True
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            return any(Path(n).name == "metadata.json" for n in archive.namelist())
    return False


def install(
    models_dir: Path,
    source: Path,
    *,
    family: str | None = None,
    name: str | None = None,
    version: str | None = None,
    languages: list[str] | None = None,
    license: str | None = None,
    directions: list[tuple[str, str]] | None = None,
) -> InstalledModel:
    """Install an Argos package, a converted model directory or an archive of one; return the model."""
    if not source.exists():
        raise InstallError(f"{source}: no such file or directory")
    models_dir.mkdir(parents=True, exist_ok=True)
    try:
        if _is_argos(source):
            if family:
                raise InstallError(f"{source} is an Argos package; --family is for multilingual models")
            return _from_argos(argos.install_package(models_dir, source))
        manifest, path = multilingual.install_model(
            models_dir,
            source,
            family=family,
            name=name,
            version=version,
            languages=languages,
            license=license,
            directions=directions,
        )
        return _from_manifest(manifest, path)
    except (argos.PackageError, multilingual.ModelError) as exc:
        raise InstallError(str(exc)) from None


def remove(models_dir: Path, model_id: str) -> InstalledModel:
    """Delete the installed model whose id (as listed) is `model_id`."""
    for pkg in argos.installed_packages(models_dir):
        if argos.package_label(pkg) == model_id or Path(pkg.package_path).name == model_id:
            model = _from_argos(pkg)
            argos.remove_package(pkg)
            logger.info("removed Argos package %s", model_id)
            return model
    for manifest, path in multilingual.installed_models(models_dir):
        if manifest.name == model_id or path.name == model_id:
            model = _from_manifest(manifest, path)
            shutil.rmtree(path)
            logger.info("removed model %s", model_id)
            return model
    known = ", ".join(m.id for m in list_models(models_dir)) or "none installed"
    raise InstallError(f"no installed model called {model_id!r} (installed: {known})")


def build_engines(models_dir: Path, options: EngineOptions) -> list[CT2Engine]:
    """Return one (not yet loaded) engine per installed model."""
    engines: list[CT2Engine] = [argos.ArgosEngine(p, options) for p in argos.installed_packages(models_dir)]
    engines += [
        multilingual.MultilingualEngine(m, p, options) for m, p in multilingual.installed_models(models_dir)
    ]
    return engines
