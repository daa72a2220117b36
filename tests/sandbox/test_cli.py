"""`liaison sandbox` as a user runs it: one address on standard output, the page answers, Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(home: Path) -> dict[str, str]:
    """Return an environment with a private data directory and no inherited Liaison settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env["LIAISON_DATA_DIR"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.mark.timeout(60)
def test_liaison_sandbox_prints_one_address_serves_the_page_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    data_dir = tmp_path / "sandbox-data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "sandbox", "--port", "0", "--data-dir", str(data_dir)],
        cwd=ROOT,
        env=_env(tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("http://127.0.0.1:") and line.endswith("/"), line
        with urllib.request.urlopen(line, timeout=10) as resp:
            page = resp.read().decode()
        assert "Liaison sandbox" in page
        with urllib.request.urlopen(line + "api/state", timeout=10) as resp:
            assert b'"zh-officer"' in resp.read()
        assert (data_dir / "liaison.db").exists()
        proc.send_signal(signal.SIGINT)
        rest, errors = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, errors[-2000:]
    assert rest.strip() == ""  # the address was the only line on standard output
    assert "Traceback" not in errors


@pytest.mark.timeout(30)
def test_liaison_sandbox_refuses_a_busy_port_with_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(  # noqa: PLW1510 - the exit status is asserted below
            [
                sys.executable,
                "-m",
                "bot.cli",
                "sandbox",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "d"),
            ],
            cwd=ROOT,
            env=_env(tmp_path / "home"),
            capture_output=True,
            text=True,
            timeout=25,
        )
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr
