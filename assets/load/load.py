"""Load one received day's validated rows into the warehouse.

``load_day(data_dir, received, contracts)`` reads, for every feed, the validated partition
``validated/<feed>/received_date=<d>/`` and, in ONE DuckDB transaction:

1. deletes the day's versions (``_received_date = d``) and inserts the passed rows as typed
   versions (idempotent delete-then-insert: loading the same day twice changes nothing);
2. recomputes ``<feed>_current`` only for the business keys the day touched (keys of the
   versions deleted and inserted): the latest version by ``(_received_date, _file_id, _row_no)``;
3. replaces the day's ``quarantine_items`` from quarantined + failures, and re-decides open /
   closed for the items of the day and for every item whose business key the day touched;
4. writes the Parquet parts whose current rows changed, to temporary files. A part holds the
   current rows of one decision month whose current version was received on one day:
   ``warehouse/parquet/<feed>/decision_month=<YYYY-MM>/received_date=<YYYY-MM-DD>.parquet``
   (sorted by ``_key``; read all with ``read_parquet('<feed>/*/*.parquet',
   hive_partitioning=true)``). A night writes its own day's parts and rewrites only the older
   parts that lost rows to the night's versions (the days the superseded versions arrived, not
   whole months); a part left without rows is deleted, and so is a month directory left empty.
   A feed still in the earlier whole-month layout (``decision_month=<M>/data.parquet``) is
   converted to parts by its next load.

Only after the commit are the temporary Parquet files renamed over the old ones; if anything
fails before, the transaction rolls back and the temporaries are removed, so the previous
state stays as it was. (A crash between commit and rename leaves DuckDB ahead of Parquet;
loading the same day again brings Parquet back in line: a rerun of a day looks at every part
any version of the touched keys was received into, not only the parts of their current rows,
which the crashed run already moved. ``rebuild_parquet`` rewrites everything.)

All work is SQL over ``read_parquet``: cost scales with the night's rows, not the warehouse
(apart from the hash join of the night's keys against the versions table, and the parts of
older days that held superseded rows).
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
from warehouse.faults import fault_point
from warehouse.db import DEFAULT_MEMORY_LIMIT, MEMORY_LIMIT_ENV, connect  # noqa: F401 (re-exported)
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
from warehouse.record_status import refresh_day_digest

log = logging.getLogger(__name__)

PARTITION = "decision_month"
PART_PREFIX = "received_date="  # part files: decision_month=<M>/received_date=<d>.parquet
LEGACY_FILE = "data.parquet"  # whole-month file of the earlier layout; replaced by parts on the next load
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
    months_written: list[str] = field(default_factory=list)  # months with a part (re)written
    months_removed: list[str] = field(default_factory=list)  # months left without current rows
    parts_written: int = 0  # part files (month × received day) written
    parts_removed: int = 0  # part files deleted (all their rows superseded)
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


def month_dir(data_dir: DataDir, feed: str, month: str) -> Path:
    return data_dir.parquet_root / feed / f"{PARTITION}={month}"


def part_file(data_dir: DataDir, feed: str, month: str, received: date | str) -> Path:
    """``<feed>/decision_month=<M>/received_date=<d>.parquet``: the current rows of decision month
    ``M`` whose current version was received on ``d``."""
    day = received if isinstance(received, str) else received.isoformat()
    return month_dir(data_dir, feed, month) / f"{PART_PREFIX}{day}.parquet"


def month_file(data_dir: DataDir, feed: str, month: str) -> Path:
    """The month's directory (its parts are ``received_date=<d>.parquet``)."""
    return month_dir(data_dir, feed, month)


def _month_cond(month: str) -> str:
    return "_period_month IS NULL" if month == NULL_MONTH else f"_period_month = {lit(month)}"


def _part_pairs(con: duckdb.DuckDBPyConnection, feed: str, where: str) -> set[tuple[str, str]]:
    """(decision month, received day) of the current rows matching ``where``."""
    return {
        (r[0] or NULL_MONTH, r[1].isoformat())
        for r in con.execute(
            f"SELECT DISTINCT _period_month, _received_date FROM {q(current_table(feed))} WHERE {where}"
        ).fetchall()
    }


