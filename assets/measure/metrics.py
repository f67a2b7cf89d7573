"""Metrics per feed × department × day and × month (归集 month), recomputed for what a night touched.

Definitions (shared REFERENCE §5; tables in ``warehouse/sql/030_measure.sql``):

- 归集量 ``received_rows``: rows received (passed + quarantined) that day/month. Rows, not
  records: a resubmitted record counts again, every time it arrives.
- 清洗入库量 ``loaded_rows``: rows loaded as versions (= passed rows); a resubmission counts again.
- 合规率 = passed_rows ÷ received_rows.
- 及时率 = on_time_records ÷ timed_records: records (business keys, once each) attributed to the
  day/month they were first received (归集 day/month), judged by their first valid arrival
  against the deadline; ``timed_records`` are the loaded ones (a key never received validly is
  an open quarantine item, not a timed record). 迟报率 = 1 − 及时率.
- 上报率 = received_records of the month ÷ the department's declared count for the feed and month
  in the ``declarations`` ledger (role ``ledger``: fields month, target_feed, declared_count).
  The ledger declares decisions *made* in a month, so ``received_records`` counts records by the
  month of their decision date (the contract's ``period_field``), not of their arrival: the
  distinct business keys (``_key``) the department sent for the feed (valid or quarantined)
  whose decision date falls in the month (``record_arrivals.period_month``), received so far.
  A decision of late October that arrives in November raises October's figure once it arrives;
  the export recomputes the figure as of its own date (``report_counts``). Resending a record,
  correcting it or a duplicate row in a delivery does not raise it. A row whose key is NULL (a
  key part missing) cannot be identified as a record: it counts in 归集量 (a row received) but
  not in received_records. Above 1 when the department sent more records than it declared (a
  ledger mismatch: shown, never capped). NULL when the department declared nothing (never
  assumed 100%) or declared 0.
- Any rate with a zero denominator is NULL.

Only feeds with role ``records`` are measured. Every department that owes a feed (registry) gets
a daily row for each recomputed day, with zero counts when nothing arrived.

``measure_day`` recomputes: the timeliness of every business key the received day touched
(versions or quarantine items of that day, and keys whose timeliness row was attributed to or
first loaded on that day, or whose first arrival in ``record_arrivals`` was that day); the first
arrivals of those keys; the daily rows of that day and of the 归集 days of those keys (a
correction changes the record counts of the day the key first arrived); the monthly rows of the
months of those days, of the months those keys' first arrivals moved from or to, of months whose
declared count no longer matches the ledger, and of months without ``received_records`` (rows
written before the column existed; the feed's ``record_arrivals`` are then rebuilt once).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from assets.measure.calendar import WorkCalendar
from assets.measure.timeliness import is_measured, update_timeliness
from contracts.model import Contract, Registry
from warehouse.faults import fault_point
from warehouse.db import connect
from warehouse.feed_tables import VERSION_ORDER, current_table, ensure_feed_tables, lit, q, versions_table
from warehouse.layout import DataDir

log = logging.getLogger(__name__)

LEDGER_FIELDS = ("month", "target_feed", "declared_count")


@dataclass
class FeedMeasure:
    feed: str
    records_timed: int = 0
    provisional_records: int = 0
    provisional_years: list[int] = field(default_factory=list)
    days: list[date] = field(default_factory=list)
    months: list[str] = field(default_factory=list)


@dataclass
class MeasureSummary:
    received: date
    feeds: dict[str, FeedMeasure] = field(default_factory=dict)

    @property
    def provisional(self) -> bool:
        return any(f.provisional_records for f in self.feeds.values())


def _ledger(contracts: dict[str, Contract]) -> Contract | None:
    for c in contracts.values():
        if c.role == "ledger" and set(LEDGER_FIELDS) <= set(c.field_names):
            return c
    return None


def _declarations_sql(contracts: dict[str, Contract], feed: str) -> str:
    """(dept, month, declared_count) of the ledger for ``feed``; empty relation without a ledger."""
    ledger = _ledger(contracts)
    if ledger is None:
        return "(SELECT NULL::VARCHAR AS dept, NULL::VARCHAR AS month, NULL::BIGINT AS declared_count WHERE FALSE)"
    return (
        f"(SELECT _dept AS dept, month, CAST(declared_count AS BIGINT) AS declared_count "
        f"FROM {q(current_table(ledger.feed))} WHERE target_feed = {lit(feed)})"
    )


def owed_departments(registry: Registry, feed: str) -> list[str]:
    return [d.code for d in registry.departments if feed in d.feeds]


def _recompute_daily(con: duckdb.DuckDBPyConnection, feed: str) -> None:
    """metrics_daily for ``feed`` and the days in TEMP table ``_days``; owed depts in ``_owed``."""
    vt = q(versions_table(feed))
    f = lit(feed)
    # the days as literals (not a subquery), so the scans of the big tables prune by zone maps
    days = [r[0] for r in con.execute("SELECT DISTINCT day FROM _days WHERE day IS NOT NULL ORDER BY day").fetchall()]
    in_days = "(" + ", ".join(f"DATE {lit(d.isoformat())}" for d in days) + ")" if days else "(NULL)"
    con.execute(f"DELETE FROM metrics_daily WHERE feed = {f} AND day IN (SELECT day FROM _days)")
    con.execute(
        f"""INSERT INTO metrics_daily
        WITH v AS (
            SELECT coalesce(_dept, '') AS dept, _received_date AS day, count(*) AS n FROM {vt}
            WHERE _received_date IN {in_days} GROUP BY ALL
        ), qq AS (
            SELECT coalesce(dept, '') AS dept, received_date AS day, count(*) AS n FROM quarantine_items
            WHERE feed = {f} AND received_date IN {in_days} GROUP BY ALL
        ), t AS (
            SELECT coalesce(dept, '') AS dept, first_received AS day,
                   count(*) FILTER (WHERE on_time IS NOT NULL) AS timed,
                   count(*) FILTER (WHERE on_time) AS on_time,
                   count(*) FILTER (WHERE NOT on_time) AS late,
                   count(*) FILTER (WHERE provisional) AS prov
            FROM timeliness WHERE feed = {f} AND first_received IN {in_days} GROUP BY ALL
        ), base AS (
            SELECT dept, day FROM _owed CROSS JOIN _days
            UNION SELECT dept, day FROM v UNION SELECT dept, day FROM qq UNION SELECT dept, day FROM t
        ), c AS (
            SELECT base.dept, base.day,
                   coalesce(v.n, 0) AS passed, coalesce(qq.n, 0) AS quarantined,
                   coalesce(t.timed, 0) AS timed, coalesce(t.on_time, 0) AS on_time,
                   coalesce(t.late, 0) AS late, coalesce(t.prov, 0) AS prov
            FROM base
            LEFT JOIN v ON v.dept = base.dept AND v.day = base.day
            LEFT JOIN qq ON qq.dept = base.dept AND qq.day = base.day
            LEFT JOIN t ON t.dept = base.dept AND t.day = base.day
        )
        SELECT {f}, dept, day, passed + quarantined, passed, quarantined, passed,
               timed, on_time, late, prov,
               CASE WHEN passed + quarantined > 0 THEN passed / (passed + quarantined) END,
               CASE WHEN timed > 0 THEN on_time / timed END,
               CASE WHEN timed > 0 THEN 1 - on_time / timed END
        FROM c"""
    )


def _update_arrivals(con: duckdb.DuckDBPyConnection, feed: str, day: date) -> None:
    """record_arrivals for the keys in TEMP ``_aff``; months touched (old and new) into TEMP ``_arr_months``.

    One key probe of record_arrivals finds the affected rows (rowid, department, key, old first
    arrival); they are deleted by rowid and rewritten from what changed on ``day`` alone: the
    (department, key) pairs that arrived on ``day`` (versions or quarantine items of the day, read
    by date) get ``least(old, day)``, or ``day`` when new; the other rows keep their first arrival.
    Only a row whose first arrival was ``day`` and that no longer arrives on ``day`` (a rerun
    of the day with fewer rows) needs its key's versions and quarantine items again. The months
    then come from the small temporary tables, not from record_arrivals.
    When the feed has monthly rows without ``received_records`` (written before the column
    existed), the feed's record_arrivals are rebuilt once and those months recomputed as well.
    """
    vt = q(versions_table(feed))
    f = lit(feed)
    dlit = f"DATE {lit(day.isoformat())}"
    legacy = con.execute(
        f"""SELECT (SELECT count(*) FROM metrics_monthly WHERE feed = {f} AND received_records IS NULL)
                 + (SELECT count(*) FROM record_arrivals WHERE feed = {f} AND period_month = '?')"""
    ).fetchall()[0][0]
    if legacy:
        # rows from before received_records / period_month existed: rebuild the feed's arrivals
        # and recompute every month it has (the decision months are not known beforehand)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _arr_months AS
            SELECT DISTINCT month FROM metrics_monthly WHERE feed = {f}"""
        )
        con.execute(f"DELETE FROM record_arrivals WHERE feed = {f}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE _ra_new AS {_arrivals_sql(feed, '_key IS NOT NULL', 'business_key IS NOT NULL')}")
    else:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _ra_old AS
            SELECT rowid AS _rid, dept, business_key, first_received, period_month FROM record_arrivals
            WHERE feed = {f} AND business_key IN (SELECT _key FROM _aff)"""
        )
        con.execute("DELETE FROM record_arrivals WHERE rowid IN (SELECT _rid FROM _ra_old)")
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _arr_months AS
            SELECT DISTINCT strftime(first_received, '%Y-%m') AS month FROM _ra_old
            UNION SELECT period_month FROM _ra_old WHERE period_month IS NOT NULL"""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _ra_day AS
            SELECT DISTINCT coalesce(_dept, '') AS dept, _key AS business_key FROM {vt}
            WHERE _received_date = {dlit} AND _key IS NOT NULL
            UNION
            SELECT coalesce(dept, ''), business_key FROM quarantine_items
            WHERE feed = {f} AND received_date = {dlit} AND business_key IS NOT NULL"""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _ra_redo AS
            SELECT DISTINCT o.business_key AS _key FROM _ra_old o
            ANTI JOIN _ra_day d ON d.dept = o.dept AND d.business_key = o.business_key
            WHERE o.first_received = {dlit}"""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _ra_new AS
            SELECT {f} AS feed, coalesce(o.dept, d.dept) AS dept, coalesce(o.business_key, d.business_key) AS business_key,
                   CASE WHEN o.first_received IS NULL THEN {dlit}
                        WHEN d.business_key IS NOT NULL THEN least(o.first_received, {dlit})
                        ELSE o.first_received END AS first_received
            FROM (SELECT * EXCLUDE (period_month) FROM _ra_old WHERE business_key NOT IN (SELECT _key FROM _ra_redo)) o
            FULL OUTER JOIN (SELECT * FROM _ra_day WHERE business_key NOT IN (SELECT _key FROM _ra_redo)) d
              ON d.dept = o.dept AND d.business_key = o.business_key"""
        )
        if con.execute("SELECT count(*) FROM _ra_redo").fetchall()[0][0]:
            con.execute(
                f"""INSERT INTO _ra_new {_arrivals_sql(
                    feed, '_key IN (SELECT _key FROM _ra_redo)', 'business_key IN (SELECT _key FROM _ra_redo)')}"""
            )
    # the record's decision month: its current version's, else its latest readable quarantined row's
    if legacy:  # every key of the feed
        cur = f"(SELECT _key, _period_month FROM {q(current_table(feed))} WHERE _key IN (SELECT business_key FROM _ra_new))"
        qm = f"""(SELECT business_key, arg_max(period_month, (received_date, file_id, row_no)) AS pm
            FROM quarantine_items
            WHERE feed = {f} AND period_month IS NOT NULL AND business_key IN (SELECT business_key FROM _ra_new)
            GROUP BY business_key)"""
    else:  # keys of _aff (those of _ra_old, of the day, or redone), whose rows update_timeliness read
        cur, qm = "_aff_cur", "_aff_qi"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _ra_ins AS
        SELECT n.feed, n.dept, n.business_key, n.first_received, coalesce(cur._period_month, qm.pm) AS period_month
        FROM _ra_new n LEFT JOIN {cur} cur ON cur._key = n.business_key LEFT JOIN {qm} qm ON qm.business_key = n.business_key"""
    )
    con.execute("INSERT INTO record_arrivals SELECT * FROM _ra_ins")
    # the decision months the rows enter: from the rows just written (every earlier row of their
    # keys was deleted above, all of them being affected keys), not a probe of record_arrivals
    con.execute(
        """INSERT INTO _arr_months
        SELECT DISTINCT strftime(first_received, '%Y-%m') FROM _ra_new
        UNION SELECT DISTINCT period_month FROM _ra_ins WHERE period_month IS NOT NULL"""
    )


