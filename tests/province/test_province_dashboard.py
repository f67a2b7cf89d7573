"""The province league page in a real headless Chromium (Debian's chromium via Playwright) with the
network blocked: visible rows in rank order equal plain SQL over ``county_metrics_daily``, one
chart per county drawn (worst first) from that county's daily figures, the table sorts, zero
requests to another host, zero console errors, no full ID or phone number on the page."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import duckdb
import pytest

from assets.province.ranking import Period
from assets.province.report import write_province_dashboard
from province_report_data import COUNTIES, FULL_ID, FULL_PHONE, MONTH, PLAIN_COUNTY_SQL, build
from warehouse.masking import find_unmasked

REPO = Path(__file__).resolve().parents[2]


def artifact_dir() -> Path:
    d = Path(os.environ.get("CREDIT_ETL_TEST_ARTIFACTS") or REPO / "tmp" / "test-artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("province")
    db = build(root / "province.duckdb")
    con = duckdb.connect(str(db), read_only=True)
    try:
        plain = con.execute(PLAIN_COUNTY_SQL, [MONTH]).fetchall()
        daily = {code: con.execute(
            "SELECT strftime(day, '%m-%d'), sum(received_rows) FROM county_metrics_daily "
            "WHERE county_code = ? AND strftime(day, '%Y-%m') = ? GROUP BY day ORDER BY day", [code, MONTH]).fetchall()
            for code in COUNTIES}
        path = write_province_dashboard(con, Period.month(MONTH), root / "reports", counties=COUNTIES, region="重庆市")
    finally:
        con.close()
    return path, plain, daily


@pytest.fixture
def page(browser, page_file):
    path = page_file[0]
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, service_workers="block")
    pg = ctx.new_page()
    state = {"foreign": [], "errors": [], "requests": []}

    def route(r):
        u = r.request.url
        state["requests"].append(u)
        if u.startswith("file://") or u.startswith("data:"):
            r.continue_()
        else:
            state["foreign"].append(u)
            r.abort()

    ctx.route("**/*", route)
    pg.on("console", lambda m: state["errors"].append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: state["errors"].append(str(e)))
    pg.goto(path.as_uri(), wait_until="load")
    pg.wait_for_function("window.provinceCharts !== undefined", timeout=15000)
    yield pg, state
    ctx.close()


def _column(pg, table: str, col: int) -> list[str]:
    return pg.eval_on_selector_all(f"#{table} tbody tr", f"rows => rows.filter(r => r.offsetParent !== null).map(r => r.cells[{col}].innerText.trim())")


def test_rows_in_rank_order_equal_plain_sql(page, page_file):
    pg, state = page
    _, plain, _ = page_file
    assert pg.is_visible("#county-league")
    names = _column(pg, "county-league", 2)
    assert names == [COUNTIES[p[0]] for p in plain] + ["渝中区"]
    assert _column(pg, "county-league", 0) == ["1", "2", "3", "4"]
    assert _column(pg, "county-league", 3)[:3] == [str(p[1]) for p in plain]
    assert _column(pg, "county-league", 5)[:3] == [f"{p[3]:.2f}%" for p in plain]
    headline = pg.inner_text("#headline [data-metric=received] .v")
    assert headline == str(sum(p[1] for p in plain))
    assert state["foreign"] == [] and state["errors"] == []
    assert any(u.endswith("vendor/echarts/echarts.min.js") for u in state["requests"])  # ECharts from disk


def test_a_chart_per_county_drawn_worst_first(page, page_file):
    pg, state = page
    _, plain, daily = page_file
    order = pg.eval_on_selector_all("#county-charts .county-chart", "els => els.map(e => e.dataset.county)")
    assert order == ["500103"] + [p[0] for p in reversed(plain)]  # nothing sent = worst, then by rank reversed
    assert "本期未收到" in pg.inner_text('#county-charts [data-county="500103"]')
    for code in [p[0] for p in plain]:
        opt = pg.evaluate(f"() => {{ const o = window.provinceCharts['{code}'].getOption(); "
                          "return {x: o.xAxis[0].data, bars: o.series[0].data}; }")
        assert list(zip(opt["x"], opt["bars"])) == [(d, int(n)) for d, n in daily[code]]
    painted = pg.evaluate(
        """() => [...document.querySelectorAll('#county-charts canvas')].map(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let k = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) k++; return k; })""")
    assert len(painted) == 3 and all(k > 1000 for k in painted), painted
    png = pg.screenshot(path=str(artifact_dir() / "province_dashboard.png"), full_page=True)
    stats = pg.evaluate(
        """async (b64) => {
            const img = new Image(); img.src = 'data:image/png;base64,' + b64; await img.decode();
            const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data; const colours = new Set();
            for (let i = 0; i < d.length && colours.size < 500; i += 4 * 7) colours.add((d[i] << 16) | (d[i+1] << 8) | d[i+2]);
            return colours.size; }""", base64.b64encode(png).decode())
    assert stats > 50
    assert state["foreign"] == [] and state["errors"] == []


def test_the_league_sorts(page, page_file):
    pg, state = page
    _, plain, _ = page_file
    pg.click("#county-league th[data-key=received]")
    received = [int(v) for v in _column(pg, "county-league", 3)]
    assert received == sorted(received)
    pg.click("#county-league th[data-key=received]")
    received = [int(v) for v in _column(pg, "county-league", 3)]
    assert received == sorted(received, reverse=True)
    assert pg.get_attribute("#county-league th[data-key=received]", "aria-sort") == "descending"
    pg.click("#county-league th[data-key=timely]")
    timely = _column(pg, "county-league", 6)
    assert timely[-1] == "—"  # no data sorts last
    assert [float(v.rstrip("%")) for v in timely[:-1]] == sorted(float(p[4]) for p in plain)
    pg.click("#dept-league th[data-key=dept]")
    assert len(_column(pg, "dept-league", 3)) > 5
    assert state["foreign"] == [] and state["errors"] == []


def test_no_full_id_or_phone_on_the_page(page, page_file):
    pg, _ = page
    html = page_file[0].read_text(encoding="utf-8")
    seen = pg.inner_text("body")
    for text in (html, seen):
        assert FULL_ID not in text and FULL_PHONE not in text and not find_unmasked(text)
    assert "138****5678" in seen  # the department is named, its number masked