def _tmp_for(target: Path) -> Path:
    """The temporary beside ``target`` (hidden, pid-named); removes ones left by a killed run (one writer)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        stale.unlink()
    return target.parent / f".{target.name}.{os.getpid()}.tmp"


def _write_part_tmp(
    con: duckdb.DuckDBPyConnection, data_dir: DataDir, contract: Contract, month: str, day: str
) -> Path | None:
    """Write the part's current rows (sorted by key) to a temporary file beside the target; None if empty."""
    target = part_file(data_dir, contract.feed, month, day)
    tmp = _tmp_for(target)
    cond = f"{_month_cond(month)} AND _received_date = DATE {lit(day)}"
    n = con.execute(
        f"COPY (SELECT * EXCLUDE (_period_month) FROM {q(current_table(contract.feed))} WHERE {cond} "
        f"ORDER BY _key) TO {lit(str(tmp))} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
    ).fetchall()[0][0]  # COPY returns its row count: no separate count(*) scan first
    if n == 0:
        tmp.unlink(missing_ok=True)
        return None
    return tmp


def _part_counts(con: duckdb.DuckDBPyConnection, feed: str, parts: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Current rows per (month, day) of ``parts`` (one pass, pruned by the days)."""
    if not parts:
        return {}
    days = ", ".join(f"DATE {lit(d)}" for d in sorted({d for _, d in parts}))
    return {
        (r[0] or NULL_MONTH, r[1].isoformat()): r[2]
        for r in con.execute(
            f"""SELECT _period_month, _received_date, count(*) FROM {q(current_table(feed))}
            WHERE _received_date IN ({days}) GROUP BY ALL"""
        ).fetchall()
    }


def _rewrite_part_tmp(
    con: duckdb.DuckDBPyConnection, data_dir: DataDir, contract: Contract, month: str, day: str, expected: int
) -> Path | None:
    """A part that only lost rows: its existing file without the touched keys (TEMP ``_tk``), in the
    file's key order, to a temporary; None if no row is left. Falls back to ``_write_part_tmp``
    (from the current table) when the file's columns are not the table's (a contract field added
    since) or the result does not have the part's current row count (a file left behind by a
    crash between commit and rename)."""
    target = part_file(data_dir, contract.feed, month, day)
    tmp = _tmp_for(target)
    if expected == 0:
        return None
    src = f"read_parquet({lit(str(target))}, hive_partitioning = false)"
    want = [r[0] for r in con.execute(f"DESCRIBE SELECT * EXCLUDE (_period_month) FROM {q(current_table(contract.feed))}").fetchall()]
    if [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()] != want:  # columns added since
        return _write_part_tmp(con, data_dir, contract, month, day)
    # the file is sorted by key already: a filter that keeps the scan's order needs no sort (half
    # the cost of the night's rewrites on a 10M-row warehouse)
    con.execute("SET preserve_insertion_order = true")
    try:
        n = con.execute(
            f"""COPY (SELECT * FROM {src}
                WHERE _key IS NULL OR _key NOT IN (SELECT _key FROM _tk))
            TO {lit(str(tmp))} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"""
        ).fetchall()[0][0]
    finally:
        con.execute("SET preserve_insertion_order = false")
    if n == expected:
        return tmp
    log.warning("%s: %s 与当前表行数不符（%d ≠ %d），从当前表重写", contract.feed, target.name, n, expected)
    tmp.unlink(missing_ok=True)
    return _write_part_tmp(con, data_dir, contract, month, day)


def _legacy_files(data_dir: DataDir, feed: str) -> list[Path]:
    """Whole-month files of the earlier layout (``decision_month=<M>/data.parquet``)."""
    root = data_dir.parquet_root / feed
    return sorted(root.glob(f"{PARTITION}=*/{LEGACY_FILE}")) if root.exists() else []


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
    refresh_day_digest(con, feed, day)  # versions_days: what the record statuses compare nights by
    con.execute("CREATE OR REPLACE TEMP TABLE _tk AS SELECT DISTINCT _key FROM _touched WHERE _key IS NOT NULL")
    out.keys_touched = con.execute("SELECT count(*) FROM _tk").fetchall()[0][0]

    # current: recompute the touched keys only. One probe of the current table finds their rows
    # (rowid and part), deleted by rowid; the parts they enter come back from INSERT ... RETURNING
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _old_cur AS
        SELECT rowid AS _rid, _period_month, _received_date FROM {ct} WHERE _key IN (SELECT _key FROM _tk)"""
    )
    old_parts = {
        (r[0] or NULL_MONTH, r[1].isoformat())
        for r in con.execute("SELECT DISTINCT _period_month, _received_date FROM _old_cur").fetchall()
    }
    if out.replaced_rows:
        # A rerun of the day. If an earlier run of it crashed between its commit and its renames,
        # the current table already holds that run's winners while older parts on disk still hold
        # the rows they superseded; the current rows no longer say which parts those are. Every
        # existing part any version of the touched keys was received into is looked at instead
        # (rewritten without the touched keys: unchanged where it never held them).
        old_parts |= {
            p for r in con.execute(
                f"SELECT DISTINCT _period_month, _received_date FROM {vt} WHERE _key IN (SELECT _key FROM _tk)"
            ).fetchall()
            if part_file(data_dir, feed, *(p := (r[0] or NULL_MONTH, r[1].isoformat()))).exists()
        }
    con.execute(f"DELETE FROM {ct} WHERE rowid IN (SELECT _rid FROM _old_cur)")
    # narrow aggregate per key first (winner's rowid, and the winner's part: its decision month
    # and received day, the greatest received day since the version order starts with it), then
    # fetch the winning wide rows. The parts the new current rows enter come from the narrow
    # table: no RETURNING of a row per key back to Python. (``arg_max_null``: a winner without a
    # decision month must give NULL, not another version's month.)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _win AS
        SELECT _key, count(*) AS _version_count, min(_received_date) AS _first_valid_received,
               arg_max(rowid, ({VERSION_ORDER})) AS _rid,
               arg_max_null(_period_month, ({VERSION_ORDER})) AS _pm, max(_received_date) AS _rd
        FROM {vt} WHERE _key IN (SELECT _key FROM _tk) GROUP BY _key"""
    )
    con.execute(
        f"""INSERT INTO {ct} BY NAME
        SELECT v.*, w._version_count, w._first_valid_received
        FROM {vt} v JOIN _win w ON v.rowid = w._rid AND v._key = w._key
        WHERE v._key IN (SELECT _key FROM _tk)"""  # probe side cut to the touched keys first
    )
    new_parts = {
        (r[0] or NULL_MONTH, r[1].isoformat())
        for r in con.execute("SELECT DISTINCT _pm, _rd FROM _win").fetchall()
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
        from warehouse.feed_tables import period_expr

        con.execute(
            f"""INSERT INTO quarantine_items
            SELECT {lit(feed)}, s._dept, s._file_id, CAST(s._row_no AS BIGINT), CAST(s._received_date AS DATE),
                   s._source_name, s._bk, f.rule_ids, f.messages, 'open', NULL, NULL, s._pm
            FROM (SELECT *, {key_expr(contract, qcols)} AS _bk, {period_expr(contract, qcols)} AS _pm FROM {src}) s
            LEFT JOIN {fail_sql} f ON f._file_id = s._file_id AND f._row_no = CAST(s._row_no AS BIGINT)"""
        )
        out.quarantined_rows = con.execute(f"SELECT count(*) FROM {src}").fetchall()[0][0]

    # open / closed: items of the day and items whose key the day touched
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _qi AS
        SELECT rowid AS _rid, received_date, business_key, file_id FROM quarantine_items
        WHERE feed = {lit(feed)} AND (received_date = {dlit} OR business_key IN (SELECT _key FROM _tk))"""
    )
    # by row id, as the current rows above: a join on (file_id, row_no) read those columns of
    # every quarantined row of the warehouse twice per feed
    con.execute(
        """UPDATE quarantine_items SET status = 'open', closed_by_file_id = NULL, closed_on = NULL
        WHERE rowid IN (SELECT _rid FROM _qi)"""
    )
    # the items this sets closed are those of the night's keys that end closed (all were opened
    # just above), so its row count is the figure reported
    out.quarantine_closed = con.execute(
        f"""UPDATE quarantine_items AS t SET status = 'closed', closed_by_file_id = c.by_file, closed_on = c.on_day
        FROM (
            SELECT i._rid,
                   arg_min(v._file_id, ({VERSION_ORDER})) AS by_file,
                   min(v._received_date) AS on_day
            FROM _qi i JOIN {vt} v
              ON v._key = i.business_key
             AND (v._received_date > i.received_date OR (v._received_date = i.received_date AND v._file_id <> i.file_id))
            GROUP BY i._rid
        ) c
        WHERE t.rowid = c._rid"""
    ).fetchall()[0][0]

    # Parquet parts: the (month, day) parts that lost or gained current rows; write temporaries
    # now, rename after the commit. A feed still in the whole-month layout is converted once.
    parts = old_parts | new_parts
    legacy = _legacy_files(data_dir, feed)
    if legacy:
        parts |= _part_pairs(con, feed, "TRUE")
        pending.extend((f, None) for f in legacy)
    # parts that only lost rows (none of the touched keys' new current rows is in them): drop the
    # touched keys from the existing file, which is already sorted by key (cheaper than sorting
    # the part again from the current table; the same rows in the same order)
    lost_only = set() if legacy else {p for p in old_parts - new_parts if part_file(data_dir, feed, *p).exists()}
    expected = _part_counts(con, feed, lost_only)
    written: set[str] = set()
    for month, d in sorted(parts):
        if (month, d) in lost_only:
            tmp = _rewrite_part_tmp(con, data_dir, contract, month, d, expected.get((month, d), 0))
        else:
            tmp = _write_part_tmp(con, data_dir, contract, month, d)
        pending.append((part_file(data_dir, feed, month, d), tmp))
        out.parts_written += tmp is not None
        out.parts_removed += tmp is None
        if tmp is not None:
            written.add(month)
    out.months_written = sorted(written)
    # a month none of whose parts is written keeps rows only if it has parts the night left alone
    removed = {part_file(data_dir, feed, m, d) for m, d in parts} | set(legacy)
    out.months_removed = sorted(
        m for m in {m for m, _ in parts} - written
        if not any(f not in removed for f in month_dir(data_dir, feed, m).glob(f"{PART_PREFIX}*.parquet"))
    )
    return out


