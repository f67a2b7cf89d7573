"""The county league over a real DuckDB file of ``county_metrics_daily``: counts equal plain SQL
over the table, rates are recomputed from summed counts (not averaged), the order is 合规率, 及时率,
归集量 with shared ranks for ties, off-target rates are flagged, a listed county that sent
nothing is last with 无数据, and a date range other than a month works."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb
import pytest

from assets.province.ranking import Period, assign_ranks, county_dept_league, county_league, league, with_rates
from province_report_data import COUNTIES, MONTH, PLAIN_COUNTY_SQL, PLAIN_DEPT_SQL, build


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    path = build(tmp_path_factory.mktemp("province") / "province.duckdb")
    c = duckdb.connect(str(path), read_only=True)
    yield c
    c.close()


def _close(ours: str | None, plain) -> bool:
    return ours is not None and abs(Decimal(ours) - Decimal(str(plain))) <= Decimal("0.005")


def test_county_league_equals_plain_sql_and_is_ranked(con):
    rows = county_league(con, Period.month(MONTH), COUNTIES)
    plain = con.execute(PLAIN_COUNTY_SQL, [MONTH]).fetchall()
    assert [r["county_code"] for r in rows] == [p[0] for p in plain] + ["500103"]
    for r, (code, received, loaded, compliance, timely) in zip(rows, plain):
        assert (r["received"], r["loaded"]) == (received, loaded)
        assert _close(r["compliance"], compliance) and _close(r["timely"], timely), code
        assert Decimal(r["late"]) == 100 - Decimal(r["timely"])
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["county_code"] == "500102" and rows[0]["off_target"] == []  # 100 % everywhere
    assert set(rows[1]["off_target"]) == {"合规率", "及时率", "迟报率"}
    assert rows[-1]["county_name"] == "渝中区" and rows[-1]["off_target"] == ["无数据"] and rows[-1]["compliance"] is None


def test_rates_come_from_summed_counts_not_averaged_rates(con):
    rows = {r["county_code"]: r for r in county_league(con, Period.month(MONTH))}
    averaged = dict(con.execute(
        "SELECT county_code, round(100 * avg(compliance_rate), 2) FROM county_metrics_daily "
        "WHERE strftime(day, '%Y-%m') = ? GROUP BY 1", [MONTH]).fetchall())
    # the data makes the difference visible, and the league follows the sums
    assert any(not _close(rows[c]["compliance"], averaged[c]) for c in ("500237", "500101"))


def test_departments_ranked_across_the_province_and_within_their_county(con):
    rows = county_dept_league(con, Period.month(MONTH), COUNTIES)
    plain = {(c, d): rest for c, d, *rest in con.execute(PLAIN_DEPT_SQL, [MONTH]).fetchall()}
    assert {(r["county_code"], r["dept"]) for r in rows} == set(plain)
    for r in rows:
        received, loaded, compliance, timely = plain[(r["county_code"], r["dept"])]
        assert (r["received"], r["loaded"]) == (received, loaded) and _close(r["compliance"], compliance)
    ranks = [r["rank"] for r in rows]
    assert ranks == sorted(ranks) and ranks[0] == 1
    twins = [r for r in rows if r["dept"].endswith("住房和城乡建设委员会")]
    # equal figures in two counties: one shared rank, and the next rank skips
    key = lambda r: (r["compliance"], r["timely"], r["received"])  # noqa: E731
    same = [r for r in rows if key(r) == key(twins[0])]
    assert len({r["rank"] for r in same}) == 1 and len(same) >= 2
    after = [r["rank"] for r in rows if r["rank"] > same[0]["rank"]]
    assert not after or after[0] == same[0]["rank"] + len(same)
    for code in ("500237", "500102", "500101"):
        within = sorted(r["county_rank"] for r in rows if r["county_code"] == code)
        assert within[0] == 1


def test_the_order_and_ties_on_a_small_example():
    def row(code, received, passed, timed, on_time):
        return with_rates({"county_code": code, "county_name": code, "received": received, "passed": passed,
                           "quarantined": received - passed, "loaded": passed, "timed": timed, "on_time": on_time,
                           "late_records": timed - on_time, "provisional": 0})

    rows = assign_ranks([
        row("A", 100, 99, 99, 99),   # 合规率 99.00
        row("B", 200, 200, 200, 190),  # 100.00 / 95.00
        row("C", 50, 50, 50, 50),    # 100.00 / 100.00, fewer rows
        row("D", 80, 80, 80, 80),    # 100.00 / 100.00, more rows
        row("E", 200, 200, 200, 190),  # equal to B: shares its rank
        row("F", 0, 0, 0, 0),        # nothing: no rates, last
    ])
    assert [(r["county_code"], r["rank"]) for r in rows] == [("D", 1), ("C", 2), ("B", 3), ("E", 3), ("A", 5), ("F", 6)]
    assert rows[0]["off_target"] == [] and rows[2]["off_target"] == ["及时率", "迟报率"]
    assert rows[-1]["off_target"] == ["无数据"]


def test_any_date_range_and_the_province_total(con):
    period = Period.days(date(2026, 9, 29), date(2026, 10, 10))
    data = league(con, period, COUNTIES)
    plain = con.execute(
        "SELECT sum(received_rows), sum(passed_rows), sum(on_time_records), sum(timed_records) FROM county_metrics_daily "
        "WHERE day BETWEEN DATE '2026-09-29' AND DATE '2026-10-10'").fetchone()
    t = data["total"]
    assert (t["received"], t["passed"], t["on_time"], t["timed"]) == tuple(plain)
    assert sum(r["received"] for r in data["counties"]) == plain[0]
    assert set(data["daily"]) == {"500237", "500102", "500101"}
    assert all(d >= "2026-09-29" and d <= "2026-10-10" for s in data["daily"].values() for d in s["days"])
    with pytest.raises(ValueError, match="月份格式"):
        Period.month("2026-13")
