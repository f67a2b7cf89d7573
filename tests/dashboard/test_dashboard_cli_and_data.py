"""The dashboard's command, its PDF bulletin, the obligations table and the silence rule."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from datetime import date
from decimal import Decimal

import duckdb
import pytest
import requests

from dashboard_helpers import CHROMIUM, DAYS, LAST_DAY, MONTH, REPO, SILENCE_DAYS, SILENT_DEPT
from contracts import load_contracts, load_registry


def test_obligations_table_lists_every_owed_feed_from_the_catalog(county):
    contracts = load_contracts()
    registry = load_registry(contracts=contracts)
    con = duckdb.connect(str(county.db_path), read_only=True)
    try:
        rows = con.execute("SELECT dept, feed, role, deadline_rule FROM dept_feed_obligations ORDER BY dept_order, feed").fetchall()
    finally:
        con.close()
    expected = sorted((d.code, f) for d in registry.departments for f in d.feeds if f in contracts)
    assert sorted((r[0], r[1]) for r in rows) == expected
    by = {(r[0], r[1]): r for r in rows}
    assert by[(SILENT_DEPT, "utility_arrears")][2:] == ("records", "7日")
    assert by[("scjgj", "penalties")][2:] == ("records", "7个工作日")
    assert by[("fgw", "repairs")][2:] == ("repair", None)


def test_silence_threshold_is_configurable_and_counts_days(county):
    """Seen from 2026-10-30, every department that sent has been silent 14+ days; N decides."""
    from assets.dashboard.data import dashboard_data

    contracts = load_contracts()
    registry = load_registry(contracts=contracts)
    con = duckdb.connect(str(county.db_path), read_only=True)
    try:
        last = dict(((r[0], r[1]), r[2]) for r in con.execute(
            "SELECT dept, feed, max(received_date) FROM ingest_manifest WHERE sha256 IS NOT NULL GROUP BY ALL").fetchall())
        as_of = date(2026, 10, 30)
        late_view = dashboard_data(con, county, MONTH, as_of, contracts, registry, silence_days=7)
        lenient = dashboard_data(con, county, MONTH, as_of, contracts, registry, silence_days=30)
        current = dashboard_data(con, county, MONTH, LAST_DAY, contracts, registry, silence_days=DAYS - 1)
        strict_never = dashboard_data(con, county, MONTH, LAST_DAY, contracts, registry, silence_days=DAYS)["banners"]
    finally:
        con.close()
    silent = {(b["dept"], b["feed"]): b for b in late_view["banners"] if b["kind"] == "silent"}
    owed = {(d.code, f) for d in registry.departments for f in d.feeds if contracts[f].role == "records"}
    assert set(silent) == owed - {(SILENT_DEPT, "utility_arrears")}
    for pair, banner in silent.items():
        assert banner["days"] == (as_of - last[pair]).days > 7
        assert last[pair].isoformat() in banner["text"]
    assert lenient["banners"] == []  # nobody silent for more than 30 days
    # never sent: named once the days since collection began exceed N
    assert [(b["kind"], b["dept"], b["days"]) for b in current["banners"]] == [("never", SILENT_DEPT, DAYS)]
    assert strict_never == []
    gas = next(d for d in current["dept_freshness"] if d["dept"] == SILENT_DEPT)
    assert gas["last_delivery"] is None and gas["feeds"][0]["silent_days"] is None


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, **kw)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install -y chromium)")
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="no pdftotext (apt-get install -y poppler-utils)")
def test_pdf_bulletin_names_departments_below_target(county):
    out = _cli("--data-dir", str(county.root), "dashboard", "--pdf", "--month", MONTH, "--silence-days", str(SILENCE_DAYS))
    assert out.returncode == 0, out.stderr
    pdf = county.reports / "dashboard" / f"bulletin_{MONTH}.pdf"
    assert pdf.exists() and pdf.read_bytes()[:5] == b"%PDF-"
    assert str(pdf) in out.stdout
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = re.sub(r"\s+", "", text)
    assert "巫山县公共信用信息归集情况通报" in flat and "（2026年10月）" in flat
    # a department whose 合规率 is below 100% (recomputed here) is named in 通报事项
    registry = load_registry(contracts=load_contracts())
    names = {d.code: d.name for d in registry.departments}
    con = duckdb.connect(str(county.db_path), read_only=True)
    try:
        below = con.execute(
            "SELECT dept, feed, passed_rows, received_rows FROM metrics_monthly WHERE month = ? AND passed_rows < received_rows "
            "AND feed IN ('permits', 'penalties', 'utility_arrears', 'agri_subsidies') ORDER BY dept, feed", [MONTH]).fetchall()
    finally:
        con.close()
    assert below
    named = flat.split("合规率未达到100%的部门：", 1)[1].split("（三）", 1)[0]
    for dept, _feed, passed, received in below:
        rate = (Decimal(passed) * 100 / Decimal(received)).quantize(Decimal("0.01"))
        assert names[dept] in named, dept
        assert f"合规率{rate}%" in named, (dept, rate)
    assert "迟报率超过50%的部门" in flat
    # the silent department is named too
    assert names[SILENT_DEPT] in flat.split("长期未报送的部门：", 1)[1]


def test_cli_serves_on_loopback_only_and_stops_on_sigterm(county):
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "--data-dir", str(county.root), "dashboard",
                             "--serve", "--port", "0", "--silence-days", str(SILENCE_DAYS)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in proc.stdout:
            m = re.search(r"(http://\S+)", line)
            if m:
                url = m.group(1)
                break
        assert url and url.startswith("http://127.0.0.1:") and url.endswith("/dashboard/index.html"), url
        page = requests.get(url, timeout=10)
        assert page.status_code == 200 and "归集质量看板" in page.text
        vendor = requests.get(url.replace("index.html", "vendor/echarts/echarts.min.js"), timeout=10)
        assert vendor.status_code == 200 and len(vendor.content) > 500_000
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_server_binds_the_loopback_address_only(tmp_path):
    from assets.dashboard.serve import make_server

    server = make_server(tmp_path, 0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


def test_cli_explains_a_missing_warehouse(tmp_path):
    out = _cli("--data-dir", str(tmp_path / "none"), "dashboard")
    assert out.returncode == 2
    assert "仓库数据库不存在" in out.stderr


def test_nightly_job_draws_the_dashboard():
    from pipelines.definitions import defs

    job = defs.resolve_job_def("nightly_collection")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    # the graph is per feed (<feed>/<stage>); the dashboard is one site-wide asset after every feed's metrics
    metrics = {f"{feed}/daily_metrics" for feed, c in load_contracts().items() if c.role == "records"}
    assert {"permits/daily_metrics", "penalties/daily_metrics"} <= metrics
    assert "quality_dashboard" in keys and metrics <= keys
    spec = next(s for a in defs.assets if hasattr(a, "specs") for s in a.specs if s.key.to_user_string() == "quality_dashboard")
    assert spec.owners and spec.kinds and "看板" in spec.description
    upstream = {k.to_user_string() for k in job.asset_layer.asset_graph.get(spec.key).parent_keys}
    assert metrics <= upstream  # drawn after every records feed's metrics of the night


def test_provisional_months_carry_a_banner(county):
    """2027 has no State Council holiday file yet: its figures are provisional, and the page says so."""
    from assets.dashboard.data import dashboard_data

    contracts = load_contracts()
    registry = load_registry(contracts=contracts)
    con = duckdb.connect(str(county.db_path), read_only=True)
    try:
        future = dashboard_data(con, county, "2027-01", date(2027, 1, 10), contracts, registry)
        now = dashboard_data(con, county, MONTH, LAST_DAY, contracts, registry)
    finally:
        con.close()
    provisional = [b for b in future["banners"] if b["kind"] == "provisional"]
    assert len(provisional) == 1 and "2027" in provisional[0]["text"] and "暂定" in provisional[0]["text"]
    assert not [b for b in now["banners"] if b["kind"] == "provisional"]


def test_an_earlier_month_gets_its_own_page_and_keeps_the_index(county):
    from assets.dashboard.render import write_dashboard

    index = county.reports / "dashboard" / "index.html"
    before = index.read_bytes()
    out = write_dashboard(county, month="2026-09")
    assert out.index is None and out.month_page.name == "2026-09.html" and out.month_page.exists()
    assert out.as_of == date(2026, 9, 30) and out.headline["received"] == 0
    assert index.read_bytes() == before
    with pytest.raises(ValueError):
        write_dashboard(county, month="2026-13")


def test_obligations_follow_the_catalog_when_it_changes(tmp_path):
    from warehouse.db import connect
    from warehouse.layout import DataDir
    from warehouse.obligations import refresh_obligations

    contracts = load_contracts()
    registry = load_registry(contracts=contracts)
    smaller = registry.model_copy(update={"departments": registry.departments[:2]})
    with connect(DataDir(tmp_path)) as con:
        full = refresh_obligations(con, contracts, registry)
        again = refresh_obligations(con, contracts, registry)
        assert full == again == con.execute("SELECT count(*) FROM dept_feed_obligations").fetchone()[0]
        n = refresh_obligations(con, contracts, smaller)
        depts = {r[0] for r in con.execute("SELECT DISTINCT dept FROM dept_feed_obligations").fetchall()}
    assert n == sum(len(d.feeds) for d in registry.departments[:2]) < full
    assert depts == {d.code for d in registry.departments[:2]}


def test_a_warehouse_no_night_has_loaded_still_draws_its_dashboard(tmp_path):
    """The month's figures read the ledger as of the page's day: before any ledger table exists
    (no night has loaded anything) nothing is declared, and the page is drawn with empty rates."""
    from assets.dashboard.render import write_dashboard
    from warehouse.db import connect
    from warehouse.layout import DataDir

    dd = DataDir(tmp_path / "data")
    with connect(dd) as con:  # the schema only: no feed table yet
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '%_versions'").fetchone()[0] == 0
    out = write_dashboard(dd, today=date(2026, 10, 5))
    assert out.as_of == date(2026, 10, 5) and out.month_page.exists()
    assert out.headline["received"] == 0 and out.headline["report"] is None and out.headline["declared_pairs"] == 0