def _arrivals_sql(feed: str, vkeys: str, qkeys: str) -> str:
    """record_arrivals rows (feed, dept, business_key, first_received) from versions and quarantine items."""
    f = lit(feed)
    return f"""SELECT {f} AS feed, dept, k AS business_key, min(day) AS first_received FROM (
            SELECT coalesce(_dept, '') AS dept, _key AS k, _received_date AS day FROM {q(versions_table(feed))} WHERE {vkeys}
            UNION ALL
            SELECT coalesce(dept, ''), business_key, received_date FROM quarantine_items
            WHERE feed = {f} AND {qkeys}
        ) GROUP BY dept, k"""


def _recompute_monthly(con: duckdb.DuckDBPyConnection, contracts: dict[str, Contract], feed: str) -> None:
    """metrics_monthly for ``feed`` and the months in TEMP table ``_months``."""
    f = lit(feed)
    decl = _declarations_sql(contracts, feed)
    # record_arrivals of the months' decisions (literals, so the scan prunes by zone maps)
    months = [r[0] for r in con.execute("SELECT DISTINCT month FROM _months WHERE month IS NOT NULL ORDER BY 1").fetchall()]
    in_months = "(" + ", ".join(lit(m) for m in months if len(m) == 7 and m[4] == "-") + ")"
    in_months = in_months if in_months != "()" else "(NULL)"
    con.execute(f"DELETE FROM metrics_monthly WHERE feed = {f} AND month IN (SELECT month FROM _months)")
    con.execute(
        f"""INSERT INTO metrics_monthly
        WITH m AS (
            SELECT dept, strftime(day, '%Y-%m') AS month,
                   sum(received_rows) AS received, sum(passed_rows) AS passed,
                   sum(quarantined_rows) AS quarantined, sum(loaded_rows) AS loaded,
                   sum(timed_records) AS timed, sum(on_time_records) AS on_time,
                   sum(late_records) AS late, sum(provisional_records) AS prov
            FROM metrics_daily
            WHERE feed = {f} AND strftime(day, '%Y-%m') IN (SELECT month FROM _months)
            GROUP BY ALL
        ), d AS (
            SELECT * FROM {decl} WHERE month IN (SELECT month FROM _months)
        ), r AS (
            SELECT dept, period_month AS month, count(*) AS records
            FROM record_arrivals
            WHERE feed = {f} AND period_month IN {in_months}
            GROUP BY ALL
        ), base AS (
            SELECT dept, month FROM m UNION SELECT dept, month FROM d UNION SELECT dept, month FROM r
        ), j AS (
            SELECT base.dept, base.month,
                   coalesce(received, 0) AS received, coalesce(passed, 0) AS passed,
                   coalesce(quarantined, 0) AS quarantined, coalesce(loaded, 0) AS loaded,
                   coalesce(timed, 0) AS timed, coalesce(on_time, 0) AS on_time,
                   coalesce(late, 0) AS late, coalesce(prov, 0) AS prov, d.declared_count,
                   coalesce(r.records, 0) AS records
            FROM base
            LEFT JOIN m ON m.dept = base.dept AND m.month = base.month
            LEFT JOIN d ON d.dept = base.dept AND d.month = base.month
            LEFT JOIN r ON r.dept = base.dept AND r.month = base.month
        )
        SELECT {f}, dept, month, received, passed, quarantined, loaded, timed, on_time, late, prov,
               declared_count,
               CASE WHEN received > 0 THEN passed / received END,
               CASE WHEN timed > 0 THEN on_time / timed END,
               CASE WHEN timed > 0 THEN 1 - on_time / timed END,
               CASE WHEN declared_count > 0 THEN records / declared_count END,
               records
        FROM j"""
    )