def _release_arrow_memory() -> None:
    """Hand back memory the earlier stages freed but pyarrow's allocator kept (≈ 430 MiB after
    validating a 1M-row night) before DuckDB takes its share. DuckDB's own cap
    (``$CREDIT_ETL_DUCKDB_MEMORY_LIMIT``, default 320 MB since issue 12) and ``preserve_insertion_order = false``
    are set by ``warehouse.db.connect`` for every writing connection. With 1 GB the load of a
    1M-row night takes 6 s; with 512 MB 7.1 s (sorts spill)."""
    pa.default_memory_pool().release_unused()


def load_day(data_dir: DataDir | str | Path, received: date | str, contracts: dict[str, Contract]) -> LoadSummary:
    """Load every feed's validated rows of one received day; see the module docstring."""
    data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    day = _as_date(received)
    summary = LoadSummary(received=day)
    pending: list[tuple[Path, Path | None]] = []
    _release_arrow_memory()
    with connect(data_dir) as con:
        ensure_feed_tables(con, contracts)
        con.execute("BEGIN TRANSACTION")
        try:
            for contract in contracts.values():
                summary.feeds[contract.feed] = _load_feed(con, data_dir, contract, day, pending)
                fault_point(f"load-in-transaction {contract.feed}")
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            finally:
                for _, tmp in pending:
                    if tmp is not None and tmp.exists():
                        tmp.unlink()
            raise
    fault_point("load-committed")
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
            fault_point(f"load-renamed {target.name}")


