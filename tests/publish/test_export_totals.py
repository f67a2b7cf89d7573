"""The indicator workbook's totals agree with its rows and with the dashboard; what it refuses.

A real warehouse: ``credit-etl generate`` writes six received days (2026-08-29 to 2026-09-03,
every department, the August ledger filed on 1 September and the September ledger on the last
day), and six nights run through the ``nightly_collection`` Dagster job with the sample HTTP
department served locally. Exports are made through the real command line (a subprocess) and
read back with openpyxl.

Expected figures are recomputed here with plain SQL over the warehouse's base tables
(timeliness, record arrivals, the ledger's versions), not through the export's or the
dashboard's code: each department × feed row must show its own figures, and each 合计 (a
department's feeds), 全县合计 (a feed over the departments) and the 总计 must be the sum of its
rows' numerators over the sum of their denominators, as of the same day. For 上报率 a total
counts the rows that declared a count (a row without a ledger has no denominator; the water,
power and gas companies owe none), as the dashboard's headline does: the 总计 must equal it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import openpyxl
import pytest

from warehouse.layout import DataDir

ROOT = Path(__file__).resolve().parents[2]
START, DAYS = date(2026, 8, 29), 6
LAST = START + timedelta(days=DAYS - 1)  # 2026-09-03, the last received day
TOKEN = "totals-test-token"
RATES = ("合规率", "及时率", "迟报率", "上报率")


def _env() -> dict:
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", "CREDIT_ETL_FIRST_DAY": "2026-08-01"}
    for k in ("DAGSTER_HOME", "CREDIT_ETL_HTTP_BASE", "CREDIT_ETL_CONFIG"):
        env.pop(k, None)
    return env


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "--data-dir", str(root), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=_env())


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> DataDir:
    from contracts import load_contracts, load_registry
    from pipelines.instance import get_instance
    from pipelines.nightly import run_night
    from pipelines.samples.http import start_sample_server

    root = tmp_path_factory.mktemp("totals") / "data"
    r = cli(root, "generate", "--start", START.isoformat(), "--days", str(DAYS), "--rows-per-day", "12", "--seed", "3")
    assert r.returncode == 0, r.stderr[-3000:]
    registry = load_registry(contracts=load_contracts())
    tokens = {}
    with pytest.MonkeyPatch.context() as mp:
        for dept in registry.departments:
            for delivery in dept.delivery.values():
                if delivery.kind == "http":
                    mp.setenv(delivery.token_env, TOKEN)
                    tokens[dept.code] = TOKEN
        server, base = start_sample_server(root, tokens=tokens)
        instance = get_instance(root)
        try:
            for i in range(DAYS):
                result = run_night(root, START + timedelta(days=i), http_base=base, instance=instance)
                assert result.success, result.describe()
        finally:
            server.stop()
            instance.dispose()
    return DataDir(root)


def pct(num, den) -> str | None:
    if den is None or int(den) == 0:
        return None
    return str((Decimal(int(num)) * 100 / Decimal(int(den))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def shown(cell_value) -> str | None:
    """A rate cell as percent text: 0.4007 → "40.07"; blank → None."""
    if cell_value is None:
        return None
    return str((Decimal(str(cell_value)) * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def export(root: Path, tmp_path: Path, month: str, as_of: date | None = None) -> list[dict]:
    """The main sheet's rows (below the header) as dicts, from an export made by the command."""
    out = tmp_path / f"indicators_{month}_{as_of or 'default'}.xlsx"
    args = ["export", "--month", month, "--out", str(out)] + (["--as-of", as_of.isoformat()] if as_of else [])
    r = cli(root, *args)
    assert r.returncode == 0, r.stderr[-3000:]
    ws = openpyxl.load_workbook(out)["监测指标"]
    values = list(ws.iter_rows(values_only=True))
    at = next(i for i, row in enumerate(values) if row and row[1] == "部门代码")
    head = list(values[at])
    return [dict(zip(head, row)) for row in values[at + 1:]]


