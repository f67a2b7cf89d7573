"""County figures (``county_metrics_daily``) of one county × received day, by the county's own code.

The definitions are those of ``metrics_daily`` (``warehouse/sql/030_measure.sql``): the frames
of :mod:`assets.province.pushes` are put into an in-memory DuckDB shaped like the county
warehouse (``<feed>_versions``, ``<feed>_current``, ``quarantine_items``, ``timeliness``) and the
county's own ``update_timeliness`` and daily recompute run over them, so 合规率, 及时率 and 迟报率
cannot drift apart between county and province.

Scope of a partition (written down because the issue is silent): the province judges a record
by the day it received it, within that county × day. ``first_received`` and
``first_valid_received`` are the partition's day; a record sent again on a later day is timed
again on that day (the county counts it once, on its first arrival, because it sees its whole
history; a partition run must not depend on other partitions so that counties and days can run
in parallel and a rerun gives the same rows). ``dept`` is the deciding authority the record
names (the contract's ``authority_field``), '' when none. Withdrawals are not received rows.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa

from assets.measure.calendar import default_calendar
from assets.measure.metrics import _recompute_daily
from assets.measure.timeliness import update_timeliness
from assets.province.pushes import CountyDay
from contracts.model import Contract
from warehouse.db import SQL_DIR
from warehouse.feed_tables import current_table, lit, q, versions_table

METRIC_COLUMNS = [
    "county_code", "county_name", "feed", "dept", "day", "received_rows", "passed_rows", "quarantined_rows",
    "loaded_rows", "timed_records", "on_time_records", "late_records", "provisional_records",
    "compliance_rate", "timely_rate", "late_rate",
]
METRICS_SCHEMA = pa.schema([
    ("county_code", pa.string()), ("county_name", pa.string()), ("feed", pa.string()), ("dept", pa.string()),
    ("day", pa.date32()),
    *[(c, pa.int64()) for c in METRIC_COLUMNS[5:13]],
    *[(c, pa.float64()) for c in METRIC_COLUMNS[13:]],
])


def _feed_metrics(con: duckdb.DuckDBPyConnection, contract: Contract, day: date,
                  loaded: pd.DataFrame, quarantined: pd.DataFrame) -> None:
    feed = contract.feed
    ups = loaded[loaded["action"] == "upsert"]
    clock = contract.clock_field
    versions = pa.table({
        "_key": pa.array(ups["record_key"].tolist(), pa.string()),
        "_dept": pa.array(ups["dept"].fillna("").tolist(), pa.string()),
        "_received_date": pa.array([day] * len(ups), pa.date32()),
        "_row": pa.array(range(len(ups)), pa.int64()),
        # text (a frame from the inbox) or DATE (read back from the lake): compared as dates below
        "_clock": pa.array([None if v is None or v != v else str(v)[:10] for v in ups[clock]] if clock
                           else [None] * len(ups), pa.string()),
    })
    con.register("_v_src", versions)
    con.execute(f"CREATE OR REPLACE TABLE {q(versions_table(feed))} AS SELECT _key, _dept, _received_date FROM _v_src")
    # current: the latest loaded row of each key in the partition (batch order, then row order)
    clock_col = f", TRY_CAST(_clock AS DATE) AS {q(clock)}" if clock else ""
    con.execute(
        f"""CREATE OR REPLACE TABLE {q(current_table(feed))} AS
        SELECT _key, _dept, _received_date AS _first_valid_received, NULL::VARCHAR AS _period_month {clock_col}
        FROM _v_src WHERE _key IS NOT NULL QUALIFY row_number() OVER (PARTITION BY _key ORDER BY _row DESC) = 1"""
    )
    con.unregister("_v_src")
    qi = pa.table({
        "feed": pa.array([feed] * len(quarantined), pa.string()),
        "dept": pa.array(quarantined["dept"].where(quarantined["dept"].notna(), "").tolist(), pa.string()),
        "business_key": pa.array(quarantined["record_key"].where(quarantined["record_key"].notna(), None).tolist(), pa.string()),
        "received_date": pa.array([day] * len(quarantined), pa.date32()),
    })
    con.register("_q_src", qi)
    con.execute("DELETE FROM quarantine_items")
    con.execute("INSERT INTO quarantine_items BY NAME SELECT * FROM _q_src")
    con.unregister("_q_src")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _aff AS SELECT _key FROM {q(current_table(feed))}")
    con.execute("DELETE FROM timeliness")
    update_timeliness(con, contract, default_calendar())
    con.execute("CREATE OR REPLACE TEMP TABLE _days AS SELECT DATE " + lit(day.isoformat()) + " AS day")
    con.execute("CREATE OR REPLACE TEMP TABLE _owed (dept VARCHAR)")  # a county's registry is not the province's
    _recompute_daily(con, feed)


def county_metrics(cd: CountyDay, contracts: dict[str, Contract], county_name: str) -> pa.Table:
    """``county_metrics_daily`` rows of one county × day (schema ``METRICS_SCHEMA``), sorted."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(
            # the columns of the county's table that the shared measure code reads
            """CREATE TABLE quarantine_items (feed VARCHAR, dept VARCHAR, business_key VARCHAR, received_date DATE,
                                             file_id VARCHAR, row_no BIGINT, period_month VARCHAR)"""
        )
        con.execute((SQL_DIR / "030_measure.sql").read_text(encoding="utf-8"))
        for feed, frames in sorted(cd.feeds.items()):
            quarantined = frames.quarantined
            if not len(frames.loaded) and not len(quarantined):
                continue
            _feed_metrics(con, contracts[feed], cd.day, frames.loaded, quarantined)
        table = con.sql(
            f"""SELECT {lit(cd.county)} AS county_code, {lit(county_name)} AS county_name, feed, dept, day,
                   received_rows, passed_rows, quarantined_rows, loaded_rows, timed_records, on_time_records,
                   late_records, provisional_records, compliance_rate, timely_rate, late_rate
            FROM metrics_daily ORDER BY feed, dept, day"""
        ).to_arrow_table()
    finally:
        con.close()
    return table.cast(METRICS_SCHEMA)
