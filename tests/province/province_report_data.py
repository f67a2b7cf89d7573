"""A real DuckDB file holding ``county_metrics_daily`` (the schema of PROVINCE.md) with figures for
three counties, several departments and feeds and days of October 2026, plus a few days of
September and November that a month's league must leave out. Used by the ranking, export and
dashboard tests of the province report until the lake's view is merged."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import duckdb

MONTH = "2026-10"
COUNTIES = {"500237": "巫山县", "500102": "涪陵区", "500101": "万州区", "500103": "渝中区"}  # 渝中区 sends nothing
FULL_PHONE = "13812345678"
FULL_ID = "50023719900307123X"
DEPTS = {
    "500237": ["巫山县市场监督管理局", "巫山县交通运输局", f"巫山县某镇人民政府（联系人电话{FULL_PHONE}）"],
    "500102": ["涪陵区市场监督管理局", "涪陵区生态环境局"],
    "500101": ["万州区市场监督管理局", "万州区交通运输局", "万州区税务局", f"万州区某所（经办人{FULL_ID}）"],
}
# county quality: share of rows that pass, share of records on time
QUALITY = {"500237": (0.97, 0.90), "500102": (1.0, 1.0), "500101": (0.92, 0.96)}
FEEDS = ("penalties", "permits")

SCHEMA = """CREATE TABLE county_metrics_daily (
    county_code VARCHAR, county_name VARCHAR, feed VARCHAR, dept VARCHAR, day DATE,
    received_rows BIGINT, passed_rows BIGINT, quarantined_rows BIGINT, loaded_rows BIGINT,
    timed_records BIGINT, on_time_records BIGINT, late_records BIGINT, provisional_records BIGINT,
    compliance_rate DOUBLE, timely_rate DOUBLE, late_rate DOUBLE)"""


def _rows(seed: int = 16):
    rnd = random.Random(seed)
    days = [date(2026, 9, 29), date(2026, 9, 30)] + [date(2026, 10, 1) + timedelta(d) for d in range(0, 31, 3)] + [date(2026, 11, 2)]
    for code, depts in DEPTS.items():
        pass_share, on_time_share = QUALITY[code]
        for dept in depts:
            for feed in FEEDS:
                for day in days:
                    if rnd.random() < 0.25:
                        continue  # not every department delivers every day
                    received = rnd.randint(5, 120)
                    passed = received if pass_share == 1 else min(received, round(received * rnd.uniform(pass_share - 0.05, min(1, pass_share + 0.05))))
                    timed = passed
                    on_time = timed if on_time_share == 1 else min(timed, round(timed * rnd.uniform(on_time_share - 0.08, min(1, on_time_share + 0.05))))
                    yield (code, COUNTIES[code], feed, dept, day, received, passed, received - passed, passed,
                           timed, on_time, timed - on_time, 0,
                           passed / received if received else None, on_time / timed if timed else None,
                           1 - on_time / timed if timed else None)


def build(path: Path) -> Path:
    """Write the file; return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute(SCHEMA)
        con.executemany("INSERT INTO county_metrics_daily VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list(_rows()))
        # a county × department whose summed counts equal another's: the two share a province rank
        con.execute("""INSERT INTO county_metrics_daily VALUES
            ('500102', '涪陵区', 'penalties', '涪陵区住房和城乡建设委员会', DATE '2026-10-05', 40, 40, 0, 40, 40, 40, 0, 0, 1, 1, 0),
            ('500101', '万州区', 'penalties', '万州区住房和城乡建设委员会', DATE '2026-10-05', 40, 40, 0, 40, 40, 40, 0, 0, 1, 1, 0)""")
    finally:
        con.close()
    return path


# plain SQL over the table: what every figure shown must equal
PLAIN_COUNTY_SQL = """
SELECT county_code, sum(received_rows) AS received, sum(loaded_rows) AS loaded,
       round(100.0 * sum(passed_rows) / sum(received_rows), 2) AS compliance,
       round(100.0 * sum(on_time_records) / sum(timed_records), 2) AS timely
FROM county_metrics_daily WHERE strftime(day, '%Y-%m') = ?
GROUP BY county_code ORDER BY compliance DESC, timely DESC, received DESC"""

PLAIN_DEPT_SQL = """
SELECT county_code, dept, sum(received_rows) AS received, sum(loaded_rows) AS loaded,
       round(100.0 * sum(passed_rows) / sum(received_rows), 2) AS compliance,
       round(100.0 * sum(on_time_records) / sum(timed_records), 2) AS timely
FROM county_metrics_daily WHERE strftime(day, '%Y-%m') = ?
GROUP BY county_code, dept"""