def base_figures(db: Path, month: str, as_of: date) -> dict[tuple[str, str], dict]:
    """(dept, feed) → timed, on_time, records (decided in the month, first received by as_of),
    declared (the ledger as received by as_of, None without one), straight from the base tables."""
    first = date.fromisoformat(month + "-01")
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    con = duckdb.connect(str(db), read_only=True)
    try:
        out: dict[tuple[str, str], dict] = {}

        def cell(dept, feed):
            return out.setdefault((dept, feed), {"timed": 0, "on_time": 0, "records": 0, "declared": None})

        for dept, feed, timed, on_time in con.execute(
                "SELECT dept, feed, count(on_time), count(*) FILTER (WHERE on_time) FROM timeliness "
                "WHERE first_received BETWEEN ? AND ? GROUP BY ALL", [first, last]).fetchall():
            cell(dept, feed).update(timed=timed, on_time=on_time)
        for dept, feed, n in con.execute(
                "SELECT dept, feed, count(*) FROM record_arrivals WHERE period_month = ? AND first_received <= ? "
                "GROUP BY ALL", [month, as_of]).fetchall():
            cell(dept, feed)["records"] = n
        ledgers = con.execute(
            "SELECT _dept, target_feed, count(*), max(CAST(declared_count AS BIGINT)) FROM declarations_versions "
            "WHERE month = ? AND _received_date <= ? GROUP BY ALL", [month, as_of]).fetchall()
        for dept, feed, versions, declared in ledgers:
            assert versions == 1, (dept, feed)  # the sample files each month's ledger once
            cell(dept, feed)["declared"] = declared
        return out
    finally:
        con.close()


def check_totals(rows: list[dict], figures: dict, titles: dict[str, str], as_of: date) -> dict[str, dict]:
    """Every row's rates from its own figures; every total from the sums of its rows. Returns the
    totals by kind for further checks."""
    feed_of = {t: f for f, t in titles.items()}
    feeds = [r for r in rows if r["部门代码"] and r["信息类别"] in feed_of]
    assert feeds
    for r in feeds:
        f = figures.get((r["部门代码"], feed_of[r["信息类别"]]), {"timed": 0, "on_time": 0, "records": 0, "declared": None})
        r["_f"] = f
        assert shown(r["合规率"]) == pct(r["清洗入库量"], r["归集量"]), r
        assert shown(r["及时率"]) == pct(f["on_time"], f["timed"]), r
        assert shown(r["上报率"]) == pct(f["records"], f["declared"]), r
        assert r["上报率说明"].startswith(f"截至{as_of.isoformat()}"), r

    def expect(group: list[dict], total: dict) -> None:
        assert group, total
        assert total["归集量"] == sum(r["归集量"] for r in group), total
        assert total["清洗入库量"] == sum(r["清洗入库量"] for r in group), total
        assert shown(total["合规率"]) == pct(total["清洗入库量"], total["归集量"]), total
        timely = pct(sum(r["_f"]["on_time"] for r in group), sum(r["_f"]["timed"] for r in group))
        assert shown(total["及时率"]) == timely, total
        assert shown(total["迟报率"]) == (None if timely is None else str(Decimal("100.00") - Decimal(timely))), total
        declared = [r for r in group if r["_f"]["declared"] is not None]
        report = pct(sum(r["_f"]["records"] for r in declared), sum(r["_f"]["declared"] for r in declared)) if declared else None
        assert shown(total["上报率"]) == report, total
        note = total["上报率说明"]
        assert note.startswith(f"截至{as_of.isoformat()}"), total  # never 无数据, never another day
        if 0 < len(declared) < len(group):
            assert f"已申报台账{len(declared)}/{len(group)}项" in note, total

    by_dept = {}
    for r in rows:
        if r["信息类别"] == "合计":
            group = [f for f in feeds if f["部门代码"] == r["部门代码"]]
            expect(group, r)
            by_dept[r["部门代码"]] = r
    by_feed = {}
    for r in rows:
        if r["部门名称"] == "全县合计":
            expect([f for f in feeds if f["信息类别"] == r["信息类别"]], r)
            by_feed[feed_of[r["信息类别"]]] = r
    grand = [r for r in rows if r["部门名称"] == "总计"]
    assert len(grand) == 1 and grand[0] is rows[-1]
    expect(feeds, grand[0])
    assert by_dept and len(by_feed) == len(titles)
    return {"dept": by_dept, "feed": by_feed, "grand": grand[0]}


