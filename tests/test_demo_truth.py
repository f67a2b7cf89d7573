"""Acceptance: after ``credit-etl demo`` the export's figures equal figures recomputed from truth.

Runs the real demo path end to end (generator, sample HTTP server, every night through the
Dagster job on a Dagster instance in the data dir, the monthly export job), then recomputes
every cell of ``reports/exports/indicators_2026-10.csv`` from ``truth.csv`` and
``truth_declarations.csv`` with plain pandas. Nothing here imports the measure or publish
stages: the definitions below are written from shared REFERENCE §5 and the export's documented
layout, so a bug in the warehouse or the export shows up as a disagreement.

Definitions (per department × feed, for the month; "record" = business key of that department
and feed):
- 归集量 = truth rows received in the month (rows, so a resent record or a duplicate row counts
  again); 清洗入库量 = valid rows received in the month; 合规率 = valid rows ÷ rows.
- A record belongs to the month of its first arrival (valid or not) from the department.
  及时率 = records of the month that have a valid arrival and whose FIRST valid arrival was on
  time (truth's ``late`` flag of that row is false) ÷ records of the month that have a valid
  arrival with a decision date (truth's ``late`` is true/false). Records only ever received
  invalid are open quarantine items, not timed records.
- 迟报率 = 100.00 − 及时率 as printed (so the two add up to 100), empty with it.
- 上报率 = records whose DECISION date falls in the month (truth's ``decision_date``: the ledger
  declares decisions made in a month), first received on or before the export's as-of date (the
  last received day), ÷ the department's declared count; empty when it declared none (or 0). A
  row with an empty business-key part would not be a record (it is not counted). A decision of
  late September received in October counts for September, not October.
- 上报率说明 = "截至<as-of>", plus "；台账不符：报送记录N条多于台账申报M条，请核对台账" when the rate
  is above 100% (shown as computed, never capped).
- 合计 rows: sums over the departments owing the feed, each rate the sum of numerators over the
  sum of denominators; 上报率 over the departments that declared a count (their records ÷ their
  declared counts), empty when none did.
- Rates are percentages with two decimals, rounded half up; empty when the denominator is 0.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import pandas as pd
import pytest

from contracts import load_contracts, load_registry

MONTH = "2026-10"
COLUMNS = ["月份", "部门代码", "部门名称", "信息类别", "归集量", "清洗入库量", "合规率", "及时率", "迟报率", "上报率"]
NOTE = "上报率说明"  # in the XLSX only: the CSV keeps its ten columns for machines


def pct(num: int, den: int | None) -> str:
    if not den:
        return ""
    return str((Decimal(num) * 100 / Decimal(den)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@pytest.fixture(scope="module")
def demo(demo_run):
    """The session's ``credit-etl demo`` run (tests/conftest.py: 10 days of October 2026)."""
    assert demo_run.rc == 0, demo_run.stdout[-3000:]
    return demo_run.root


