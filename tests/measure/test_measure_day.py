"""Timeliness table and metrics through load_day + measure_day on real DuckDB files."""

from __future__ import annotations

import hashlib
from datetime import date

import duckdb
import pytest

from assets.load.load import load_day
from assets.measure.calendar import WorkCalendar
from assets.measure.metrics import measure_day
from validated_builder import declaration, file_id, permit, write_validated
from warehouse.layout import DataDir


@pytest.fixture
def dd(tmp_path):
    return DataDir(tmp_path / "data")


@pytest.fixture
def cal(tmp_path):
    return WorkCalendar(tmp_path / "no_calendars")


def run(dd, day, contracts, registry, cal):
    load_day(dd, day, contracts)
    return measure_day(dd, day, contracts, registry, calendar=cal)


def q(dd, sql):
    con = duckdb.connect(str(dd.db_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_timeliness_across_mid_autumn_and_national_day(dd, contracts, registry, cal):
    P = contracts["permits"]
    # decided 22 Sep → deadline 9 Oct; decided 23 Sep → deadline Sat 10 Oct (make-up working day)
    write_validated(dd, P, date(2026, 10, 9), passed=[permit("A", "2026-09-22"), permit("B", "2026-09-23", row=3)])
    run(dd, date(2026, 10, 9), contracts, registry, cal)
    write_validated(dd, P, date(2026, 10, 10), passed=[permit("C", "2026-09-22", fid="f2"), permit("D", "2026-09-23", fid="f2", row=3)])
    run(dd, date(2026, 10, 10), contracts, registry, cal)
    # E: first arrival quarantined on time, valid only on 12 Oct → late (judged by first VALID arrival)
    write_validated(dd, P, date(2026, 10, 8), quarantined=[permit("E", "2026-09-23", fid="f0", subject_name=None)],
                    failures=[{"_file_id": file_id("f0"), "_row_no": 2, "rule_id": "subject_name.required"}])
    run(dd, date(2026, 10, 8), contracts, registry, cal)
    write_validated(dd, P, date(2026, 10, 12), passed=[permit("E", "2026-09-23", fid="f3")])
    run(dd, date(2026, 10, 12), contracts, registry, cal)
    rows = q(dd, """SELECT split_part(business_key, '|', 1), decision_date, first_received, first_valid_received, deadline,
                           on_time, working_days_late, days_late, provisional FROM timeliness ORDER BY 1""")
    assert rows == [
        ("A", date(2026, 9, 22), date(2026, 10, 9), date(2026, 10, 9), date(2026, 10, 9), True, 0, 0, False),
        ("B", date(2026, 9, 23), date(2026, 10, 9), date(2026, 10, 9), date(2026, 10, 10), True, 0, 0, False),
        ("C", date(2026, 9, 22), date(2026, 10, 10), date(2026, 10, 10), date(2026, 10, 9), False, 1, 1, False),
        ("D", date(2026, 9, 23), date(2026, 10, 10), date(2026, 10, 10), date(2026, 10, 10), True, 0, 0, False),
        ("E", date(2026, 9, 23), date(2026, 10, 8), date(2026, 10, 12), date(2026, 10, 10), False, 1, 2, False),
    ]
    # E counts on its 归集 day (8 Oct, when it first arrived), so that day's figures were recomputed
    assert q(dd, "SELECT received_rows, passed_rows, timed_records, on_time_records, late_records FROM metrics_daily WHERE feed='permits' AND dept='scjgj' AND day='2026-10-08'") == [(1, 0, 1, 0, 1)]


def test_calendar_days_deadline(dd, contracts, registry, cal):
    from validated_builder import AUTH_A

    A = contracts["utility_arrears"]
    row = {"user_name": "王五", "user_kind": "自然人", "user_id_no": "500237199003071234", "account_no": "W001", "fee_type": "水费",
           "billing_period": "2026-08", "arrears_amount": "800.00", "reminder_count": "2", "determination_date": "2026-09-30",
           "determination_reason": "两次催缴未缴", "determining_unit": "巫山县自来水有限公司", "determining_unit_uscc": AUTH_A,
           "_file_id": file_id("w1"), "_row_no": 2, "_dept": "water"}
    write_validated(dd, A, date(2026, 10, 8), passed=[row])
    run(dd, date(2026, 10, 8), contracts, registry, cal)
    # 30 Sep + 7 natural days = 7 Oct, a National Day holiday: the period ends on 8 Oct
    # (民法典 第二百零三条), so a record received on 8 Oct is on time
    assert q(dd, "SELECT deadline_kind, deadline, on_time, days_late, working_days_late FROM timeliness") == [
        ("calendar", date(2026, 10, 8), True, 0, 0)
    ]
    write_validated(dd, A, date(2026, 10, 9), passed=[{**row, "account_no": "W002", "_file_id": file_id("w2")}])
    run(dd, date(2026, 10, 9), contracts, registry, cal)
    assert q(dd, "SELECT deadline, on_time, days_late FROM timeliness WHERE business_key LIKE 'W002%'") == [
        (date(2026, 10, 8), False, 1)
    ]


def test_2027_is_provisional_then_uses_calendar_file(dd, contracts, registry, cal, tmp_path):
    P = contracts["permits"]
    write_validated(dd, P, date(2027, 10, 1), passed=[permit("Z", "2027-09-22")])
    s = run(dd, date(2027, 10, 1), contracts, registry, cal)  # no crash
    assert s.provisional and s.feeds["permits"].provisional_years == [2027]
    assert q(dd, "SELECT deadline, on_time, provisional FROM timeliness") == [(date(2027, 10, 1), True, True)]
    assert q(dd, "SELECT provisional_records FROM metrics_monthly WHERE feed='permits' AND dept='scjgj' AND month='2027-10'") == [(1,)]
    # with a calendar file for 2027 the same day is computed from it, not provisional
    cdir = tmp_path / "cal2027"
    cdir.mkdir()
    (cdir / "2027.yaml").write_text(
        "year: 2027\nsource: 测试用（非真实通知）\nholidays: [2027-09-23, 2027-09-24]\nworkdays: []\n", encoding="utf-8"
    )
    measure_day(dd, date(2027, 10, 1), contracts, registry, calendar=WorkCalendar(cdir))
    assert q(dd, "SELECT deadline, on_time, provisional FROM timeliness") == [(date(2027, 10, 5), True, False)]
    assert q(dd, "SELECT provisional_records FROM metrics_monthly WHERE feed='permits' AND dept='scjgj' AND month='2027-10'") == [(0,)]


def test_metrics_formulas_small_case(dd, contracts, registry, cal):
    P = contracts["permits"]
    d1, d2 = date(2026, 9, 10), date(2026, 9, 25)
    # day 1, scjgj: 3 received, 2 passed (1 on time, 1 late), 1 quarantined
    write_validated(dd, P, d1, passed=[permit("K1", "2026-09-08"), permit("K2", "2026-08-20", row=3)],
                    quarantined=[permit("K3", "2026-09-09", row=4, permit_content=None)],
                    failures=[{"_file_id": file_id("f1"), "_row_no": 4, "rule_id": "permit_content.required"}])
    # jtysj declared 5 permits for September; scjgj declared nothing
    write_validated(dd, contracts["declarations"], d1, passed=[declaration("2026-09", "permits", 5, dept="jtysj")])
    run(dd, d1, contracts, registry, cal)
    # day 2: K1 resubmitted (counts again as a received row), jtysj sends 2 on-time rows
    write_validated(dd, P, d2, passed=[permit("K1", "2026-09-08", fid="f2"),
                                       permit("J1", "2026-09-24", dept="jtysj", fid="j1"), permit("J2", "2026-09-24", dept="jtysj", fid="j1", row=3)])
    run(dd, d2, contracts, registry, cal)
    m = {r[0]: r[1:] for r in q(dd, """SELECT dept, received_rows, passed_rows, loaded_rows, timed_records, on_time_records,
             declared_count, compliance_rate, timely_rate, late_rate, report_rate
             FROM metrics_monthly WHERE feed='permits' AND month='2026-09'""")}
    assert m["scjgj"] == (4, 3, 3, 2, 1, None, pytest.approx(0.75), pytest.approx(0.5), pytest.approx(0.5), None)
    assert m["jtysj"] == (2, 2, 2, 2, 2, 5, 1.0, 1.0, 0.0, pytest.approx(0.4))
    # a department owing the feed with nothing received: zero counts, rates NULL
    assert m["sthjj"] == (0, 0, 0, 0, 0, None, None, None, None, None)
    # only records feeds are measured (not ledgers, repairs, objections, lists or commitments)
    assert q(dd, "SELECT DISTINCT feed FROM metrics_daily ORDER BY 1") == [
        ("agri_subsidies",), ("enforcement",), ("penalties",), ("permits",), ("tax_arrears",), ("utility_arrears",)]
    # daily figures for day 1
    assert q(dd, "SELECT received_rows, passed_rows, quarantined_rows, timed_records, on_time_records FROM metrics_daily WHERE feed='permits' AND dept='scjgj' AND day='2026-09-10'") == [(3, 2, 1, 2, 1)]


def test_declaration_arriving_later_updates_report_rate(dd, contracts, registry, cal):
    P = contracts["permits"]
    write_validated(dd, P, date(2026, 9, 10), passed=[permit("K1", "2026-09-08")])
    run(dd, date(2026, 9, 10), contracts, registry, cal)
    write_validated(dd, contracts["declarations"], date(2026, 10, 8), passed=[declaration("2026-09", "permits", 4)])
    run(dd, date(2026, 10, 8), contracts, registry, cal)
    assert q(dd, "SELECT declared_count, report_rate FROM metrics_monthly WHERE feed='permits' AND dept='scjgj' AND month='2026-09'") == [(4, 0.25)]


def checksums(dd):
    con = duckdb.connect(str(dd.db_path), read_only=True)
    try:
        out = {}
        for t in ("timeliness", "record_arrivals", "metrics_daily", "metrics_monthly"):
            rows = con.execute(f"SELECT CAST(x AS VARCHAR) s FROM {t} x ORDER BY s").fetchall()
            out[t] = hashlib.md5("\n".join(r[0] for r in rows).encode()).hexdigest()
        return out
    finally:
        con.close()


def test_measure_rerun_identical(dd, contracts, registry, cal):
    P = contracts["permits"]
    write_validated(dd, P, date(2026, 9, 10), passed=[permit("K1", "2026-09-08"), permit("K2", "2026-08-01", row=3)])
    run(dd, date(2026, 9, 10), contracts, registry, cal)
    before = checksums(dd)
    run(dd, date(2026, 9, 10), contracts, registry, cal)
    assert checksums(dd) == before


def monthly(dd, feed="permits", dept="scjgj"):
    return {r[0]: r[1:] for r in q(dd, f"""SELECT month, received_rows, received_records, declared_count, report_rate
             FROM metrics_monthly WHERE feed='{feed}' AND dept='{dept}' ORDER BY month""")}


def test_report_rate_counts_records_not_rows(dd, contracts, registry, cal):
    """上报率 = distinct business keys decided in the month ÷ declared count; 归集量 stays rows."""
    P = contracts["permits"]
    d0, d1, d2, d3 = date(2026, 9, 29), date(2026, 10, 9), date(2026, 10, 12), date(2026, 10, 31)
    # 29 Sep: S1 (a September decision)
    write_validated(dd, P, d0, passed=[permit("S1", "2026-09-25", fid="s0")])
    run(dd, d0, contracts, registry, cal)
    # 9 Oct: K1, K2 valid; K3 twice in one delivery (duplicate rows, both quarantined);
    # a row without a decision number (no key: a row, not a record). All decided in October.
    dup = [{"_file_id": file_id("f1"), "_row_no": r, "rule_id": "PMT-KEY-UNIQUE"} for r in (4, 5)]
    write_validated(dd, P, d1, passed=[permit("K1", "2026-10-05"), permit("K2", "2026-10-05", row=3)],
                    quarantined=[permit("K3", "2026-10-05", row=4), permit("K3", "2026-10-05", row=5),
                                 permit(None, "2026-10-05", row=6)],
                    failures=dup + [{"_file_id": file_id("f1"), "_row_no": 6, "rule_id": "decision_no.required"}])
    run(dd, d1, contracts, registry, cal)
    # 12 Oct: K1 resent, K3 corrected, S1 resent
    write_validated(dd, P, d2, passed=[permit("K1", "2026-10-05", fid="f2"), permit("K3", "2026-10-05", fid="f2", row=3),
                                       permit("S1", "2026-09-25", fid="f2", row=4)])
    run(dd, d2, contracts, registry, cal)
    # 31 Oct: the ledger says 4 permits decided in October, 1 in September
    write_validated(dd, contracts["declarations"], d3, passed=[declaration("2026-10", "permits", 4),
                                                               declaration("2026-09", "permits", 1, row=3)])
    run(dd, d3, contracts, registry, cal)
    m = monthly(dd)
    # October: 8 rows received (5 + 3), records K1, K2, K3 → 3 ÷ 4 (rows would give 8 ÷ 4 = 200%)
    assert m["2026-10"] == (8, 3, 4, pytest.approx(0.75))
    # September: S1 counts once
    assert m["2026-09"] == (1, 1, 1, 1.0)
    assert q(dd, "SELECT count(*) FROM record_arrivals WHERE feed='permits'") == [(4,)]
    # the export says the same, as of the last received day
    from assets.publish.export import build_export
    df = build_export(dd, "2026-10", contracts, registry)
    row = df[(df["部门代码"] == "scjgj") & (df["信息类别"] == "行政许可")].iloc[0]
    assert (row["归集量"], row["清洗入库量"], row["上报率"], row["上报率说明"]) == (8, 5, "75.00", "截至2026-10-31")


def test_report_rate_counts_by_decision_month_as_of_the_export(dd, contracts, registry, cal):
    """Issue 11: the ledger declares decisions MADE in a month. An October decision received in
    November counts toward October's 上报率 in an export made after it arrived, and lowers neither
    October (before) nor inflates November."""
    P = contracts["permits"]
    write_validated(dd, P, date(2026, 10, 20), passed=[permit("O1", "2026-10-15"), permit("O2", "2026-10-16", row=3)])
    run(dd, date(2026, 10, 20), contracts, registry, cal)
    write_validated(dd, contracts["declarations"], date(2026, 11, 2),
                    passed=[declaration("2026-10", "permits", 3), declaration("2026-11", "permits", 1, row=3)])
    run(dd, date(2026, 11, 2), contracts, registry, cal)
    # decided 30 Oct, received 5 Nov; N1 decided and received in November
    write_validated(dd, P, date(2026, 11, 5), passed=[permit("O3", "2026-10-30", fid="f3"), permit("N1", "2026-11-04", fid="f3", row=3)])
    run(dd, date(2026, 11, 5), contracts, registry, cal)
    from assets.publish.export import build_export

    def report(month, as_of=None):
        df = build_export(dd, month, contracts, registry, as_of=as_of)
        row = df[(df["部门代码"] == "scjgj") & (df["信息类别"] == "行政许可")].iloc[0]
        return row["上报率"], row["上报率说明"]

    # an export of October made on 2 Nov: O3 has not arrived yet → 2 of 3
    assert report("2026-10", date(2026, 11, 2)) == ("66.67", "截至2026-11-02")
    # made after it arrived (default: the last received day, 5 Nov) → 3 of 3
    assert report("2026-10") == ("100.00", "截至2026-11-05")
    # November: only N1 (decided in November) → 1 of 1, not 2 of 1
    assert report("2026-11") == ("100.00", "截至2026-11-05")
    # the command line takes the as-of day too
    from pipelines.cli import main

    out = dd.root / "oct.csv"
    assert main(["export", "--data-dir", str(dd.root), "--month", "2026-10", "--format", "csv",
                 "--out", str(out), "--as-of", "2026-11-02"]) == 0
    line = next(x for x in out.read_text(encoding="utf-8-sig").splitlines() if x.startswith("2026-10,scjgj,") and ",行政许可," in x)
    assert line.endswith(",66.67")  # the CSV keeps its ten columns; 截至 is in the XLSX's 上报率说明
    # the warehouse's monthly table holds the same figures as of the last night
    m = monthly(dd)
    assert m["2026-10"][1:] == (3, 3, 1.0)
    assert m["2026-11"][1:] == (1, 1, 1.0)
    # 归集量 still counts rows by the month they arrived
    assert m["2026-10"][0] == 2 and m["2026-11"][0] == 2


def test_report_rate_above_100_is_shown_and_flagged(dd, contracts, registry, cal):
    P = contracts["permits"]
    write_validated(dd, P, date(2026, 10, 9), passed=[permit(f"K{i}", "2026-10-05", row=i + 2) for i in range(3)])
    write_validated(dd, contracts["declarations"], date(2026, 10, 9), passed=[declaration("2026-10", "permits", 2)])
    run(dd, date(2026, 10, 9), contracts, registry, cal)
    assert monthly(dd)["2026-10"][1:] == (3, 2, 1.5)  # never capped at 1
    from assets.publish.export import build_export
    df = build_export(dd, "2026-10", contracts, registry)
    row = df[(df["部门代码"] == "scjgj") & (df["信息类别"] == "行政许可")].iloc[0]
    assert row["上报率"] == "150.00"
    assert row["上报率说明"] == "截至2026-10-09；台账不符：报送记录3条多于台账申报2条，请核对台账"


def test_report_rate_uses_the_decision_month_of_quarantined_records(dd, contracts, registry, cal):
    P = contracts["permits"]
    write_validated(dd, contracts["declarations"], date(2026, 10, 1), passed=[declaration("2026-09", "permits", 2),
                                                                             declaration("2026-10", "permits", 2, row=3)])
    # K1 decided 28 Sep arrives (quarantined) on 1 Oct, loaded first ...
    write_validated(dd, P, date(2026, 10, 1), quarantined=[permit("K1", "2026-09-28", permit_content=None)],
                    failures=[{"_file_id": file_id("f1"), "_row_no": 2, "rule_id": "permit_content.required"}])
    run(dd, date(2026, 10, 1), contracts, registry, cal)
    # a record only ever quarantined still counts, in the month of its decision date
    assert monthly(dd)["2026-09"][1] == 1
    assert monthly(dd)["2026-10"][1] == 0
    # ... then 30 Sep (backfill) brings a valid version: still one September record
    write_validated(dd, P, date(2026, 9, 30), passed=[permit("K1", "2026-09-28", fid="f0")])
    run(dd, date(2026, 9, 30), contracts, registry, cal)
    m = monthly(dd)
    assert m["2026-09"] == (1, 1, 2, pytest.approx(0.5))
    assert m["2026-10"] == (1, 0, 2, 0.0)


def test_a_corrected_decision_date_moves_the_record_to_its_month(dd, contracts, registry, cal):
    P = contracts["permits"]
    write_validated(dd, P, date(2026, 10, 9), passed=[permit("K1", "2026-10-05")])
    run(dd, date(2026, 10, 9), contracts, registry, cal)
    assert monthly(dd)["2026-10"][1] == 1
    write_validated(dd, P, date(2026, 10, 12), passed=[permit("K1", "2026-09-29", fid="f2")])
    run(dd, date(2026, 10, 12), contracts, registry, cal)
    m = monthly(dd)
    assert m["2026-10"][1] == 0 and m["2026-09"][1] == 1


def test_monthly_rows_without_received_records_are_recomputed(dd, contracts, registry, cal):
    """A warehouse written before received_records existed is brought up to date by the next run."""
    P = contracts["permits"]
    write_validated(dd, P, date(2026, 9, 10), passed=[permit("K1", "2026-09-08"), permit("K2", "2026-09-08", row=3)])
    write_validated(dd, contracts["declarations"], date(2026, 9, 10), passed=[declaration("2026-09", "permits", 2)])
    run(dd, date(2026, 9, 10), contracts, registry, cal)
    con = duckdb.connect(str(dd.db_path))
    con.execute("UPDATE metrics_monthly SET received_records = NULL, report_rate = NULL")
    con.execute("UPDATE record_arrivals SET period_month = '?'")  # as written before the column existed
    con.close()
    write_validated(dd, P, date(2026, 10, 8))  # an empty later night
    run(dd, date(2026, 10, 8), contracts, registry, cal)
    assert monthly(dd)["2026-09"] == (2, 2, 2, 1.0)
    assert q(dd, "SELECT count(*) FROM metrics_monthly WHERE received_records IS NULL") == [(0,)]
    assert q(dd, "SELECT count(*) FROM record_arrivals") == [(2,)]


MEASURE_TABLES = ("timeliness", "record_arrivals", "metrics_daily", "metrics_monthly")


def measure_tables(dd):
    out = {}
    for t in MEASURE_TABLES:
        rows = q(dd, f'SELECT CAST(x AS VARCHAR) AS s FROM "{t}" x ORDER BY s')
        out[t] = [r[0] for r in rows]
    return out


def test_incremental_measure_equals_a_fresh_run(tmp_path, contracts, registry, cal):
    """measure_day touches only the night's keys (record_arrivals updated from the day's rows, rows
    deleted by rowid): after out-of-order days and reruns with fewer rows, the measure tables equal
    those of a fresh warehouse that loaded the final days once, in order."""
    P = contracts["permits"]
    d1, d2, d3, d0 = date(2026, 10, 9), date(2026, 10, 12), date(2026, 10, 13), date(2026, 10, 8)
    bad = dict(subject_name=None)
    final = {
        d0: dict(passed=[permit("B", "2026-09-30", fid="g0")]),
        d1: dict(passed=[permit("C", "2026-09-30", fid="g1")],
                 quarantined=[permit("D", "2026-09-30", fid="g1", row=3, **bad)],
                 failures=[{"_file_id": file_id("g1"), "_row_no": 3, "rule_id": "subject_name.required"}]),
        d2: dict(passed=[permit("A", "2026-10-01", fid="g2"), permit("D", "2026-09-30", fid="g2", row=3),
                         permit("E", "2026-10-02", dept="swj", fid="g2", row=4)]),
        d3: dict(passed=[permit("A", "2026-10-01", fid="g3"), permit("B", "2026-09-30", fid="g3", row=3)]),
    }
    inc = DataDir(tmp_path / "inc")
    # day 1 first carries A and B, later rerun without them (their first arrival moves on)
    write_validated(inc, P, d1, passed=[permit("A", "2026-10-01", fid="g1x"), permit("B", "2026-09-30", fid="g1x", row=3),
                                        permit("C", "2026-09-30", fid="g1x", row=4)])
    run(inc, d1, contracts, registry, cal)
    for d in (d2, d3):
        write_validated(inc, P, d, **final[d])
        run(inc, d, contracts, registry, cal)
    write_validated(inc, P, d1, **final[d1])  # rerun of day 1 with its final files
    run(inc, d1, contracts, registry, cal)
    write_validated(inc, P, d0, **final[d0])  # a backfilled earlier day: B first arrived then
    run(inc, d0, contracts, registry, cal)
    run(inc, d3, contracts, registry, cal)  # a plain rerun changes nothing

    fresh = DataDir(tmp_path / "fresh")
    for d in sorted(final):
        write_validated(fresh, P, d, **final[d])
        run(fresh, d, contracts, registry, cal)
    got, want = measure_tables(inc), measure_tables(fresh)
    assert got["record_arrivals"] == want["record_arrivals"]
    assert got["timeliness"] == want["timeliness"]
    assert got == want