def latest_received(con: duckdb.DuckDBPyConnection) -> date | None:
    """The last received day the warehouse holds (the default "as of" date of a figure): the
    latest delivery in the manifest or night measured, whichever is later."""
    return con.execute(
        """SELECT max(d) FROM (SELECT max(received_date) AS d FROM ingest_manifest
                              UNION ALL SELECT max(day) FROM metrics_daily)"""
    ).fetchall()[0][0]


def report_counts(
    con: duckdb.DuckDBPyConnection, contracts: dict[str, Contract], month: str, as_of: date
) -> dict[tuple[str, str], tuple[int, int | None]]:
    """上报率 inputs of ``month`` as of ``as_of``: (feed, dept) -> (records, declared count).

    records: distinct keys the department sent for the feed whose decision date falls in the
    month and that first arrived on or before ``as_of`` (``record_arrivals``); declared: the
    department's ledger count for the month in the latest ledger version received on or before
    ``as_of`` (None when it declared nothing, or when no ledger table exists yet). Read-only:
    works on a read-only connection."""
    out: dict[tuple[str, str], list] = {}
    day = f"DATE {lit(as_of.isoformat())}"
    feeds = [c.feed for c in contracts.values() if is_measured(c)]
    if feeds:
        in_feeds = "(" + ", ".join(lit(x) for x in feeds) + ")"
        for feed, dept, n in con.execute(
            f"""SELECT feed, dept, count(*) FROM record_arrivals
            WHERE feed IN {in_feeds} AND period_month = {lit(month)} AND first_received <= {day}
            GROUP BY ALL"""
        ).fetchall():
            out[(feed, dept)] = [n, None]
    ledger = _ledger(contracts)
    # a warehouse no night has loaded yet has no ledger table: nothing declared
    if ledger is not None and con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?",
            [versions_table(ledger.feed)]).fetchall()[0][0]:
        for feed, dept, declared in con.execute(
            f"""SELECT target_feed, coalesce(_dept, ''), arg_max(CAST(declared_count AS BIGINT), ({VERSION_ORDER}))
            FROM {q(versions_table(ledger.feed))}
            WHERE month = {lit(month)} AND _received_date <= {day}
            GROUP BY ALL"""
        ).fetchall():
            out.setdefault((feed, dept), [0, None])[1] = declared
    return {k: (v[0], v[1]) for k, v in out.items()}


