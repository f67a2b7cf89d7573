"""Load one received day's validated rows into the warehouse.

``load_day(data_dir, received, contracts)`` reads, for every feed, the validated partition
``validated/<feed>/received_date=<d>/`` and, in ONE DuckDB transaction:

1. deletes the day's versions (``_received_date = d``) and inserts the passed rows as typed
   versions (idempotent delete-then-insert: loading the same day twice changes nothing);
2. recomputes ``<feed>_current`` only for the business keys the day touched (keys of the
   versions deleted and inserted): the latest version by ``(_received_date, _file_id, _row_no)``;
3. replaces the day's ``quarantine_items`` from quarantined + failures, and re-decides open /
   closed for the items of the day and for every item whose business key the day touched;
4. writes the Parquet month files (``warehouse/parquet/<feed>/decision_month=<YYYY-MM>/``) of
   the months whose current rows changed, to temporary files.

Only after the commit are the temporary Parquet files renamed over the old ones; if anything
fails before, the transaction rolls back and the temporaries are removed, so the previous
state stays as it was. (A crash between commit and rename leaves DuckDB ahead of Parquet;
loading the same day again, or ``rebuild_parquet``, brings Parquet back in line.)

All work is SQL over ``read_parquet``: cost scales with the night's rows, not the warehouse
(apart from the hash join of the night's keys against the versions table).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from contracts.model import Contract
from warehouse.db import connect
from warehouse.feed_tables import (
    LINEAGE_COLUMNS,
    VERSION_ORDER,
    current_table,
    ensure_feed_tables,
    lit,
    q,
    staged_select,
    versions_table,
)
from warehouse.layout import DataDir

log = logging.getLogger(__name__)

PARQUET_FILE = "data.parquet"
PARTITION = "decision_month"
NULL_MONTH = "unknown"  # a current row without a period date (should not happen for passed rows)


@dataclass
class FeedLoad:
    feed: str
    passed_rows: int = 0  # rows in passed.parquet
    loaded_rows: int = 0  # versions inserted (= passed_rows)
    replaced_rows: int = 0  # versions of the same day deleted first (non-zero on a rerun)
    quarantined_rows: int = 0
    quarantine_closed: int = 0  # items (any day) closed after this load
    keys_touched: int = 0
    months_written: list[str] = field(default_factory=list)
    months_removed: list[str] = field(default_factory=list)
    cast_failures: int = 0  # non-empty strings that did not cast to the field type (→ NULL)


@dataclass
class LoadSummary:
    received: date
    feeds: dict[str, FeedLoad] = field(default_factory=dict)
    parquet_files: list[Path] = field(default_factory=list)

    @property
    def loaded_rows(self) -> int:
        return sum(f.loaded_rows for f in self.feeds.values())

    @property
    def quarantined_rows(self) -> int:
        return sum(f.quarantined_rows for f in self.feeds.values())


def _as_date(d: date | str) -> date:
    return d if isinstance(d, date) else date.fromisoformat(d)


def _columns(con: duckdb.DuckDBPyConnection, path: Path) -> set[str]:
    return {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({lit(str(path))})").fetchall()}


def month_file(data_dir: DataDir, feed: str, month: str) -> Path:
    return data_dir.parquet_root / feed / f"{PARTITION}={month}" / PARQUET_FILE


def _write_month_tmp(con: duckdb.DuckDBPyConnection, data_dir: DataDir, contract: Contract, month: str) -> Path | None:
    """Write the month's current rows to a temporary file beside the target; None if empty."""
    target = month_file(data_dir, contract.feed, month)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{PARQUET_FILE}.*.tmp"):  # left by a killed run (one writer)
        stale.unlink()
    tmp = target.parent / f".{PARQUET_FILE}.{os.getpid()}.tmp"
    cond = "_period_month IS NULL" if month == NULL_MONTH else f"_period_month = {lit(month)}"
    n = con.execute(f"SELECT count(*) FROM {q(current_table(contract.feed))} WHERE {cond}").fetchall()[0][0]
    if n == 0:
        return None
    con.execute(
        f"COPY (SELECT * EXCLUDE (_period_month) FROM {q(current_table(contract.feed))} WHERE {cond} "
        f"ORDER BY _key) TO {lit(str(tmp))} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
    )
    return tmp


