"""A night's record statuses: the status history (``record_status_log``) and the shared export.

``log_statuses(data_dir, day, contracts)`` computes the status of the records as the office knew
it on the night of ``day`` (warehouse.record_status) and appends a row to ``record_status_log``
for each record whose status or cause changed since its previous row (a new record gets its first
row), so the history answers "what was published, when, and why it changed". A rerun of the
night replaces that night's rows; the versions themselves stay in ``<feed>_versions``.

Incremental nights. A status only changes with the night's own deliveries or with the calendar,
so a night whose feed has a previous computed night P (table ``status_nights``) computes only the
records :func:`warehouse.record_status.changed_keys_sql` names for (P, day] (versions received,
repairs/objections received or dated, display and public-limit ends reached) and compares them
with their previous log row: the log is the same as the full computation's (a test runs nights
both ways and compares the whole table). The night is computed in full (``full=True`` forces it)
when there is no previous night for the feed, when the status rules (the contracts, this code's
SQL) differ from that night's, or when the versions received up to P are not those P saw (a past
night reloaded since). So the step costs what the night brings, not what the warehouse holds.

``write_share_export(data_dir, day, contracts)``: what leaves for other platforms (city/province
platforms, 信用中国). Exchange platforms take a baseline once and then increments (增量), so:

- ``reports/share/<day>/<feed>.changes.csv`` every night with a previous export: the night's
  changes to what is shared, one row per record, first column 变更类型: 新增 (shared from
  tonight), 更新 (still shared, a shared field or its 公示状态 changed), 撤下 (no longer shared:
  repaired, withdrawn, expired, withheld; the row as last shared, 公示状态 its status tonight).
  A night without changes writes the header only (the receiver sees the night was exported).
- ``reports/share/<day>/<feed>.csv``, the full snapshot: every record shared that night (the
  public view's rows: a repaired or withdrawn record is not shared; one under objection is shared
  marked 异议中 unless withheld). Written when the feed has no usable previous export (first
  night, rules changed, past night reloaded: a new baseline, a receiver replaces everything) and
  on request (``full=True``, ``credit-etl share --day D``).

The asset runs both through :func:`record_night`, on one connection, so that the export of an
ordinary night takes the log's candidate keys and their statuses instead of computing them again.

Both: personal fields masked (warehouse.masking through ``public_columns_sql``), Chinese headers,
UTF-8 with BOM, CRLF, ordered by business key, so the same night gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from contracts.model import Contract
from warehouse.db import connect
from warehouse.feed_tables import lit, public_columns_sql, q
from warehouse.files import atomic_path, scratch_path
from warehouse.layout import DataDir
from warehouse.record_status import (
    STATUS_ROLES,
    changed_keys_sql,
    rows_as_of,
    rules_digest,
    status_sql,
    versions_fingerprint,
    winner_rows_sql,
    winners_sql,
)

SHARE_STATUS_HEADER = "公示状态"
SHARE_CHANGE_HEADER = "变更类型"
ADDED, UPDATED, WITHDRAWN = "新增", "更新", "撤下"


@dataclass
class StatusSummary:
    day: date
    changes: Counter = field(default_factory=Counter)  # status -> records that changed to it tonight
    shared: dict[str, int] = field(default_factory=dict)  # feed -> rows shared
    share_files: list[Path] = field(default_factory=list)
    share_changes: dict[str, Counter] = field(default_factory=dict)  # feed -> 新增/更新/撤下 counts
    incremental: dict[str, bool] = field(default_factory=dict)  # "<step>:<feed>" -> computed incrementally
    # (feed, night) -> versions fingerprint, shared by the log and the share export of one step
    # (nothing is loaded between them); a new summary computes them again
    fingerprints: dict[tuple[str, date], str] = field(default_factory=dict, repr=False)
    # feed -> (previous night, candidate keys table, statuses-as-of-the-night table, winners table:
    # the keys' latest versions as of the night and of the previous night) the log left for the
    # share export on the same connection (:func:`record_night`)
    # (None: the feed had no candidate key, so there are neither statuses nor winners)
    kept: dict[str, tuple[date, str, str | None, str | None]] = field(default_factory=dict, repr=False)


def _dd(data_dir) -> DataDir:
    return data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)


def status_rows(con, contract: Contract, contracts: dict[str, Contract], day: date | None):
    """(business key, status, cause, version count) of every row of ``contract`` as of ``day``."""
    return con.execute(
        f"SELECT _key, _status, _status_cause, _version_count FROM ({status_sql(contract, contracts, day)}) ORDER BY _key"
    ).fetchall()


def _fingerprint(con, contract: Contract, contracts: dict[str, Contract], day: date, cache: dict) -> str:
    if (contract.feed, day) not in cache:
        cache[(contract.feed, day)] = versions_fingerprint(con, contract, contracts, day)
    return cache[(contract.feed, day)]


def _previous_night(con, step: str, contract: Contract, contracts: dict[str, Contract], day: date,
                    digest: str, cache: dict) -> tuple[date, int | None] | None:
    """The feed's latest computed night before ``day`` for ``step`` when the night can build on it:
    same status rules, same versions received up to it. None: compute in full."""
    row = con.execute(
        "SELECT as_of, rules_digest, fingerprint, shared_rows FROM status_nights "
        "WHERE step = ? AND feed = ? AND as_of < ? ORDER BY as_of DESC LIMIT 1", [step, contract.feed, day]).fetchone()
    if row is None or row[1] != digest:
        return None
    if _fingerprint(con, contract, contracts, row[0], cache) != row[2]:
        return None
    return row[0], row[3]


def _record_night(con, step: str, contract: Contract, contracts: dict[str, Contract], day: date, digest: str,
                  cache: dict, shared_rows: int | None = None) -> None:
    fp = _fingerprint(con, contract, contracts, day, cache)
    con.execute("DELETE FROM status_nights WHERE step = ? AND feed = ? AND as_of = ?", [step, contract.feed, day])
    con.execute("INSERT INTO status_nights VALUES (?, ?, ?, ?, ?, ?)", [step, contract.feed, day, digest, fp, shared_rows])


AS_OF_ROWS = "_as_of_rows"


def _as_of_rows(con, contract: Contract, day: date, keys: str | None = None, name: str = AS_OF_ROWS) -> str:
    """The records of ``contract`` as of ``day`` (those of ``keys`` when given) in a temporary table
    ``name``, passed to ``status_sql`` as its ``rows``. Why: the status query reads the as-of
    rows three times (the record, its repairs, its objections). For a whole feed (first night,
    rules changed, full snapshot) those three aggregates in one plan ran out of memory under the
    320 MB cap on a 10M-row warehouse, while the table, built once, spills to disk; for a night's
    candidate keys each of the three is a probe of the whole versions table."""
    return _rows_table(con, rows_as_of(contract, day, keys), name)


def _rows_table(con, rows: str, name: str) -> str:
    con.execute(f"DROP TABLE IF EXISTS {name}")
    con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {rows}")
    return name


def _changed_keys(con, contract: Contract, contracts: dict[str, Contract], day: date, prev: date,
                  name: str = "_status_keys") -> str:
    return _rows_table(con, f"(SELECT DISTINCT _key FROM ({changed_keys_sql(contract, contracts, day, prev)}) "
                            "WHERE _key IS NOT NULL)", name)


def _none(con, keys: str) -> bool:
    """No candidate key: no record of the feed can have changed status since the previous night,
    so the night's status queries (as-of rows, statuses, comparison) would all come back empty.
    Most feeds on a small night, and every feed that received nothing."""
    return con.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {keys})").fetchone()[0]


def record_night(data_dir, day: date, contracts: dict[str, Contract]) -> StatusSummary:
    """The night's status log, then its share export, on one connection: an export building on the
    same previous night as the log reuses the log's candidate keys and their statuses as of the
    night (the same queries; on a 10M-row warehouse each is a probe of the versions tables)."""
    dd, summary = _dd(data_dir), StatusSummary(day)
    with connect(dd) as con:
        _log(con, day, contracts, summary, full=False, keep=True)
        try:
            _share(con, dd, day, contracts, summary, full=False)
        finally:
            for _prev, *tables in summary.kept.values():
                for t in filter(None, tables):
                    con.execute(f"DROP TABLE IF EXISTS {t}")
            summary.kept.clear()
    return summary


def log_statuses(data_dir, day: date, contracts: dict[str, Contract], summary: StatusSummary | None = None,
                 *, full: bool = False) -> StatusSummary:
    """Log the night's status changes; incremental when it can be (module docstring), else in full."""
    summary = summary or StatusSummary(day)
    with connect(_dd(data_dir)) as con:
        _log(con, day, contracts, summary, full=full, keep=False)
    return summary


