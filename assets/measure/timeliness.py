"""Timeliness per record: deadline from the decision date, on time or late, working days late.

``update_timeliness(con, contract, calendar)`` recomputes the ``timeliness`` rows (schema in
``warehouse/sql/030_measure.sql``) of the business keys listed in the temporary table ``_aff``
(column ``_key``), in SQL: the calendar of the needed date range is loaded once into a
temporary table ``_cal(day, is_workday, provisional, cum)`` where ``cum`` is the running count
of working days, so "the N-th working day after d" is the working day whose ``cum`` equals
``cum(d) + N``, and the working days in (a, b] are ``cum(b) − cum(a)``.

A record is a business key with at least one loaded (valid) version:
- ``decision_date``: the contract's ``clock_field`` in the current version;
- ``first_received``: the first day the key arrived at all, valid (versions) or not
  (quarantine items);
- ``first_valid_received``: the received day of its earliest version;
- ``on_time``: first_valid_received <= deadline.
Keys that only ever arrived invalid have no row (they are not loaded; they are open quarantine
items).
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pyarrow as pa

from assets.measure.calendar import WorkCalendar
from contracts.model import Contract
from warehouse.feed_tables import current_table, lit, q


def is_measured(contract: Contract) -> bool:
    return contract.role == "records"


def has_deadline(contract: Contract) -> bool:
    return contract.deadline is not None and contract.clock_field is not None


def load_calendar_table(con: duckdb.DuckDBPyConnection, calendar: WorkCalendar, first: date, last: date) -> list[int]:
    """Create TEMP table ``_cal`` for [first, last]; return the provisional (fallback) years."""
    days, work, prov = calendar.day_rows(first, last)
    src = pa.table({"day": pa.array(days, pa.date32()), "is_workday": work, "provisional": prov})
    con.register("_cal_src", src)
    try:
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _cal AS
            SELECT day, is_workday, provisional,
                   sum(CASE WHEN is_workday THEN 1 ELSE 0 END) OVER (ORDER BY day) AS cum
            FROM _cal_src"""
        )
    finally:
        con.unregister("_cal_src")
    return calendar.provisional_years(first, last)


