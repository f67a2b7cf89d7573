"""Which nights (received days) have been run on this warehouse.

No table lists the nights as such; two record them as a side effect, and a night that got past
loading writes at least one of them:

- ``metrics_daily``: the measure stage writes a row per owed department × feed for the night's
  day, deliveries or not (the other days it recomputes are days records arrived on: nights too);
- ``status_nights``: the record_statuses step (and the share export) records each night it
  computed, per feed.

``ingest_manifest`` is not one of them: a night with no delivery writes nothing there, and a night
that stopped after ingesting has not loaded what it received. ``credit-etl share`` writes a full
snapshot only of a night run: one of a day no night ran would be a baseline without that day's
records, and a receiver replaces what it holds with it. ``credit-etl dashboard`` only asks whether
the warehouse holds anything at all (:func:`warehouse_is_empty`).
"""

from __future__ import annotations

from datetime import date

import duckdb

_NIGHTS_SQL = "SELECT day FROM metrics_daily UNION SELECT as_of FROM status_nights"


def night_ran(con: duckdb.DuckDBPyConnection, day: date) -> bool:
    return con.execute(f"SELECT count(*) FROM ({_NIGHTS_SQL}) WHERE day = ?", [day]).fetchone()[0] > 0


def last_night(con: duckdb.DuckDBPyConnection, before: date | None = None) -> date | None:
    """The latest night run (before ``before``, when given); None when none was."""
    where = "WHERE day < ?" if before else ""
    return con.execute(f"SELECT max(day) FROM ({_NIGHTS_SQL}) {where}", [before] if before else []).fetchone()[0]


def warehouse_is_empty(con: duckdb.DuckDBPyConnection) -> bool:
    """Nothing was ever received, loaded or measured here (e.g. the empty file an older version's
    ``share`` on a wrong ``--data-dir`` left): there is nothing to draw or export."""
    return con.execute(
        "SELECT NOT (EXISTS (SELECT 1 FROM ingest_manifest) OR EXISTS (SELECT 1 FROM versions_days) "
        "OR EXISTS (SELECT 1 FROM metrics_daily))").fetchone()[0]


def not_run_message(con: duckdb.DuckDBPyConnection, day: date, data_dir) -> str:
    """Chinese (then English) reason that ``day`` had no night, naming the latest night run."""
    last = last_night(con)
    seen = f"最近一次已运行的夜间归集是 {last}" if last else "该仓库尚未运行过任何一晚归集"
    return (f"{day} 没有运行过夜间归集（数据目录 {data_dir}）：{seen}。未写出任何共享文件："
            f"全量快照是接收平台替换其已有数据的基准，未归集之日的快照会清空对方的数据。"
            f"请先运行 credit-etl run --date {day}，或检查 --day 与 --data-dir / "
            f"no night has been run for {day} (latest night run: {last or 'none'}); nothing written")