def _load_feed(
    con: duckdb.DuckDBPyConnection, data_dir: DataDir, contract: Contract, day: date, pending: list[tuple[Path, Path | None]]
) -> FeedLoad:
    feed = contract.feed
    out = FeedLoad(feed)
    vt, ct = q(versions_table(feed)), q(current_table(feed))
    vdir = data_dir.validated_dir(feed, day)
    passed, quarantined, failures = (vdir / n for n in ("passed.parquet", "quarantined.parquet", "failures.parquet"))
    dlit = f"DATE {lit(day.isoformat())}"

    # keys whose current row may change: old versions of the day and the new ones
    con.execute("CREATE OR REPLACE TEMP TABLE _touched (_key VARCHAR)")
    con.execute(f"INSERT INTO _touched SELECT DISTINCT _key FROM {vt} WHERE _received_date = {dlit}")
    out.replaced_rows = con.execute(f"SELECT count(*) FROM {vt} WHERE _received_date = {dlit}").fetchall()[0][0]
    con.execute(f"DELETE FROM {vt} WHERE _received_date = {dlit}")

    if passed.exists():
        cols = _columns(con, passed)
        src = f"read_parquet({lit(str(passed))})"
        con.execute(f"INSERT INTO {vt} BY NAME {staged_select(contract, src, cols)}")
        out.passed_rows = con.execute(f"SELECT count(*) FROM {src}").fetchall()[0][0]
        out.loaded_rows = con.execute(f"SELECT count(*) FROM {vt} WHERE _received_date = {dlit}").fetchall()[0][0]
        casts = [
            f"count(*) FILTER (WHERE {q(f.name)} IS NOT NULL AND TRY_CAST({q(f.name)} AS {t}) IS NULL)"
            for f in contract.fields
            if f.name in cols and (t := {"date": "DATE", "decimal": "DECIMAL(18,4)", "integer": "BIGINT"}.get(f.type))
        ]
        if casts:
            out.cast_failures = int(con.execute(f"SELECT {' + '.join(casts)} FROM {src}").fetchall()[0][0] or 0)
            if out.cast_failures:
                log.warning("%s %s: %d 个已通过校验的值无法转换类型，已置空", feed, day, out.cast_failures)
        con.execute(f"INSERT INTO _touched SELECT DISTINCT _key FROM {vt} WHERE _received_date = {dlit}")
    con.execute("CREATE OR REPLACE TEMP TABLE _tk AS SELECT DISTINCT _key FROM _touched WHERE _key IS NOT NULL")
    out.keys_touched = con.execute("SELECT count(*) FROM _tk").fetchall()[0][0]

    # current: recompute the touched keys only
    old_months = {
        r[0] or NULL_MONTH
        for r in con.execute(f"SELECT DISTINCT _period_month FROM {ct} WHERE _key IN (SELECT _key FROM _tk)").fetchall()
    }
    con.execute(f"DELETE FROM {ct} WHERE _key IN (SELECT _key FROM _tk)")
    # narrow aggregate per key first (winner's rowid), then fetch the winning wide rows
    con.execute(
        f"""INSERT INTO {ct} BY NAME
        WITH w AS (
            SELECT _key, count(*) AS _version_count, min(_received_date) AS _first_valid_received,
                   arg_max(rowid, ({VERSION_ORDER})) AS _rid
            FROM {vt} WHERE _key IN (SELECT _key FROM _tk) GROUP BY _key
        )
        SELECT v.*, w._version_count, w._first_valid_received
        FROM {vt} v JOIN w ON v.rowid = w._rid AND v._key = w._key
        WHERE v._key IN (SELECT _key FROM _tk)"""  # probe side cut to the touched keys first
    )
    new_months = {
        r[0] or NULL_MONTH
        for r in con.execute(f"SELECT DISTINCT _period_month FROM {ct} WHERE _key IN (SELECT _key FROM _tk)").fetchall()
    }

    # quarantine items of the day
    con.execute(f"DELETE FROM quarantine_items WHERE feed = {lit(feed)} AND received_date = {dlit}")
    if quarantined.exists():
        qcols = _columns(con, quarantined)
        from warehouse.feed_tables import key_expr  # local: keep the import list short

        fail_sql = "(SELECT NULL::VARCHAR AS _file_id, NULL::BIGINT AS _row_no, NULL AS rule_ids, NULL AS messages WHERE FALSE)"
        if failures.exists():
            fail_sql = f"""(SELECT _file_id, CAST(_row_no AS BIGINT) AS _row_no,
                    string_agg(DISTINCT rule_id, ';' ORDER BY rule_id) AS rule_ids,
                    string_agg(DISTINCT message, '；' ORDER BY message) AS messages
                FROM read_parquet({lit(str(failures))})
                WHERE severity = 'error'
                GROUP BY _file_id, CAST(_row_no AS BIGINT))"""
        src = f"read_parquet({lit(str(quarantined))})"
        con.execute(
            f"""INSERT INTO quarantine_items
            SELECT {lit(feed)}, s._dept, s._file_id, CAST(s._row_no AS BIGINT), CAST(s._received_date AS DATE),
                   s._source_name, s._bk, f.rule_ids, f.messages, 'open', NULL, NULL
            FROM (SELECT *, {key_expr(contract, qcols)} AS _bk FROM {src}) s
            LEFT JOIN {fail_sql} f ON f._file_id = s._file_id AND f._row_no = CAST(s._row_no AS BIGINT)"""
        )
        out.quarantined_rows = con.execute(f"SELECT count(*) FROM {src}").fetchall()[0][0]

    # open / closed: items of the day and items whose key the day touched
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _qi AS
        SELECT file_id, row_no, received_date, business_key FROM quarantine_items
        WHERE feed = {lit(feed)} AND (received_date = {dlit} OR business_key IN (SELECT _key FROM _tk))"""
    )
    con.execute(
        f"""UPDATE quarantine_items AS t SET status = 'open', closed_by_file_id = NULL, closed_on = NULL
        FROM _qi i WHERE t.feed = {lit(feed)} AND t.file_id = i.file_id AND t.row_no = i.row_no"""
    )
    con.execute(
        f"""UPDATE quarantine_items AS t SET status = 'closed', closed_by_file_id = c.by_file, closed_on = c.on_day
        FROM (
            SELECT i.file_id, i.row_no,
                   arg_min(v._file_id, ({VERSION_ORDER})) AS by_file,
                   min(v._received_date) AS on_day
            FROM _qi i JOIN {vt} v
              ON v._key = i.business_key
             AND (v._received_date > i.received_date OR (v._received_date = i.received_date AND v._file_id <> i.file_id))
            GROUP BY i.file_id, i.row_no
        ) c
        WHERE t.feed = {lit(feed)} AND t.file_id = c.file_id AND t.row_no = c.row_no"""
    )
    out.quarantine_closed = con.execute(
        f"""SELECT count(*) FROM quarantine_items t JOIN _qi i ON t.file_id = i.file_id AND t.row_no = i.row_no
            WHERE t.feed = {lit(feed)} AND t.status = 'closed'"""
    ).fetchall()[0][0]

    # Parquet month files: write temporaries now, rename after the commit
    for month in sorted(old_months | new_months):
        tmp = _write_month_tmp(con, data_dir, contract, month)
        pending.append((month_file(data_dir, feed, month), tmp))
        (out.months_written if tmp else out.months_removed).append(month)
    return out


MEMORY_LIMIT_ENV = "CREDIT_ETL_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "1GB"


def _limit_memory(con: duckdb.DuckDBPyConnection) -> None:
    """Cap DuckDB's memory for the load (default 1 GB, ``$CREDIT_ETL_DUCKDB_MEMORY_LIMIT``).

    DuckDB's own default is 80% of the machine's RAM, and the load's big statements (the
    versions insert, the current-table recompute, the sorted month-file COPY) grow with the
    warehouse, not the night: in a 10M-row backfill the process peak climbed from 1.35 to 6.49 GiB
    (bench/, BENCHMARKS.md). With a limit DuckDB spills to its temporary directory instead.
    ``preserve_insertion_order = false`` lets those statements stream without keeping order
    (order comes from ORDER BY / the version order, never from insertion). With 1 GB the
    load of a 1M-row night takes 6 s; with 512 MB 7.1 s (sorts spill)."""
    # memory the earlier stages freed but pyarrow's allocator kept (≈ 430 MiB after validating a
    # 1M-row night): give it back before DuckDB takes its share
    pa.default_memory_pool().release_unused()
    limit = os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT)
    if limit:
        con.execute(f"SET memory_limit = {lit(limit)}")
    con.execute("SET preserve_insertion_order = false")


def load_day(data_dir: DataDir | str | Path, received: date | str, contracts: dict[str, Contract]) -> LoadSummary:
    """Load every feed's validated rows of one received day; see the module docstring."""
    data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    day = _as_date(received)
    summary = LoadSummary(received=day)
    pending: list[tuple[Path, Path | None]] = []
    with connect(data_dir) as con:
        _limit_memory(con)
        ensure_feed_tables(con, contracts)
        con.execute("BEGIN TRANSACTION")
        try:
            for contract in contracts.values():
                summary.feeds[contract.feed] = _load_feed(con, data_dir, contract, day, pending)
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            finally:
                for _, tmp in pending:
                    if tmp is not None and tmp.exists():
                        tmp.unlink()
            raise
    _publish_pending(pending)
    summary.parquet_files = [t for t, tmp in pending if tmp is not None]
    log.info("入库 %s：%d 行入库，%d 行隔离", day, summary.loaded_rows, summary.quarantined_rows)
    return summary