def affected_rows(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    """What the measure reads of the keys in TEMP ``_aff``, probed once for timeliness and arrivals:
    TEMP ``_aff_cur`` (their current rows: ``_key, _dept, _clock`` (the decision date),
    ``_first_valid_received, _period_month``) and ``_aff_qi`` (per key, its quarantined rows'
    first received day ``fq`` and the decision month ``pm`` of the latest with one). On a 10M-row
    warehouse each probe reads the key column of a table of millions of rows."""
    feed, ct = contract.feed, q(current_table(contract.feed))
    clock = f"CAST(c.{q(contract.clock_field)} AS DATE)" if contract.clock_field else "CAST(NULL AS DATE)"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _aff_cur AS
        SELECT c._key, c._dept, {clock} AS _clock, c._first_valid_received, c._period_month
        FROM {ct} c WHERE c._key IN (SELECT _key FROM _aff)"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _aff_qi AS
        SELECT business_key, min(received_date) AS fq,
               arg_max(period_month, (received_date, file_id, row_no)) FILTER (WHERE period_month IS NOT NULL) AS pm
        FROM quarantine_items
        WHERE feed = {lit(feed)} AND business_key IN (SELECT _key FROM _aff) GROUP BY business_key"""
    )


def update_timeliness(con: duckdb.DuckDBPyConnection, contract: Contract, calendar: WorkCalendar) -> dict:
    """Recompute timeliness for the keys in TEMP table ``_aff``. Returns counts.

    Leaves TEMP tables ``_tl_old(business_key, first_received)`` (the rows replaced) and
    ``_tl_new`` (the rows written, timeliness columns) for the caller, and those of
    :func:`affected_rows`. The big table is scanned once, for the rowids of the affected keys'
    rows; deleting by rowid and counting from ``_tl_new`` avoid further scans (cost: the night's
    keys, plus one key probe of the table)."""
    feed = contract.feed
    affected_rows(con, contract)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _tl_old AS
        SELECT rowid AS _rid, business_key, first_received FROM timeliness
        WHERE feed = {lit(feed)} AND business_key IN (SELECT _key FROM _aff)"""
    )
    con.execute("DELETE FROM timeliness WHERE rowid IN (SELECT _rid FROM _tl_old)")
    con.execute("CREATE OR REPLACE TEMP TABLE _tl_new AS SELECT * FROM timeliness WHERE FALSE")
    if not has_deadline(contract):
        return {"rows": 0, "provisional": 0, "provisional_years": []}
    rule = contract.deadline
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _rec AS
        WITH cur AS (
            SELECT _key, _dept, _clock AS decision_date, _first_valid_received AS fvr FROM _aff_cur
        )
        SELECT cur.*, least(cur.fvr, coalesce(qi.fq, cur.fvr)) AS first_received
        FROM cur LEFT JOIN _aff_qi qi ON qi.business_key = cur._key"""
    )
    lo, hi = con.execute("SELECT min(decision_date), max(greatest(decision_date, fvr)) FROM _rec").fetchall()[0]
    if lo is None:
        return {"rows": 0, "provisional": 0, "provisional_years": []}
    # the deadline lies at most a few weeks after the decision even across Spring Festival
    hi = max(hi, lo) + timedelta(days=rule.days * 3 + 45)
    fallback = load_calendar_table(con, calendar, lo, hi)
    fb = "[" + ", ".join(str(y) for y in fallback) + "]::INTEGER[]"
    if rule.kind == "working":
        deadline_join = (
            "LEFT JOIN _cal c1 ON c1.day = r.decision_date "
            f"LEFT JOIN _cal cd ON cd.cum = c1.cum + {rule.days} AND cd.is_workday"
        )
        deadline_expr = "cd.day"
        span = ("r.decision_date", "greatest(d.deadline, r.fvr)")
    elif rule.extend_over_holidays:
        # 民法典 第二百零三条: a last day that is a rest day (holiday or weekend, per the State
        # Council calendar; make-up working days are working days) moves to the next working day
        deadline_join = (
            f"LEFT JOIN _cal c0 ON c0.day = CAST(r.decision_date + INTERVAL {rule.days} DAY AS DATE) "
            "LEFT JOIN _cal cd ON cd.is_workday AND cd.cum = c0.cum + CASE WHEN c0.is_workday THEN 0 ELSE 1 END"
        )
        deadline_expr = "cd.day"
        span = ("r.decision_date", "greatest(d.deadline, r.fvr)")
    else:
        deadline_join = ""
        deadline_expr = f"CAST(r.decision_date + INTERVAL {rule.days} DAY AS DATE)"
        span = ("d.deadline", "r.fvr")  # only the working days late depend on the calendar
    prov_cond = f"list_has_any(range(year({span[0]}), year({span[1]}) + 1)::INTEGER[], {fb})"
    if rule.kind == "calendar" and not rule.extend_over_holidays:
        prov_cond = f"(r.fvr > d.deadline AND {prov_cond})"
    con.execute(
        f"""INSERT INTO _tl_new
        WITH d AS (
            SELECT r._key, {deadline_expr} AS deadline FROM _rec r {deadline_join}
        )
        SELECT {lit(feed)}, r._key, r._dept, r.decision_date, r.first_received, r.fvr,
               {lit(rule.kind)}, {rule.days}, d.deadline,
               r.fvr <= d.deadline AS on_time,
               CASE WHEN d.deadline IS NULL THEN NULL WHEN r.fvr > d.deadline THEN cf.cum - cdl.cum ELSE 0 END,
               CASE WHEN d.deadline IS NULL THEN NULL WHEN r.fvr > d.deadline THEN datediff('day', d.deadline, r.fvr) ELSE 0 END,
               COALESCE(d.deadline IS NOT NULL AND {prov_cond}, FALSE)
        FROM _rec r JOIN d ON d._key = r._key
        LEFT JOIN _cal cf ON cf.day = r.fvr
        LEFT JOIN _cal cdl ON cdl.day = d.deadline"""
    )
    con.execute("INSERT INTO timeliness SELECT * FROM _tl_new")
    rows, prov = con.execute("SELECT count(*), count(*) FILTER (WHERE provisional) FROM _tl_new").fetchall()[0]
    return {"rows": rows, "provisional": prov, "provisional_years": fallback if prov else []}
