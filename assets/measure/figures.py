"""A month's figures per department × feed as of a day, and their totals: one computation for
the indicator export (its rows, 合计, 全县合计 and 总计) and the quality dashboard (headline,
per-feed table, league), so the two can never disagree for the same month and as-of day.

``month_cells(con, contracts, month, as_of, pairs)`` returns one cell per owed (department,
feed) pair: the counts of ``metrics_monthly`` (rows and records by the month they arrived, as
the last night measured them) and the 上报率 inputs *as of* ``as_of`` (``report_counts``:
records whose decision date falls in the month, first received on or before ``as_of``, and the
ledger count in the latest ledger version received by then). A pair with nothing has zero
counts and no declaration.

``combine(cells)`` adds cells up: every count is a sum, and the 上报率 inputs cover the pairs
that declared a count: ``declared_records`` = records of those pairs, ``declared`` = their
declared counts (None when none declared), with ``declared_pairs`` of ``pairs`` saying how much
of the total that is. A pair without a declaration has an unknown rate, never 100%; leaving the
whole total empty instead would hide the county's figure for good, because the water, power and
gas companies owe no ledger. A single cell combined is the cell's own figure, so every row and
every total is computed by the same definitions (ARCHITECTURE "Metrics"):
合规率 = passed ÷ received, 及时率 = on_time ÷ timed, 迟报率 = 100 − 及时率 as printed, 上报率 =
declared_records ÷ declared; rates by ``rate`` (percent, two decimals, half up).
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

import duckdb

from assets.measure.metrics import report_counts
from contracts.model import Contract, Registry
from warehouse.feed_tables import lit

COUNTS = ("received", "passed", "loaded", "timed", "on_time", "late", "provisional")


def rate(num, den) -> str | None:
    """Percent with two decimals, half up, as text; None when the denominator is 0 or unknown."""
    if den is None or num is None or int(den) == 0:
        return None
    return str((Decimal(int(num)) * 100 / Decimal(int(den))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def owed_pairs(contracts: dict[str, Contract], registry: Registry) -> list[tuple[str, str]]:
    """(department, feed) for every enabled records feed a department owes, in registry order."""
    return [(d.code, f) for d in registry.departments for f in d.feeds
            if f in contracts and contracts[f].role == "records" and contracts[f].enabled]


def month_cells(
    con: duckdb.DuckDBPyConnection,
    contracts: dict[str, Contract],
    month: str,
    as_of: date | None,
    pairs: Iterable[tuple[str, str]],
) -> dict[tuple[str, str], dict]:
    """(department, feed) -> the pair's counts for ``month`` with 上报率 as of ``as_of`` (see the
    module docstring); ``as_of`` None (nothing received yet): no records, nothing declared."""
    rows = con.execute(
        f"""SELECT dept, feed, received_rows, passed_rows, loaded_rows, timed_records, on_time_records,
                   late_records, provisional_records
            FROM metrics_monthly WHERE month = {lit(month)}"""
    ).fetchall()
    measured = {(r[0], r[1]): dict(zip(COUNTS, (int(v or 0) for v in r[2:]))) for r in rows}
    reports = report_counts(con, contracts, month, as_of) if as_of else {}
    out = {}
    for dept, feed in pairs:
        records, declared = reports.get((feed, dept), (0, None))
        out[(dept, feed)] = {**(measured.get((dept, feed)) or dict.fromkeys(COUNTS, 0)),
                             "records": int(records or 0), "declared": None if declared is None else int(declared)}
    return out


def combine(cells: Iterable[dict]) -> dict:
    """The cells added up; 上报率's inputs over the cells that declared a count (module docstring)."""
    cells = list(cells)
    out = {k: sum(int(c[k] or 0) for c in cells) for k in (*COUNTS, "records")}
    declared = [c for c in cells if c["declared"] is not None]
    out["declared"] = sum(int(c["declared"]) for c in declared) if declared else None
    out["declared_records"] = sum(int(c["records"] or 0) for c in declared)
    out["pairs"], out["declared_pairs"] = len(cells), len(declared)
    return out


def rates(c: dict) -> dict[str, str | None]:
    """合规率, 及时率, 迟报率, 上报率 of a combined cell (``combine``)."""
    timely = rate(c["on_time"], c["timed"])
    return {
        "compliance": rate(c["passed"], c["received"]),
        "timely": timely,
        "late": None if timely is None else str(Decimal("100.00") - Decimal(timely)),
        "report": rate(c["declared_records"], c["declared"]),
    }
