"""What a data officer sees in the dashboard, in a real headless Chromium with the network blocked.

The page under test is the one the nightly job drew (``county`` fixture). Expected figures are
recomputed here with plain SQL over the warehouse's base tables (ingest manifest, versions,
timeliness, record arrivals, the departments' ledgers), not through the dashboard's own queries.
"""

from __future__ import annotations

import base64
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import pytest

from dashboard_helpers import LAST_DAY, MONTH, SILENT_DEPT, START, artifact_dir
from contracts import load_contracts, load_registry

FIRST, LAST = date(2026, 10, 1), date(2026, 10, 31)


def pct(num, den) -> str:
    if not den:
        return "—"
    return str((Decimal(int(num)) * 100 / Decimal(int(den))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)) + "%"


def expected_headline(db) -> dict[str, str]:
    contracts = load_contracts()
    registry = load_registry(contracts=contracts)
    feeds = [c.feed for c in contracts.values() if c.role == "records"]
    owed = [(d.code, f) for d in registry.departments for f in d.feeds if f in feeds]
    in_list = ", ".join(f"'{f}'" for f in feeds)
    con = duckdb.connect(str(db), read_only=True)
    try:
        received = con.execute(
            f"SELECT coalesce(sum(rows_parsed), 0) FROM ingest_manifest WHERE feed IN ({in_list}) "
            "AND received_date BETWEEN ? AND ?", [FIRST, LAST]).fetchone()[0]
        loaded = sum(con.execute(
            f"SELECT count(*) FROM {f}_versions WHERE _received_date BETWEEN ? AND ?", [FIRST, LAST]).fetchone()[0]
            for f in feeds)
        timed, on_time = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE on_time) FROM timeliness WHERE feed IN ({in_list}) "
            "AND first_received BETWEEN ? AND ?", [FIRST, LAST]).fetchone()
        declared = dict(((r[0], r[1]), r[2]) for r in con.execute(
            "SELECT _dept, target_feed, declared_count FROM declarations_current WHERE month = ?", [MONTH]).fetchall())
        # 上报率 counts records by DECISION month (the month the ledger declares), received by the
        # page's as-of day (the last received day)
        records = dict(((r[0], r[1]), r[2]) for r in con.execute(
            "SELECT dept, feed, count(*) FROM record_arrivals WHERE period_month = ? AND first_received <= ? GROUP BY ALL",
            [MONTH, LAST]).fetchall())
    finally:
        con.close()
    pairs = [p for p in owed if p in declared]
    timely = pct(on_time, timed)
    late = "—" if timely == "—" else f"{Decimal('100.00') - Decimal(timely[:-1])}%"
    return {
        "received": str(received), "loaded": str(loaded), "compliance": pct(loaded, received),
        "timely": timely, "late": late,
        "report": pct(sum(records.get(p, 0) for p in pairs), sum(declared[p] for p in pairs)),
    }


def owed_records() -> list[tuple[str, str]]:
    """(department, feed) for every records feed a department owes, as registry and contracts state it."""
    contracts = load_contracts()
    registry = load_registry(contracts=contracts)
    return [(d.code, f) for d in registry.departments for f in d.feeds
            if f in contracts and contracts[f].role == "records" and contracts[f].enabled]


def expected_rules() -> dict[str, str]:
    """Deadline per owed records feed as its contract states it (working or calendar days)."""
    contracts = load_contracts()
    out = {}
    for _dept, f in owed_records():
        d = contracts[f].deadline
        out[contracts[f].title] = "未规定" if d is None else f"{d.days}个工作日" if d.kind == "working" else f"{d.days}日"
    return out


@pytest.fixture(scope="module")
def index(county):
    path = county.reports / "dashboard" / "index.html"
    assert path.exists(), "the nightly job did not draw the dashboard"
    return path


def test_headline_equals_the_warehouse(index, county, open_page):
    w = open_page(index.as_uri())
    shown = {m: w.page.inner_text(f'#headline [data-metric="{m}"] .v').strip()
             for m in ("received", "loaded", "compliance", "timely", "late", "report")}
    expected = expected_headline(county.db_path)
    assert int(expected["received"]) > 100  # a real month, not an empty page
    assert shown == expected
    # the deadline rule per feed, as the contracts state it
    rules = dict(zip(w.page.locator("#feeds tbody tr td:nth-child(1)").all_inner_texts(),
                     w.page.locator("#feeds tbody tr td.rule").all_inner_texts()))
    assert rules == expected_rules()
    assert {"行政许可": "7个工作日", "水电气欠费": "7日"}.items() <= rules.items()  # the contracts' wording
    w.assert_clean()