def measure_day(
    data_dir: DataDir | str | Path,
    received: date | str,
    contracts: dict[str, Contract],
    registry: Registry,
    *,
    calendar: WorkCalendar | None = None,
) -> MeasureSummary:
    """Recompute timeliness and metrics touched by one received day (after ``load_day``)."""
    data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    day = received if isinstance(received, date) else date.fromisoformat(received)
    calendar = calendar or WorkCalendar()
    summary = MeasureSummary(received=day)
    dlit = f"DATE {lit(day.isoformat())}"
    with connect(data_dir) as con:
        ensure_feed_tables(con, contracts)
        con.execute("BEGIN TRANSACTION")
        try:
            for contract in contracts.values():
                if not is_measured(contract):
                    continue
                feed, fl = contract.feed, lit(contract.feed)
                fm = FeedMeasure(feed)
                con.execute(
                    f"""CREATE OR REPLACE TEMP TABLE _aff AS
                    SELECT _key FROM {q(versions_table(feed))} WHERE _received_date = {dlit} AND _key IS NOT NULL
                    UNION SELECT business_key FROM quarantine_items
                          WHERE feed = {fl} AND received_date = {dlit} AND business_key IS NOT NULL
                    UNION SELECT business_key FROM timeliness
                          WHERE feed = {fl} AND (first_received = {dlit} OR first_valid_received = {dlit})
                    UNION SELECT business_key FROM record_arrivals
                          WHERE feed = {fl} AND first_received = {dlit}"""
                )
                res = update_timeliness(con, contract, calendar)  # leaves _tl_old / _tl_new
                fm.records_timed, fm.provisional_records, fm.provisional_years = res["rows"], res["provisional"], res["provisional_years"]
                # days: the night's, and the 归集 days the affected keys' timeliness moved from or to
                con.execute(
                    f"""CREATE OR REPLACE TEMP TABLE _days AS
                    SELECT {dlit} AS day
                    UNION SELECT first_received FROM _tl_old WHERE first_received IS NOT NULL
                    UNION SELECT first_received FROM _tl_new WHERE first_received IS NOT NULL"""
                )
                owed = owed_departments(registry, feed)
                con.execute("CREATE OR REPLACE TEMP TABLE _owed (dept VARCHAR)")
                if owed:
                    con.executemany("INSERT INTO _owed VALUES (?)", [[d] for d in owed])
                _recompute_daily(con, feed)
                _update_arrivals(con, feed, day)
                # months: of the recomputed days, and wherever the ledger disagrees with the table
                decl = _declarations_sql(contracts, feed)
                con.execute(
                    f"""CREATE OR REPLACE TEMP TABLE _months AS
                    SELECT DISTINCT strftime(day, '%Y-%m') AS month FROM _days
                    UNION
                    SELECT coalesce(m.month, d.month) FROM
                        (SELECT dept, month, declared_count FROM metrics_monthly WHERE feed = {fl}) m
                        FULL OUTER JOIN {decl} d ON d.dept = m.dept AND d.month = m.month
                    WHERE m.declared_count IS DISTINCT FROM d.declared_count
                    UNION
                    SELECT month FROM _arr_months"""
                )
                _recompute_monthly(con, contracts, feed)
                fm.days = [r[0] for r in con.execute("SELECT day FROM _days ORDER BY day").fetchall()]
                fm.months = [r[0] for r in con.execute("SELECT month FROM _months WHERE month IS NOT NULL ORDER BY month").fetchall()]
                summary.feeds[feed] = fm
            fault_point("metrics-in-transaction")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    if summary.provisional:
        years = sorted({y for f in summary.feeds.values() for y in f.provisional_years})
        log.warning("及时率含暂定数据（%s 年按周一至周五计算） / provisional timeliness for %s", years, years)
    return summary