def _kept_names(contract: Contract) -> tuple[str, str, str]:
    return q(f"_night_keys_{contract.feed}"), q(f"_night_status_{contract.feed}"), q(f"_night_winners_{contract.feed}")


def _log(con, day: date, contracts: dict[str, Contract], summary: StatusSummary, *, full: bool, keep: bool) -> None:
    """``keep``: leave an incremental feed's candidate keys and night statuses in temporary tables
    (``summary.kept``) for the share export on this connection."""
    d = f"DATE {lit(day.isoformat())}"
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM record_status_log WHERE as_of = {d}")
        for c in contracts.values():
            if c.role not in STATUS_ROLES:
                continue
            digest = rules_digest(c, contracts)
            prev = None if full else _previous_night(con, "log", c, contracts, day, digest, summary.fingerprints)
            keys = _changed_keys(con, c, contracts, day, prev[0], _kept_names(c)[0] if keep else "_status_keys") if prev else None
            # the candidates' previous rows: their row ids from the key column, then the rows
            only = (f" AND rowid IN (SELECT rowid FROM record_status_log WHERE feed = {lit(c.feed)} "
                    f"AND business_key IN (SELECT _key FROM {keys}))") if keys else ""
            summary.incremental[f"log:{c.feed}"] = keys is not None
            if keys is not None and _none(con, keys):
                if keep:  # nothing can have changed: the share export finds the same
                    summary.kept[c.feed] = (prev[0], keys, None, None)
                _record_night(con, "log", c, contracts, day, digest, summary.fingerprints)
                continue
            # the night's statuses; keep those that differ from the record's previous row
            if keys is not None and keep:  # kept for the share changes: the statuses, computed once,
                # and the winners, with the previous night's from the same scan
                _, statuses, winners = _kept_names(c)
                _rows_table(con, f"({winners_sql(c, day, keys, earlier=prev[0])})", winners)
                table = _rows_table(con, winner_rows_sql(c, winners), AS_OF_ROWS)
                now = _rows_table(con, f"({status_sql(c, contracts, day, keys, table)})", statuses)
                summary.kept[c.feed] = (prev[0], keys, statuses, winners)
            else:
                table = _as_of_rows(con, c, day, keys)
                now = f"({status_sql(c, contracts, day, keys, table)})"
            rows = con.execute(
                f"""INSERT INTO record_status_log
                WITH now AS (SELECT _key, _status, _status_cause, _version_count FROM {now}),
                     prev AS (SELECT business_key, arg_max(status, as_of) AS status, arg_max(cause, as_of) AS cause,
                                     arg_max(version_count, as_of) AS version_count
                              FROM record_status_log WHERE feed = {lit(c.feed)} AND as_of < {d}{only} GROUP BY business_key)
                SELECT {lit(c.feed)}, now._key, {d}, now._status, now._status_cause,
                       CASE WHEN prev.business_key IS NULL THEN '首次入库'
                            WHEN prev.status <> now._status OR prev.cause IS DISTINCT FROM now._status_cause THEN '状态变化'
                            ELSE '收到新版本' END,
                       now._version_count
                FROM now LEFT JOIN prev ON prev.business_key = now._key
                WHERE prev.business_key IS NULL OR prev.status <> now._status OR prev.cause IS DISTINCT FROM now._status_cause
                   OR now._version_count <> prev.version_count
                RETURNING status"""
            ).fetchall()
            summary.changes.update(r[0] for r in rows)
            con.execute(f"DROP TABLE IF EXISTS {AS_OF_ROWS}")
            _record_night(con, "log", c, contracts, day, digest, summary.fingerprints)
        con.execute("DROP TABLE IF EXISTS _status_keys")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _csv_bytes(header: list[str], rows: list[tuple]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if v is None else str(v) for v in r])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _share_rows_sql(contract: Contract, contracts: dict[str, Contract], day: date | None,
                    rows: str | None = None) -> str:
    """The shared rows (masked columns, 公示状态) and ``_key``, unordered."""
    cols = public_columns_sql(contract, "c.") + ["c._status", "c._key"]
    return f"SELECT {', '.join(cols)} FROM ({status_sql(contract, contracts, day, None, rows)}) c WHERE c._published"