def _column(page, n: int) -> list[str]:
    return page.locator(f"#league tbody tr td:nth-child({n})").evaluate_all("els => els.map(e => e.dataset.value)")


def test_league_is_worst_first_and_sorts_on_click(index, open_page):
    w = open_page(index.as_uri())
    page = w.page
    rows = page.locator("#league tbody tr")
    owed = owed_records()
    assert len(owed) >= 16  # the registry really lists the departments' obligations
    assert rows.count() == len(owed)  # every department × records feed it owes, silent ones included
    assert sorted(zip(rows.evaluate_all("els => els.map(e => e.dataset.dept)"),
                      rows.evaluate_all("els => els.map(e => e.dataset.feed)"))) == sorted(owed)
    assert rows.first.get_attribute("data-dept") == SILENT_DEPT  # nothing received: worst
    assert _column(page, 1) == [str(i) for i in range(1, len(owed) + 1)]

    page.click('#league th[data-key="received"]')
    received = [int(v) for v in _column(page, 4)]
    assert received == sorted(received) and received[0] == 0
    page.click('#league th[data-key="received"]')
    received_desc = [int(v) for v in _column(page, 4)]
    assert received_desc == sorted(received, reverse=True)
    assert page.get_attribute('#league th[data-key="received"]', "aria-sort") == "descending"

    page.click('#league th[data-key="compliance"]')
    values = _column(page, 6)
    known = [Decimal(v) for v in values if v != ""]
    assert known == sorted(known) and values[-1] == ""  # no data sorts last
    # colours against the 100% target
    cells = page.locator("#league tbody tr td:nth-child(6)")
    for i in range(cells.count()):
        v, cls = values[i], cells.nth(i).get_attribute("class")
        want = "na" if v == "" else "ok" if Decimal(v) >= 100 else "warn" if Decimal(v) >= 90 else "bad"
        assert want in cls.split(), (v, cls)
    w.assert_clean()


def _series(page, chart: str) -> dict[str, list]:
    return page.evaluate(
        f"() => Object.fromEntries(window.dashboardCharts.{chart}.getOption().series.map(s => [s.name, s.data]))")


def test_department_selector_changes_the_trend_chart(index, county, open_page):
    w = open_page(index.as_uri())
    page = w.page
    county_daily = _series(page, "daily")
    con = duckdb.connect(str(county.db_path), read_only=True)
    try:
        def received_by_day(dept: str | None) -> list[int]:
            rows = dict(con.execute(
                "SELECT day, sum(received_rows) FROM metrics_daily WHERE day BETWEEN ? AND ? "
                + ("AND dept = ? " if dept else "") + "GROUP BY day",
                [FIRST, LAST] + ([dept] if dept else [])).fetchall())
            return [int(rows.get(date(2026, 10, d), 0)) for d in range(1, LAST_DAY.day + 1)]

        assert county_daily["归集量"][:LAST_DAY.day] == received_by_day(None)
        assert county_daily["归集量"][LAST_DAY.day:] == [None] * (31 - LAST_DAY.day)  # days not yet received
        page.select_option("#dept-select", "sthjj")
        assert page.evaluate("document.body.dataset.trendScope") == "sthjj"
        dept_daily = _series(page, "daily")
        assert dept_daily["归集量"][:LAST_DAY.day] == received_by_day("sthjj")
        assert dept_daily["归集量"] != county_daily["归集量"]
        assert dept_daily["合规率"] != county_daily["合规率"] or dept_daily["及时率"] != county_daily["及时率"]
        # the monthly axis: every month from the first the warehouse has figures for (records
        # decided in earlier months and received in October count there for 上报率) up to the
        # page's month, months without figures included (no gap jumped over); 归集量 is what was
        # received in each of them
        shown_months = page.evaluate("() => window.dashboardCharts.monthly.getOption().xAxis[0].data")
        [(start,)] = con.execute(
            "SELECT min(month) FROM metrics_monthly WHERE month BETWEEN '2025-11' AND ?", [MONTH]).fetchall()
        months = [r[0] for r in con.execute(
            "SELECT strftime(m, '%Y-%m') FROM range(CAST(? || '-01' AS DATE), CAST(? || '-01' AS DATE) + INTERVAL 1 MONTH, "
            "INTERVAL 1 MONTH) t(m) ORDER BY 1", [start, MONTH]).fetchall()]
        assert shown_months == months and months[-1] == MONTH
        by_month = dict(con.execute(
            "SELECT strftime(day, '%Y-%m'), sum(received_rows) FROM metrics_daily WHERE dept = 'sthjj' GROUP BY ALL").fetchall())
        assert _series(page, "monthly")["归集量"] == [int(by_month.get(m, 0)) for m in months]
        assert _series(page, "monthly")["归集量"][-1] == sum(received_by_day("sthjj")) > 0
    finally:
        con.close()
    page.select_option("#dept-select", "ALL")
    assert _series(page, "daily")["归集量"] == county_daily["归集量"]
    w.assert_clean()