def rebuild_parquet(data_dir: DataDir | str | Path, contracts: dict[str, Contract], feeds: list[str] | None = None) -> list[Path]:
    """Rewrite every Parquet part of ``feeds`` (default all) from ``<feed>_current``.

    Repair tool for a crash between commit and rename, or a deleted Parquet tree; also converts a
    feed written in the earlier whole-month layout (the nightly load does that by itself on its
    first run). Files of the feed's tree that are not a part of the current rows are removed."""
    data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    written: list[Path] = []
    with connect(data_dir) as con:
        ensure_feed_tables(con, contracts)
        for contract in contracts.values():
            if feeds and contract.feed not in feeds:
                continue
            pending: list[tuple[Path, Path | None]] = []
            for month, d in sorted(_part_pairs(con, contract.feed, "TRUE")):
                target = part_file(data_dir, contract.feed, month, d)
                pending.append((target, _write_part_tmp(con, data_dir, contract, month, d)))
            root = data_dir.parquet_root / contract.feed
            keep = {t for t, tmp in pending if tmp is not None} | {tmp for _, tmp in pending if tmp is not None}
            if root.exists():
                for d in sorted(root.iterdir()):
                    if not d.is_dir():
                        d.unlink()
                        continue
                    for f in sorted(d.iterdir()):
                        if f not in keep:
                            shutil.rmtree(f) if f.is_dir() else f.unlink()
            _publish_pending(pending)
            if root.exists():
                for d in root.iterdir():
                    if d.is_dir() and not any(d.iterdir()):
                        d.rmdir()
            written += [t for t, tmp in pending if tmp is not None]
    return written


__all__ = ["FeedLoad", "LoadSummary", "load_day", "month_file", "part_file", "rebuild_parquet", "LINEAGE_COLUMNS"]