@pytest.mark.parametrize("month,as_of", [
    ("2026-08", None),               # default: the last received day (2026-09-03)
    ("2026-08", date(2026, 9, 1)),  # the August ledger is in, the later nights' records are not
    ("2026-08", date(2026, 8, 31)),  # no ledger yet: every 上报率 blank, totals included
    ("2026-09", None),
])
def test_totals_equal_the_rows_and_the_dashboard(warehouse, contracts, registry, tmp_path, month, as_of):
    from assets.dashboard.data import dashboard_data

    titles = {c.feed: c.title for c in contracts.values() if c.role == "records"}
    rows = export(warehouse.root, tmp_path, month, as_of)
    day = as_of or LAST
    totals = check_totals(rows, base_figures(warehouse.db_path, month, day), titles, day)

    # the dashboard's figures for the same month and day: its headline is the 总计, its feed
    # table the 全县合计 rows, its league the department × feed rows
    con = duckdb.connect(str(warehouse.db_path), read_only=True)
    try:
        d = dashboard_data(con, warehouse, month, day, contracts, registry)
    finally:
        con.close()
    h = d["headline"]
    grand = totals["grand"]
    assert shown(grand["上报率"]) == h["report"]
    assert (shown(grand["合规率"]), shown(grand["及时率"]), shown(grand["迟报率"])) == (h["compliance"], h["timely"], h["late"])
    assert (grand["归集量"], grand["清洗入库量"]) == (h["received"], h["loaded"])
    assert {f["feed"]: f["report"] for f in d["feeds"]} == {f: shown(r["上报率"]) for f, r in totals["feed"].items()}
    feed_of = {t: f for f, t in titles.items()}
    rows_report = {(r["部门代码"], feed_of[r["信息类别"]]): shown(r["上报率"]) for r in rows
                   if r["部门代码"] and r["信息类别"] in feed_of}
    assert {(x["dept"], x["feed"]): x["report"] for x in d["league"]} == rows_report

    if day == date(2026, 8, 31):
        assert all(r["上报率"] is None for r in rows) and h["report"] is None
    else:  # the figures exist: the comparisons above were not between two blanks
        assert grand["上报率"] is not None and 0 < h["declared_pairs"] < h["pairs"]
        assert any(r["上报率"] is None for r in totals["dept"].values())  # the utility companies declare nothing


def test_as_of_changes_every_figure_that_depends_on_it(warehouse, tmp_path):
    """Records of August decisions arrived after 1 September: the export as of 1 September counts
    fewer of them, in the rows and in every total above them alike."""
    early = export(warehouse.root, tmp_path, "2026-08", date(2026, 9, 1))
    late = export(warehouse.root, tmp_path, "2026-08")
    assert early[-1]["上报率"] < late[-1]["上报率"]
    assert early[-1]["上报率说明"].startswith("截至2026-09-01") and late[-1]["上报率说明"].startswith(f"截至{LAST}")


