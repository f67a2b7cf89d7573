"""A night's record statuses: the status history (``record_status_log``) and the shared export.

``log_statuses(data_dir, day, contracts)`` computes every record's status as the office knew it
on the night of ``day`` (warehouse.record_status) and appends a row to ``record_status_log`` for
each record whose status or cause changed since its previous row (a new record gets its first
row), so the history answers "what was published, when, and why it changed". A rerun of the
night replaces that night's rows; the versions themselves stay in ``<feed>_versions``.

``write_share_export(data_dir, day, contracts)`` writes ``reports/share/<day>/<feed>.csv``: the
records of each records feed that may be shared with other platforms (city/province platforms,
信用中国) that night: the same rows as the public view on that day (a repaired or withdrawn
record is not shared; one under objection is shared marked 异议中 unless withheld), personal
fields masked, Chinese headers, UTF-8 with BOM, ordered by business key (same night, same bytes).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from contracts.model import Contract
from warehouse.db import connect
from warehouse.feed_tables import lit, public_columns_sql, q
from warehouse.files import atomic_path
from warehouse.layout import DataDir
from warehouse.record_status import STATUS_ROLES, status_sql

SHARE_STATUS_HEADER = "公示状态"


@dataclass
class StatusSummary:
    day: date
    changes: Counter = field(default_factory=Counter)  # status -> records that changed to it tonight
    shared: dict[str, int] = field(default_factory=dict)  # feed -> rows shared
    share_files: list[Path] = field(default_factory=list)


def _dd(data_dir) -> DataDir:
    return data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)


def status_rows(con, contract: Contract, contracts: dict[str, Contract], day: date | None):
    """(business key, status, cause, version count) of every row of ``contract`` as of ``day``."""
    return con.execute(
        f"SELECT _key, _status, _status_cause, _version_count FROM ({status_sql(contract, contracts, day)}) ORDER BY _key"
    ).fetchall()


def log_statuses(data_dir, day: date, contracts: dict[str, Contract], summary: StatusSummary | None = None) -> StatusSummary:
    dd = _dd(data_dir)
    summary = summary or StatusSummary(day)
    d = f"DATE {lit(day.isoformat())}"
    with connect(dd) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"DELETE FROM record_status_log WHERE as_of = {d}")
            for c in contracts.values():
                if c.role not in STATUS_ROLES:
                    continue
                # the night's statuses; keep those that differ from the record's previous row
                rows = con.execute(
                    f"""INSERT INTO record_status_log
                    WITH now AS (SELECT _key, _status, _status_cause, _version_count FROM ({status_sql(c, contracts, day)})),
                         prev AS (SELECT business_key, arg_max(status, as_of) AS status, arg_max(cause, as_of) AS cause,
                                         arg_max(version_count, as_of) AS version_count
                                  FROM record_status_log WHERE feed = {lit(c.feed)} AND as_of < {d} GROUP BY business_key)
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
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return summary


def _csv_bytes(header: list[str], rows: list[tuple]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if v is None else str(v) for v in r])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def share_rows(con, contract: Contract, contracts: dict[str, Contract], day: date | None) -> tuple[list[str], list[tuple]]:
    """Chinese header and masked rows shared for ``contract`` on ``day`` (the public view's rows)."""
    cols = public_columns_sql(contract, "c.") + ["c._status"]
    rows = con.execute(
        f"SELECT {', '.join(cols)} FROM ({status_sql(contract, contracts, day)}) c WHERE c._published ORDER BY c._key"
    ).fetchall()
    return [f.label for f in contract.fields] + [SHARE_STATUS_HEADER], rows


_SHARE_BATCH = 20_000


def _write_share_csv(con, contract: Contract, contracts: dict[str, Contract], day: date, target: Path) -> int:
    """The share file, written in batches of rows straight to its (atomic) file: the same bytes as
    :func:`_csv_bytes` of :func:`share_rows`, without holding every published record as Python
    tuples and the whole CSV text at once (issue 12: a night stays below 1 GiB)."""
    cols = public_columns_sql(contract, "c.") + ["c._status"]
    cur = con.execute(
        f"SELECT {', '.join(cols)} FROM ({status_sql(contract, contracts, day)}) c WHERE c._published ORDER BY c._key"
    )
    n = 0
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write("\ufeff")
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow([f.label for f in contract.fields] + [SHARE_STATUS_HEADER])
        while batch := cur.fetchmany(_SHARE_BATCH):
            w.writerows(["" if v is None else str(v) for v in r] for r in batch)
            n += len(batch)
    return n


def write_share_export(data_dir, day: date, contracts: dict[str, Contract], summary: StatusSummary | None = None) -> StatusSummary:
    dd = _dd(data_dir)
    summary = summary or StatusSummary(day)
    with connect(dd, read_only=True) as con:
        for c in contracts.values():
            if c.role != "records":
                continue
            path = dd.share_file(day, c.feed)
            summary.shared[c.feed] = _write_share_csv(con, c, contracts, day, path)
            summary.share_files.append(path)
    return summary