def expected_export(root) -> pd.DataFrame:
    contracts = load_contracts()
    registry = load_registry(contracts=contracts)
    records_feeds = [c for c in contracts.values() if c.role == "records"]
    feeds = {c.feed for c in records_feeds}

    truth = pd.read_csv(root / "truth.csv", dtype=str, keep_default_na=False)
    truth = truth[truth["feed"].isin(feeds)].copy()
    truth["valid"] = truth["valid"].map({"true": True, "false": False})
    assert truth["valid"].notna().all()
    truth["row_no"] = truth["row_no"].astype(int)
    truth["keyed"] = ~truth["business_key"].str.split("|").map(lambda parts: any(p == "" for p in parts))

    decl = pd.read_csv(root / "truth_declarations.csv", dtype=str, keep_default_na=False)
    decl = decl[decl["month"] == MONTH]
    declared = {(r.dept, r.target_feed): int(r.declared_count) for r in decl.itertuples()}

    # rows received in the month
    rows = truth[truth["received_date"].str[:7] == MONTH]
    # records: (dept, feed, key); first arrival of any row, then the first valid arrival
    keyed = truth[truth["keyed"]].sort_values(["received_date", "file", "row_no"])
    first = keyed.groupby(["dept", "feed", "business_key"], sort=False)["received_date"].min().rename("first_received")
    first_valid = (
        keyed[keyed["valid"]].groupby(["dept", "feed", "business_key"], sort=False).head(1)
        .set_index(["dept", "feed", "business_key"])[["received_date", "late"]]
        .rename(columns={"received_date": "first_valid"})
    )
    recs = first.to_frame().join(first_valid, how="left").reset_index()
    # the decision month of a record: every row of one key carries the same decision date in the
    # sample (resends repeat it), so any row's usable date will do
    for c in records_feeds:
        assert c.period_field == c.clock_field, c.feed  # truth's decision_date is the clock field
    decided = keyed[keyed["decision_date"] != ""].groupby(["dept", "feed", "business_key"])["decision_date"].agg(set)
    assert (decided.map(len) == 1).all()
    decision_month = decided.map(lambda s: next(iter(s))[:7]).rename("decision_month")
    as_of = truth["received_date"].max()
    reported = first.to_frame().join(decision_month, how="left").reset_index()
    reported = reported[(reported["decision_month"] == MONTH) & (reported["first_received"] <= as_of)]
    recs = recs[recs["first_received"].str[:7] == MONTH]

    out, totals = [], {}
    for dept in registry.departments:
        for feed in dept.feeds:
            if feed not in feeds:
                continue
            r = rows[(rows["dept"] == dept.code) & (rows["feed"] == feed)]
            k = recs[(recs["dept"] == dept.code) & (recs["feed"] == feed)]
            rep = reported[(reported["dept"] == dept.code) & (reported["feed"] == feed)]
            timed = k[k["late"].isin(["true", "false"])]
            c = {
                "received": len(r), "valid": int(r["valid"].sum()),
                "timed": len(timed), "on_time": int((timed["late"] == "false").sum()),
                "records": len(rep), "declared": declared.get((dept.code, feed)),
            }
            out.append((dept.code, dept.name, feed, c))
            t = totals.setdefault(feed, {"received": 0, "valid": 0, "timed": 0, "on_time": 0, "records": 0, "declared": None})
            for name in ("received", "valid", "timed", "on_time"):
                t[name] += c[name]
            if c["declared"] is not None:  # 上报率 of a total: the departments that declared
                t["records"] += c["records"]
                t["declared"] = (t["declared"] or 0) + c["declared"]
    for c in records_feeds:
        out.append(("ALL", "全部", c.feed, totals[c.feed]))

    titles = {c.feed: c.title for c in records_feeds}
    lines = []
    for code, name, feed, c in out:
        timely = pct(c["on_time"], c["timed"])
        lines.append({
            "月份": MONTH, "部门代码": code, "部门名称": name, "信息类别": titles[feed],
            "归集量": str(c["received"]), "清洗入库量": str(c["valid"]),
            "合规率": pct(c["valid"], c["received"]),
            "及时率": timely,
            "迟报率": "" if timely == "" else str(Decimal("100.00") - Decimal(timely)),
            "上报率": "" if c["declared"] is None else pct(c["records"], c["declared"]),
            "上报率说明": f"截至{as_of}" + (
                f"；台账不符：报送记录{c['records']}条多于台账申报{c['declared']}条，请核对台账"
                if c["declared"] is not None and c["records"] > c["declared"] else ""),
        })
    return pd.DataFrame(lines, columns=[*COLUMNS, NOTE])


def test_export_equals_truth(demo):
    path = demo / "reports" / "exports" / f"indicators_{MONTH}.csv"
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    got = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    want = expected_export(demo)
    assert list(got.columns) == COLUMNS
    assert len(got) == len(want)
    mismatches = [
        (i, col, got.at[i, col], want.at[i, col], want.at[i, "部门代码"], want.at[i, "信息类别"])
        for i in range(len(want)) for col in COLUMNS if got.at[i, col] != want.at[i, col]
    ]
    assert mismatches == []
    # the demo exercises the figures: rows arrived, some were quarantined, some late, some declared
    assert int(want["归集量"].astype(int).sum()) > 0
    assert (want["合规率"].replace("", "100.00") != "100.00").any()
    assert (want["迟报率"].replace("", "0.00") != "0.00").any()
    assert (want["上报率"] != "").any()
    # a ledger mismatch (more records than declared) is shown above 100%, not capped
    assert (want["上报率"].replace("", "0").astype(float) > 100).any()
    assert want[NOTE].str.contains("台账不符").any()


def test_workbook_notes_say_as_of_and_flag_ledger_mismatch(demo):
    """The XLSX's 上报率说明 per department and feed equals the note recomputed from truth."""
    from openpyxl import load_workbook

    want = expected_export(demo)
    want = want[want["部门代码"] != "ALL"]
    titles = set(want["信息类别"])
    wb = load_workbook(demo / "reports" / "exports" / f"indicators_{MONTH}.xlsx", read_only=True)
    rows = list(wb["监测指标"].iter_rows(values_only=True))
    header_at = next(i for i, r in enumerate(rows) if r and "部门代码" in r and NOTE in r)
    head = list(rows[header_at])
    got = {}
    for r in rows[header_at + 1:]:
        code = r[head.index("部门代码")]
        if code and r[head.index("信息类别")] in titles:  # a department's own feed row, not a 合计
            got[(code, r[head.index("信息类别")])] = r[head.index(NOTE)] or ""
    expected = {(w["部门代码"], w["信息类别"]): w[NOTE] for _, w in want.iterrows()}
    assert got == expected