def _share_sql(contract: Contract, contracts: dict[str, Contract], day: date | None) -> str:
    return f"SELECT * EXCLUDE (_key) FROM ({_share_rows_sql(contract, contracts, day)}) ORDER BY _key"


def share_rows(con, contract: Contract, contracts: dict[str, Contract], day: date | None) -> tuple[list[str], list[tuple]]:
    """Chinese header and masked rows shared for ``contract`` on ``day`` (the public view's rows)."""
    rows = con.execute(_share_sql(contract, contracts, day)).fetchall()
    return [f.label for f in contract.fields] + [SHARE_STATUS_HEADER], rows


def _copy_csv(con, sql: str, header: list[str], target) -> int:
    """Rows of ``sql`` (its ``_key`` column left out) written to ``target`` by DuckDB's own CSV
    writer, after a UTF-8 BOM and the Chinese ``header``: the same bytes as :func:`_csv_bytes` of
    the same rows (CRLF; NULL and empty text as an empty field; dates, decimals and integers as
    Python's ``str``; quotes only where Python's csv module quotes).

    Why: the full snapshot of a 1M-row night is ~800,000 shared rows; fetched to Python as tuples,
    turned to ``str`` and written by the csv module it took 8 of the 15 s of ``record_statuses``.
    DuckDB writes them from its own vectors. Empty text becomes NULL first (DuckDB
    writes ``""`` for it), and ``COMMENT ''`` keeps it from quoting a value that starts with ``#``;
    ``tests/credit/test_share_csv.py`` compares both writers on awkward values.

    On one thread: an ordered COPY on several threads holds each thread's sorted output until it
    can be written in order, outside the memory cap. The full snapshot of the 10M-row warehouse
    (2.3M shared penalties) ran out of memory under the 320 MB cap on two threads, and so does a
    300,000-row table under 128 MB (the test); on one thread the sort spills and the write
    streams."""
    cols = con.execute(f"DESCRIBE SELECT * EXCLUDE (_key) FROM ({sql})").fetchall()
    unknown = [c[1] for c in cols if c[1] not in _CSV_TYPES and not c[1].startswith("DECIMAL")]
    if unknown:  # a type whose text DuckDB and Python may spell differently: not expected here
        raise TypeError(f"share CSV: no checked text form for {unknown}")
    select = ", ".join(f"NULLIF({q(c[0])}, '')" if c[1] == "VARCHAR" else q(c[0]) for c in cols)
    # DuckDB's part goes to a scratch file beside the target (named so that a crash leaves one the
    # next run's stale-file cleaning recognises), then follows the BOM and header into the target
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    with scratch_path(target) as body:
        con.execute("SET threads = 1")
        try:
            n = con.execute(
                f"COPY (SELECT {select} FROM ({sql}) ORDER BY _key) TO {lit(str(body))} "
                "(FORMAT csv, HEADER false, DELIMITER ',', QUOTE '\"', ESCAPE '\"', NULLSTR '', "
                "NEW_LINE '\r\n', COMMENT '')"
            ).fetchone()[0]
        finally:
            con.execute(f"SET threads = {int(threads)}")
        with atomic_path(target, private=False) as tmp:  # masked: for other platforms
            with open(tmp, "wb") as out:
                out.write(_csv_bytes(header, []))
                with open(body, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
    return int(n)


_CSV_TYPES = {"VARCHAR", "DATE", "BIGINT", "INTEGER"}


def _write_share_csv(con, contract: Contract, contracts: dict[str, Contract], day: date, target) -> tuple[Path, int]:
    """The full snapshot: every record shared on ``day``. The rows go to a temporary table first and
    are sorted from there: sorted at the end of the status query (its joins still holding memory),
    the 2.3M shared rows of a 10M-row warehouse ran out of memory under the 320 MB cap; the
    table's sort spills to disk."""
    header = [f.label for f in contract.fields] + [SHARE_STATUS_HEADER]
    con.execute("DROP TABLE IF EXISTS _share_snapshot")
    rows = _as_of_rows(con, contract, day)
    try:
        con.execute(f"CREATE TEMP TABLE _share_snapshot AS {_share_rows_sql(contract, contracts, day, rows)}")
        con.execute(f"DROP TABLE {AS_OF_ROWS}")
        n = _copy_csv(con, "SELECT * FROM _share_snapshot", header, target)
    finally:
        con.execute("DROP TABLE IF EXISTS _share_snapshot")
        con.execute(f"DROP TABLE IF EXISTS {AS_OF_ROWS}")
    return Path(target), n


def _share_changes_sql(contract: Contract, contracts: dict[str, Contract], day: date, prev: date, keys: str,
                       rows: dict[date, str] | None = None, statuses: str | None = None) -> str:
    """Rows of the changes file: 变更类型, the shared columns, 公示状态, then ``_key`` (not written).
    ``statuses``: a table already holding the keys' statuses as of ``day`` (the log's)."""
    names = [q(f.name) for f in contract.fields]

    def side(as_of: date) -> str:
        cols = public_columns_sql(contract, "c.")
        src = statuses if as_of == day and statuses else f"({status_sql(contract, contracts, as_of, keys, (rows or {}).get(as_of))})"
        return f"SELECT c._key, c._published, c._status, {', '.join(cols)} FROM {src} c"

    differs = " OR ".join(f"d.{n} IS DISTINCT FROM p.{n}" for n in names + ["_status"])
    dcols = ", ".join(f"d.{n}" for n in names)
    pcols = ", ".join(f"p.{n}" for n in names)
    return f"""WITH d AS MATERIALIZED ({side(day)}), p AS MATERIALIZED ({side(prev)} WHERE c._published)
    SELECT * EXCLUDE (_order) FROM (
        SELECT {lit(ADDED)} AS _change, {dcols}, d._status, d._key, d._key AS _order FROM d LEFT JOIN p ON p._key = d._key
        WHERE d._published AND p._key IS NULL
        UNION ALL
        SELECT {lit(UPDATED)}, {dcols}, d._status, d._key, d._key FROM d JOIN p ON p._key = d._key
        WHERE d._published AND ({differs})
        UNION ALL
        SELECT {lit(WITHDRAWN)}, {pcols}, d._status, p._key, p._key FROM p LEFT JOIN d ON d._key = p._key
        WHERE NOT coalesce(d._published, FALSE)
    ) ORDER BY _order"""


def _write_share_changes(con, contract: Contract, contracts: dict[str, Contract], day: date, prev: date, keys: str,
                         target, statuses: str | None = None, winners: str | None = None) -> Counter:
    """``statuses``, ``winners``: the log's statuses as of ``day`` and the keys' winners
    (``winners_sql`` with ``prev`` as its earlier night), when the log computed them on this connection."""
    header = [SHARE_CHANGE_HEADER] + [f.label for f in contract.fields] + [SHARE_STATUS_HEADER]
    counts: Counter = Counter()
    if _none(con, keys):  # the changes file of a night without changes: its header
        with atomic_path(target, private=False) as tmp:
            tmp.write_bytes(_csv_bytes(header, []))
        return counts
    con.execute("DROP TABLE IF EXISTS _share_changes")
    sides = (("prev", prev),) if statuses else (("day", day), ("prev", prev))
    rows = {d: _rows_table(con, winner_rows_sql(contract, winners, "_e"), f"_as_of_{n}") if n == "prev" and winners
            else _as_of_rows(con, contract, d, keys, f"_as_of_{n}") for n, d in sides}
    con.execute(f"CREATE TEMP TABLE _share_changes AS {_share_changes_sql(contract, contracts, day, prev, keys, rows, statuses)}")
    for name in rows.values():
        con.execute(f"DROP TABLE {name}")
    _copy_csv(con, "SELECT * FROM _share_changes", header, target)
    counts.update(dict(con.execute("SELECT _change, count(*) FROM _share_changes GROUP BY ALL").fetchall()))
    con.execute("DROP TABLE _share_changes")
    return counts


def share_digest(contract: Contract, contracts: dict[str, Contract]) -> str:
    """The status rules plus the shared columns and their masking: what the export depends on."""
    import hashlib

    return hashlib.sha256((rules_digest(contract, contracts) + _share_sql(contract, contracts, date(2000, 1, 1))).encode()).hexdigest()[:16]


def write_share_export(data_dir, day: date, contracts: dict[str, Contract], summary: StatusSummary | None = None,
                       *, full: bool = False) -> StatusSummary:
    """The night's share files (module docstring): the changes since the feed's previous export,
    and the full snapshot when there is no usable previous export or ``full`` is asked for."""
    dd = _dd(data_dir)
    summary = summary or StatusSummary(day)
    with connect(dd, create=False) as con:  # a warehouse a night made, never a new empty one
        _share(con, dd, day, contracts, summary, full=full)
    return summary


def _share(con, dd: DataDir, day: date, contracts: dict[str, Contract], summary: StatusSummary, *, full: bool) -> None:
    for c in contracts.values():
        if c.role != "records":
            continue
        digest = share_digest(c, contracts)
        prev = _previous_night(con, "share", c, contracts, day, digest, summary.fingerprints)
        if prev is not None and prev[1] is None:
            prev = None
        summary.incremental[f"share:{c.feed}"] = prev is not None
        n = None
        if prev is not None:
            kept = summary.kept.get(c.feed)
            if kept is not None and kept[0] == prev[0]:  # the log's keys for the same (prev, day]
                keys, statuses, winners = kept[1:]
            else:
                keys, statuses, winners = _changed_keys(con, c, contracts, day, prev[0]), None, None
            target = dd.share_changes_file(day, c.feed)
            counts = _write_share_changes(con, c, contracts, day, prev[0], keys, target, statuses, winners)
            summary.share_changes[c.feed] = counts
            summary.share_files.append(Path(target))
            n = prev[1] + counts[ADDED] - counts[WITHDRAWN]
            con.execute("DROP TABLE IF EXISTS _status_keys")
        else:  # a new baseline: a changes file of an earlier run of this night no longer applies
            dd.share_changes_file(day, c.feed).unlink(missing_ok=True)
        if prev is None or full:
            path, n = _write_share_csv(con, c, contracts, day, dd.share_file(day, c.feed))
            summary.share_files.append(path)
        summary.shared[c.feed] = n
        _record_night(con, "share", c, contracts, day, digest, summary.fingerprints, n)