def _publish_pending(pending: list[tuple[Path, Path | None]]) -> None:
    for target, tmp in pending:
        if tmp is None:
            if target.exists():
                target.unlink()
            try:
                target.parent.rmdir()
            except OSError:
                pass
        else:
            os.replace(tmp, target)


def rebuild_parquet(data_dir: DataDir | str | Path, contracts: dict[str, Contract], feeds: list[str] | None = None) -> list[Path]:
    """Rewrite every Parquet month file of ``feeds`` (default all) from ``<feed>_current``.

    Repair tool for a crash between commit and rename, or a deleted Parquet tree; the nightly
    load never needs it."""
    data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    written: list[Path] = []
    with connect(data_dir) as con:
        ensure_feed_tables(con, contracts)
        for contract in contracts.values():
            if feeds and contract.feed not in feeds:
                continue
            pending: list[tuple[Path, Path | None]] = []
            months = [
                r[0] or NULL_MONTH
                for r in con.execute(f"SELECT DISTINCT _period_month FROM {q(current_table(contract.feed))}").fetchall()
            ]
            for month in sorted(months):
                pending.append((month_file(data_dir, contract.feed, month), _write_month_tmp(con, data_dir, contract, month)))
            root = data_dir.parquet_root / contract.feed
            keep = {t.parent for t, _ in pending}
            if root.exists():
                for d in root.iterdir():
                    if d.is_dir() and d not in keep:
                        shutil.rmtree(d)
            _publish_pending(pending)
            written += [t for t, tmp in pending if tmp is not None]
    return written


__all__ = ["FeedLoad", "LoadSummary", "load_day", "month_file", "rebuild_parquet", "LINEAGE_COLUMNS"]