def test_grand_total_is_the_headline_of_the_nightly_dashboard_and_bulletin(warehouse, tmp_path):
    """The pages the last night drew (September as of 2026-09-03) and the export of September made
    afterwards show the same county 上报率."""
    rows = export(warehouse.root, tmp_path, "2026-09")
    grand = shown(rows[-1]["上报率"])
    assert grand is not None
    page = (warehouse.reports / "dashboard" / "index.html").read_text(encoding="utf-8")
    card = re.search(r'data-metric="report"><div class="k">上报率</div><div class="v">([^<]*)</div>', page)
    assert card and card.group(1) == f"{grand}%"
    bulletin = (warehouse.reports / "dashboard" / "bulletin_2026-09.html").read_text(encoding="utf-8")
    assert f"数据截至 {LAST}" in bulletin
    assert re.search(r"上报率 ([0-9.]+%|—)\s*（", bulletin).group(1) == f"{grand}%"


# --- what the command refuses: nothing written, a Chinese message, the documented exit status ---

def _written(warehouse: DataDir, month: str) -> list[str]:
    return sorted(p.name for p in warehouse.exports.glob(f"indicators_{month}.*"))


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_a_month_without_any_data_is_refused(warehouse, tmp_path, fmt):
    out = tmp_path / f"empty.{fmt}"
    r = cli(warehouse.root, "export", "--month", "2024-03", "--format", fmt, "--out", str(out))
    assert r.returncode == 1, (r.stdout, r.stderr)  # EXIT_DATA
    assert "2024-03 没有任何数据" in r.stderr and f"截至 {LAST}" in r.stderr and "未导出" in r.stderr
    assert "Traceback" not in r.stderr and "已导出" not in r.stdout
    assert not out.exists()
    # the default path too: no indicators_2024-03.* appears under reports/exports
    r = cli(warehouse.root, "export", "--month", "2024-03", "--format", fmt)
    assert r.returncode == 1 and "2024-03 没有任何数据" in r.stderr
    assert _written(warehouse, "2024-03") == []


def test_a_month_with_nothing_received_by_the_as_of_day_is_refused(warehouse, tmp_path):
    """August's first delivery arrived on 29 August: as of 20 August there was nothing."""
    out = tmp_path / "early.xlsx"
    r = cli(warehouse.root, "export", "--month", "2026-08", "--as-of", "2026-08-20", "--out", str(out))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "2026-08 没有任何数据：截至 2026-08-20" in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("as_of", [(LAST + timedelta(days=1)).isoformat(), "2027-01-01"])
def test_an_as_of_after_the_last_received_day_is_refused(warehouse, tmp_path, as_of):
    out = tmp_path / "future.xlsx"
    r = cli(warehouse.root, "export", "--month", "2026-09", "--as-of", as_of, "--out", str(out))
    assert r.returncode == 2, (r.stdout, r.stderr)  # EXIT_USAGE
    assert f"数据截止日 {as_of} 晚于仓库最后接收日 {LAST}" in r.stderr and "未导出" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists() and _written(warehouse, "2026-09") == []
    # the last received day itself is accepted and labelled as such
    ok = cli(warehouse.root, "export", "--month", "2026-09", "--as-of", LAST.isoformat(), "--out", str(out))
    assert ok.returncode == 0, ok.stderr[-3000:]
    ws = openpyxl.load_workbook(out)["监测指标"]
    assert ws.cell(ws.max_row, 11).value.startswith(f"截至{LAST}")


def test_no_warehouse_is_refused(tmp_path):
    root = tmp_path / "nothing"
    r = cli(root, "export", "--month", "2026-10")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "仓库数据库不存在" in r.stderr and "Traceback" not in r.stderr
    assert not (root / "reports").exists()


def test_a_warehouse_that_received_nothing_is_refused(tmp_path):
    from warehouse.db import connect

    dd = DataDir(tmp_path / "data")
    with connect(dd):  # the schema only: nothing received, nothing measured
        pass
    r = cli(dd.root, "export", "--month", "2026-09")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "仓库中尚无任何接收数据" in r.stderr and "Traceback" not in r.stderr
    assert _written(dd, "2026-09") == []