def test_rows_in_equal_rows_out_every_feed_and_day(demo):
    """Conservation on the real warehouse: for every feed and day, received = loaded + quarantined,
    and received = the rows the generator wrote for that feed and day."""
    contracts = load_contracts()
    truth = pd.read_csv(demo / "truth.csv", dtype=str, keep_default_na=False)
    written = truth.groupby(["feed", "received_date"]).size().to_dict()
    con = duckdb.connect(str(demo / "warehouse" / "credit.duckdb"), read_only=True)
    try:
        received = {
            (f, d.isoformat()): n for f, d, n in con.execute(
                "SELECT feed, received_date, sum(rows_parsed) FROM ingest_manifest WHERE status = 'parsed' GROUP BY ALL"
            ).fetchall()
        }
        quarantined = {
            (f, d.isoformat()): n for f, d, n in con.execute(
                "SELECT feed, received_date, count(*) FROM quarantine_items GROUP BY ALL"
            ).fetchall()
        }
        loaded = {}
        for feed in contracts:
            for d, n in con.execute(f'SELECT _received_date, count(*) FROM "{feed}_versions" GROUP BY ALL').fetchall():
                loaded[(feed, d.isoformat())] = n
        rejected = con.execute("SELECT count(*) FROM ingest_manifest WHERE status <> 'parsed'").fetchall()[0][0]
    finally:
        con.close()
    assert rejected == 0
    keys = set(received) | set(loaded) | set(quarantined) | set(written)
    assert keys
    bad = [
        (k, received.get(k, 0), loaded.get(k, 0), quarantined.get(k, 0), written.get(k, 0))
        for k in sorted(keys)
        if not (received.get(k, 0) == loaded.get(k, 0) + quarantined.get(k, 0) == written.get(k, 0))
    ]
    assert bad == []


def test_demo_feedback_workbooks_show_no_full_id_and_carry_department_names(demo):
    """Every feedback workbook of the demo nights: no full resident ID, phone or card number
    anywhere in the file, and the department's Chinese name in the file name."""
    import zipfile

    from privacy_helpers import organisation_code
    from warehouse.masking import find_unmasked

    registry = load_registry(contracts=load_contracts())
    names = {d.code: d.name for d in registry.departments}
    books = sorted((demo / "reports" / "feedback").glob("*/*.xlsx"))
    assert books, "the demo rejects rows, so departments get feedback"
    for book in books:
        assert book.name.startswith(names[book.parent.name] + "_") and book.name.endswith("_校验反馈.xlsx")
        with zipfile.ZipFile(book) as z:
            xml = "\n".join(z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".xml"))
        assert [h for h in find_unmasked(xml) if not organisation_code(h)] == [], book.name


def test_demo_includes_the_credit_feeds_and_prints_the_cross_check(demo, demo_run):
    """The generator writes objections, lists, commitments, 欠税 and 行政强制; every night has its
    cross-check report and shared export (the full snapshot on the first night, the night's
    changes after it); the demo prints the last night's findings."""
    truth = pd.read_csv(demo / "truth.csv", dtype=str, keep_default_na=False)
    feeds = set(truth["feed"])
    assert {"objections", "blacklist", "redlist", "commitments", "tax_arrears", "enforcement", "repairs"} <= feeds
    days = sorted(d for d in set(truth["received_date"]) if d.startswith(MONTH))
    for i, day in enumerate(days):
        assert (demo / "reports" / "crosscheck" / f"{day}.xlsx").exists(), day
        shared = demo / "reports" / "share" / day
        assert (shared / ("penalties.csv" if i == 0 else "penalties.changes.csv")).exists(), day
    con = duckdb.connect(str(demo / "warehouse" / "credit.duckdb"), read_only=True)
    try:
        last = date.fromisoformat(days[-1])
        kinds = {r[0] for r in con.execute("SELECT kind FROM crosscheck_findings WHERE as_of = ?", [last]).fetchall()}
    finally:
        con.close()
    assert "blacklisted_subject" in kinds and "broken_commitment" in kinds
    out = demo_run.stdout
    assert "交叉比对发现" in out and "黑名单主体获得许可、补贴或红名单" in out and "信用承诺未履行" in out
