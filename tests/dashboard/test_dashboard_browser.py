"""What a data officer sees in the dashboard, in a real headless Chromium with the network blocked.

The page under test is the one the nightly job drew (``county`` fixture). Expected figures are
recomputed here with plain SQL over the warehouse's base tables (ingest manifest, versions,
timeliness, record arrivals, the departments' ledgers), not through the dashboard's own queries.
"""

from __future__ import annotations

import base64
import re
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


def expected_league(db) -> dict[tuple[str, str], list[str]]:
    """Each league row as it should read, keyed by (department name, feed title) as the registry
    and the contracts name them, recomputed from the base tables with the documented definitions
    (ARCHITECTURE "Metrics", warehouse/sql/030_measure.sql): 归集量 = rows received in the month
    (manifest rows_parsed); 清洗入库量 = versions loaded in the month; 合规率 = passed ÷ received rows,
    passed = received − quarantined rows; 及时率 = on-time ÷ timed records first received in the
    month; 迟报率 = 100 − 及时率; 上报率 = records decided in the month and received by the as-of
    day ÷ the department's declared count (— when it declared nothing); 迟报记录 = records not on
    time; 未整改问题 = open quarantine items; 最后报送 = last day bytes arrived, else 从未报送."""
    contracts = load_contracts()
    registry = load_registry(contracts=contracts)
    con = duckdb.connect(str(db), read_only=True)
    out = {}
    try:
        for dept, feed in owed_records():
            received, last = con.execute(
                "SELECT coalesce(sum(rows_parsed) FILTER (WHERE received_date BETWEEN ? AND ?), 0), "
                "max(received_date) FILTER (WHERE sha256 IS NOT NULL AND received_date <= ?) "
                "FROM ingest_manifest WHERE dept = ? AND feed = ?", [FIRST, LAST, LAST_DAY, dept, feed]).fetchone()
            quarantined, open_items = con.execute(
                "SELECT count(*) FILTER (WHERE received_date BETWEEN ? AND ?), "
                "count(*) FILTER (WHERE status = 'open' AND received_date <= ?) "
                "FROM quarantine_items WHERE dept = ? AND feed = ?", [FIRST, LAST, LAST, dept, feed]).fetchone()
            loaded = con.execute(
                f"SELECT count(*) FROM {feed}_versions WHERE _dept = ? AND _received_date BETWEEN ? AND ?",
                [dept, FIRST, LAST]).fetchone()[0]
            timed, on_time = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE on_time) FROM timeliness "
                "WHERE dept = ? AND feed = ? AND first_received BETWEEN ? AND ?", [dept, feed, FIRST, LAST]).fetchone()
            records = con.execute(
                "SELECT count(DISTINCT business_key) FROM record_arrivals "
                "WHERE dept = ? AND feed = ? AND period_month = ? AND first_received <= ?",
                [dept, feed, MONTH, LAST_DAY]).fetchone()[0]
            declared = con.execute(
                "SELECT sum(declared_count) FROM declarations_current WHERE _dept = ? AND target_feed = ? AND month = ?",
                [dept, feed, MONTH]).fetchone()[0]
            timely = pct(on_time, timed)
            out[(registry.department(dept).name, contracts[feed].title)] = [
                str(received), str(loaded), pct(received - quarantined, received), timely,
                "—" if timely == "—" else f"{Decimal('100.00') - Decimal(timely[:-1])}%",
                "—" if declared is None else pct(records, declared),
                str(timed - on_time), str(open_items), last.isoformat() if last else "从未报送",
            ]
    finally:
        con.close()
    return out


# the league as a person reads it: the innerText of every cell of the rows that are drawn
_VISIBLE_LEAGUE = """() => [...document.querySelectorAll('#league tbody tr')]
    .filter(r => { const b = r.getBoundingClientRect(); return b.width > 0 && b.height > 0; })
    .map(r => [...r.cells].map(c => c.innerText.trim()))"""
RANK, DEPT, FEED, RECEIVED, LOADED, COMPLIANCE, TIMELY, LATE, REPORT = range(9)
PERCENT = re.compile(r"(\d{1,3}\.\d\d)%")


def visible_league(page) -> list[list[str]]:
    return page.evaluate(_VISIBLE_LEAGUE)


def shown_percent(text: str) -> Decimal | None:
    """A percentage cell as printed: "93.75%" (two decimals), or "—" for no data."""
    if text == "—":
        return None
    m = PERCENT.fullmatch(text)
    assert m, f"not a percentage as the page prints them: {text!r}"
    return Decimal(m.group(1))


