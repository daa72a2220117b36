"""No code path of install or translation reaches for the network or imports argostranslate's heavy parts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import Settings
from bot.translation import build_translator
from bot.translation.registry import install

from .conftest import Kit

ROOT = Path(__file__).resolve().parents[2]


def _no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError(f"network access attempted: {args!r}")


def test_install_and_translate_with_networking_disabled(
    settings: Settings, kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every socket connection and name lookup failing, install + translate still work."""
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    monkeypatch.setattr(socket, "getaddrinfo", _no_network)
    for path in (kit.argos[("zh", "en")], kit.argos[("en", "lo")], kit.families["nllb"]):
        install(settings.resolved_models_dir, path)
    result = build_translator(settings).translate("请尽快回复。@li_ming 谢谢！", "zh", ["en", "lo", "vi"])
    assert all(t.translated for t in result.values())
    assert all("@li_ming" in t.text for t in result.values())


SCRIPT = r"""
import json, socket, sys
from pathlib import Path
def refuse(*a, **k):
    raise OSError("network disabled by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from bot.config import load_settings
from bot.translation import build_translator
from bot.translation.registry import install
settings = load_settings()
for path in sys.argv[1:]:
    install(settings.resolved_models_dir, Path(path))
translator = build_translator(settings, preload=True)
result = translator.translate("请尽快回复 @li_ming", "zh", ["en", "vi", "lo"])
HEAVY = ("torch", "stanza", "spacy", "minisbd", "onnxruntime")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY
               or m == "argostranslate.translate" or m == "argostranslate.sbd")
print(json.dumps({"heavy": heavy, "engines": {t: r.engine for t, r in result.items()},
                  "translated": all(r.translated for r in result.values())}))
"""


def test_fresh_process_stays_light_and_offline(tmp_path: Path, kit: Kit) -> None:
    """A bot process never imports torch/stanza/spaCy/MiniSBD and installs under LIAISON_MODELS_DIR,
    not under ARGOS_PACKAGES_DIR."""
    argos_env_dir = tmp_path / "argos-env-packages"
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "ARGOS_PACKAGES_DIR": str(argos_env_dir),
        "LIAISON_DATA_DIR": str(tmp_path / "data"),
        "LIAISON_MODELS_DIR": str(tmp_path / "models"),
        "LIAISON_TRANSLATION_THREADS": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(kit.argos[("zh", "en")]), str(kit.families["nllb"])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["translated"] and report["engines"] == {"en": "argos", "vi": "nllb", "lo": "nllb"}
    assert (tmp_path / "models" / "argos").is_dir()
    assert not argos_env_dir.exists() or not any(argos_env_dir.iterdir())
