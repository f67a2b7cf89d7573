"""`credit-etl ui` starts the Dagster UI on the persistent instance, and a real headless browser
shows the project's assets in it."""

from __future__ import annotations

import json
import os
import re
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
    assert groups.get("penalties/received_rows") == "ingest"
    assert groups.get("penalties/daily_metrics") == "measure"
    assert groups.get("monthly_indicators") == "export"
    assert (data_dir / "dagster_home" / "dagster.yaml").exists()
    assert "telemetry" in (data_dir / "dagster_home" / "dagster.yaml").read_text()
    # the instance the webserver serves says: no community/newsletter pop-up
    data = _graphql(base, "{ instance { hasInfo } shouldShowNux }")
    assert data["data"]["shouldShowNux"] is False, data


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
    def dom(path: str) -> str:
        return subprocess.run(
            [CHROMIUM, *flags, "--dump-dom", f"{base}{path}"], capture_output=True, text=True, timeout=120
        ).stdout

    # asset keys are per feed (<feed>/<stage>): the catalog lists the feeds, a feed's folder its stages
    # (the catalog is a virtualised list: the first feeds' keys are drawn, "feed / stage")
    assert re.search(r"[a-z_]+ / received_rows", dom("/assets"))
    penalties = dom("/assets/penalties")
    assert "received_rows" in penalties and "validated_rows" in penalties and "daily_metrics" in penalties
    assert "【行政处罚（penalties）】" in penalties  # the contract's title in the description
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", f"{base}/assets"], capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def _port_free(port: int) -> bool:
    """Nobody listens on the port: a new server (which sets SO_REUSEADDR, as uvicorn does) can
    bind and listen. Closed connections in TIME_WAIT do not count."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_ui_stops_its_whole_process_tree_on_a_signal(tmp_path, sig):
    """A service manager (or Ctrl+C) stops `credit-etl ui`: webserver, daemon and code servers go
    with it and the port is free again. The signal goes to the credit-etl process only."""
    import psutil

    port = _free_port()
    tree: list = []
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "--data-dir", str(tmp_path), "ui", "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            assert proc.poll() is None, "credit-etl ui exited early"
            tree = psutil.Process(proc.pid).children(recursive=True)
            names = " ".join(" ".join(p.cmdline()) for p in tree if p.is_running())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                    pass
                if "dagster-daemon" in names or "daemon" in names:
                    break
            except OSError:
                pass
            time.sleep(1)
        else:
            pytest.fail("the Dagster UI (webserver and daemon) did not start within 120 s")
        assert len(tree) >= 2 and not _port_free(port)

        os.kill(proc.pid, sig)  # the parent only, as systemd's KillMode=mixed or a shell's kill would
        assert proc.wait(timeout=60) == 0
        _gone, alive = psutil.wait_procs(tree, timeout=30)
        assert alive == [], [" ".join(p.cmdline()) for p in alive]
        for _ in range(20):
            if _port_free(port):
                break
            time.sleep(0.5)
        assert _port_free(port), f"port {port} still bound"
    finally:  # a failing run must not leave servers behind (only the processes this test started)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for p in tree:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