def test_league_rows_show_the_warehouse_figures(index, county, open_page):
    w = open_page(index.as_uri())
    rows = visible_league(w.page)
    expected = expected_league(county.db_path)
    assert len(expected) == len(owed_records()) >= 16  # every department × records feed it owes
    assert len(rows) == len(expected)  # each drawn, the silent department included
    shown = {(r[DEPT], r[FEED]): r[RECEIVED:] for r in rows}
    assert len(shown) == len(rows)  # one row per department × feed
    assert shown.keys() == expected.keys()
    # the percentages are compared as numbers read from the text, the counts and dates as printed
    for key, cells in shown.items():
        want = expected[key]
        got = cells[:2] + [shown_percent(c) for c in cells[2:6]] + cells[6:]
        assert got == want[:2] + [shown_percent(c) for c in want[2:6]] + want[6:], key
    # a real month with figures of every kind: rates below target, unknown 上报率, silence
    assert any(c[COMPLIANCE - RECEIVED] not in ("—", "100.00%") for c in shown.values())
    assert any(c[REPORT - RECEIVED] == "—" for c in shown.values())
    assert sum(int(c[0]) for c in shown.values()) > 100
    w.assert_clean()


# what a person sees of a rate cell against the 100% target: its background (dashboard.css)
GRADE_BACKGROUND = {"ok": "rgb(230, 244, 234)", "warn": "rgb(255, 244, 206)", "bad": "rgb(253, 236, 234)",
                    "na": "rgba(0, 0, 0, 0)"}


def _column(page, n: int) -> list[str]:
    return [r[n] for r in visible_league(page)]


def _sort_by(page, key: str, order: str) -> None:
    """Click a header as a person would and wait until the table says it is sorted that way."""
    page.click(f'#league th[data-key="{key}"]')
    page.wait_for_selector(f'#league th[data-key="{key}"][aria-sort="{order}"]')


def test_league_is_worst_first_and_sorts_on_click(index, open_page):
    w = open_page(index.as_uri())
    page = w.page
    owed = owed_records()
    registry = load_registry(contracts=load_contracts())
    first = visible_league(page)[0]
    assert first[DEPT] == registry.department(SILENT_DEPT).name  # nothing received: worst
    assert first[RECEIVED] == "0" and first[-1] == "从未报送"
    assert _column(page, RANK) == [str(i) for i in range(1, len(owed) + 1)]

    _sort_by(page, "received", "ascending")
    received = [int(v) for v in _column(page, RECEIVED)]
    assert received == sorted(received) and received[0] == 0
    _sort_by(page, "received", "descending")
    assert [int(v) for v in _column(page, RECEIVED)] == sorted(received, reverse=True)

    _sort_by(page, "compliance", "ascending")
    values = [shown_percent(v) for v in _column(page, COMPLIANCE)]
    known = [v for v in values if v is not None]
    assert known == sorted(known) and len(known) < len(values)
    assert values[len(known):] == [None] * (len(values) - len(known))  # no data sorts last
    # colours against the 100% target, as drawn
    backgrounds = page.evaluate(
        """() => [...document.querySelectorAll('#league tbody tr td:nth-child(6)')]
                  .map(c => getComputedStyle(c).backgroundColor)""")
    assert len(backgrounds) == len(values)
    for v, bg in zip(values, backgrounds):
        want = "na" if v is None else "ok" if v >= 100 else "warn" if v >= 90 else "bad"
        assert bg == GRADE_BACKGROUND[want], (v, bg)
    assert {"ok", "bad"} <= {g for g, c in GRADE_BACKGROUND.items() if c in backgrounds}
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
    """Each department's details open on a click on its summary, as a person opens them; then its
    links are drawn (a box of non-zero size): the feedback workbooks on disk and the Data Docs."""
    w = open_page(index.as_uri())
    page = w.page
    sections = page.locator("details.dept")
    names = {d.code: d.name for d in load_registry(contracts=load_contracts()).departments}
    assert sections.count() == len({dept for dept, _ in owed_records()})
    linked_workbooks = 0
    for i in range(sections.count()):
        section = sections.nth(i)
        dept = section.get_attribute("data-dept")
        summary = section.locator("summary")
        assert summary.inner_text().startswith(names[dept] + " · 迟报")
        links = section.locator("a")
        assert links.count() >= 1 and not links.first.is_visible()  # closed: nothing of it is drawn
        summary.click()
        links.last.wait_for(state="visible")
        shown = {}
        for j in range(links.count()):
            link = links.nth(j)
            box = link.bounding_box()
            assert link.is_visible() and box and box["width"] > 0 and box["height"] > 0, (dept, link.inner_text())
            shown[link.inner_text().strip()] = link.get_attribute("href")
        assert shown.pop("数据校验文档") == "../data_docs/index.html"
        on_disk = sorted((county.reports / "feedback" / dept).glob("*.xlsx")) if (county.reports / "feedback" / dept).exists() else []
        assert len(on_disk) <= 10  # the page lists the ten newest; this county is younger than that
        assert shown == {p.name: f"../feedback/{dept}/{p.name}" for p in on_disk}, dept
        for href in shown.values():
            assert (index.parent / href).resolve().is_file(), href
        linked_workbooks += len(shown)
    assert linked_workbooks > 0, "no feedback workbook linked"
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
