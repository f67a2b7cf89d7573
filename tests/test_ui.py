"""`credit-etl ui` starts the Dagster UI on the persistent instance, and a real headless browser
shows the project's assets in it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(base: str, query: str) -> dict:
    req = urllib.request.Request(
        f"{base}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.fixture
def ui(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "--data-dir", str(tmp_path), "ui", "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"credit-etl ui exited early:\n{proc.stdout.read().decode(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=2):
                    break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("the Dagster UI did not answer within 120 s")
        yield base, tmp_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_ui_serves_the_code_location_on_the_persistent_instance(ui):
    base, data_dir = ui
    nodes = []
    for _ in range(60):  # the code location loads in a subprocess after the server answers
        data = _graphql(base, "{ assetNodes { assetKey { path } groupName } }")
        nodes = (data.get("data") or {}).get("assetNodes") or []
        if nodes:
            break
        time.sleep(1)
    groups = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in nodes}
    assert groups.get("received_rows") == "ingest"
    assert groups.get("monthly_indicators") == "export"
    assert (data_dir / "dagster_home" / "dagster.yaml").exists()
    assert "telemetry" in (data_dir / "dagster_home" / "dagster.yaml").read_text()


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (CI installs Debian's chromium)")
def test_headless_browser_shows_the_asset_graph(ui, tmp_path):
    base, _ = ui
    for _ in range(60):
        data = _graphql(base, "{ assetNodes { id } }")
        if (data.get("data") or {}).get("assetNodes"):
            break
        time.sleep(1)
    shot = tmp_path / "ui.png"
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,900", "--virtual-time-budget=20000",
    ]
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", f"{base}/assets"], capture_output=True, text=True, timeout=120
    ).stdout
    assert "received_rows" in dom and "validated_rows" in dom
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", f"{base}/assets"], capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