def test_a_silent_department_shows_its_banner(index, open_page):
    w = open_page(index.as_uri())
    banner = w.page.locator(f'#banners .banner[data-dept="{SILENT_DEPT}"]')
    assert banner.count() == 1
    assert banner.is_visible()
    text = banner.inner_text()
    assert "巫山县天然气有限责任公司" in text and "从未报送" in text and "水电气欠费" in text
    assert f"自 {START.isoformat()} 起" in text
    # the departments that did send have no banner
    assert w.page.locator("#banners .banner[data-dept]").count() == 1
    # weekly view: the silent department delivered nothing by Friday of the week of 10-12
    cells = w.page.locator(f'#weekly tr[data-dept="{SILENT_DEPT}"] td.wk')
    assert "wk-no" in cells.nth(2).get_attribute("class")
    assert "wk-yes" in w.page.locator('#weekly tr[data-dept="scjgj"] td.wk').nth(2).get_attribute("class")
    w.assert_clean()


def test_department_details_link_to_feedback_workbooks_and_data_docs(index, county, open_page):
    w = open_page(index.as_uri())
    page = w.page
    hrefs = page.locator("details.dept a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    workbooks = [h for h in hrefs if h.startswith("../feedback/")]
    assert workbooks, "no feedback workbook linked"
    for h in workbooks:
        assert (index.parent / h).resolve().exists(), h
    assert "../data_docs/index.html" in hrefs
    assert (county.data_docs / "index.html").exists()
    w.assert_clean()


def test_screenshot_is_written_and_not_blank(index, open_page):
    w = open_page(index.as_uri())
    target = artifact_dir() / "dashboard.png"
    png = w.page.screenshot(path=str(target), full_page=True)
    assert target.exists() and target.stat().st_size == len(png) > 20_000
    # decode in the browser and measure: a blank page has one colour and no variance
    stats = w.page.evaluate(
        """async (b64) => {
            const img = new Image(); img.src = 'data:image/png;base64,' + b64; await img.decode();
            const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data;
            let n = 0, s = 0, s2 = 0; const colours = new Set();
            for (let i = 0; i < d.length; i += 4 * 7) { const v = (d[i] + d[i+1] + d[i+2]) / 3; n++; s += v; s2 += v * v;
              if (colours.size < 5000) colours.add((d[i] << 16) | (d[i+1] << 8) | d[i+2]); }
            const mean = s / n; return {variance: s2 / n - mean * mean, colours: colours.size, w: c.width, h: c.height};
        }""",
        base64.b64encode(png).decode(),
    )
    assert stats["w"] == 1400 and stats["h"] > 1500
    assert stats["variance"] > 100 and stats["colours"] > 50, stats
    # the charts drew on their canvases
    painted = w.page.evaluate(
        """() => [...document.querySelectorAll('#chart-daily canvas, #chart-monthly canvas')].map(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let k = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) k++; return k; })""")
    assert len(painted) >= 2 and all(k > 1000 for k in painted), painted
    w.assert_clean()


def test_served_on_loopback_makes_no_other_request(index, county, open_page):
    from assets.dashboard.serve import start_server

    server, url = start_server(county.reports, 0)
    try:
        assert url.startswith("http://127.0.0.1:")
        origin = url.split("/dashboard/")[0]
        w = open_page(url, own_origin=origin)
        assert w.page.inner_text('#headline [data-metric="received"] .v').strip() == expected_headline(county.db_path)["received"]
        docs = w.page.request.get(origin + "/data_docs/index.html")
        assert docs.status == 200
        w.assert_clean()
    finally:
        server.shutdown()
        server.server_close()
