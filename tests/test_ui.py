"""`credit-etl ui` starts the Dagster UI on the persistent instance, and a real headless browser
(the session's shared Playwright Chromium, network to other hosts blocked) shows the project's
assets in it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]


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


LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
# the pipeline's stages, as the asset groups of pipelines/definitions.py name them
STAGE_GROUPS = ("ingest", "validate", "load", "measure", "credit", "export", "publish")
# a feed's assets as the catalog lists them in its folder (asset keys are <feed>/<stage>)
FEED_STAGES = ("received_rows", "validated_rows", "warehouse_records", "daily_metrics")
# the code location loads in a subprocess after the webserver answers: on two shared cores that
# can take a while; the page shows it once loaded, so the wait is for the page, not a clock
LOADED_MS = 180_000


def _local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname in LOCAL_HOSTS


def test_headless_browser_shows_the_asset_graph(ui, browser):
    """The Dagster UI as a person sees it in a real Chromium with every request to another host
    aborted and recorded: the global lineage graph draws the pipeline's stages, the catalog's
    penalties folder lists its stage assets with the contract's title; nothing left the machine."""
    base, _ = ui
    foreign: list[str] = []
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, service_workers="block")
    try:
        # every request is seen (aborted ones included); those to other hosts are recorded and cut
        ctx.on("request", lambda r: None if _local(r.url) else foreign.append(r.url))
        ctx.route(lambda url: not _local(url), lambda route: route.abort())
        page = ctx.new_page()
        page.on("websocket", lambda ws: None if _local(ws.url) else foreign.append(ws.url))

        # the asset graph: one node per stage group, drawn in the lineage SVG
        page.goto(f"{base}/asset-groups")
        graph = page.locator("svg foreignObject")
        graph.locator('[data-tooltip="ingest"]').first.wait_for(state="visible", timeout=LOADED_MS)
        for group in STAGE_GROUPS:
            node = graph.locator(f'[data-tooltip="{group}"]').filter(visible=True)
            assert node.count() == 1, group
            box = node.bounding_box()
            assert box and box["width"] > 0 and box["height"] > 0, group
            assert node.inner_text().strip() == group

        # the catalog, folder of one feed: its stages by name and the contract's title in the descriptions
        page.goto(f"{base}/assets/penalties")
        rows = page.locator('a[href^="/assets/penalties/"]')
        rows.first.wait_for(state="visible", timeout=LOADED_MS)
        for stage in FEED_STAGES:
            link = page.locator(f'a[href="/assets/penalties/{stage}"]')
            assert link.get_by_text(stage, exact=True).filter(visible=True).count() == 1, stage
        titles = page.get_by_text("【行政处罚（penalties）】", exact=False).filter(visible=True)
        assert titles.count() >= len(FEED_STAGES)
        assert "归集：当日收到的该类信息的全部部门报送" in "\n".join(titles.all_inner_texts())
    finally:
        ctx.close()
    assert foreign == [], f"the Dagster UI tried to reach other hosts: {sorted(set(foreign))}"


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
