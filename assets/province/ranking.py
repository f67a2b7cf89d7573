"""The county league (区县排名) of the province, from ``county_metrics_daily`` (PROVINCE.md).

Any date range (a month by default): per county, and per county × department, the counts are
summed over days and feeds first and the rates recomputed from the sums — never an average of
daily or per-feed rates:

- 归集量 = Σ received_rows, 清洗入库量 = Σ loaded_rows (rows; a resent record counts again);
- 合规率 = Σ passed_rows ÷ Σ received_rows;
- 及时率 = Σ on_time_records ÷ Σ timed_records;
- 迟报率 = 100.00 − 及时率 as printed (as the county's export and ``metrics_daily``: 1 − 及时率).

Rates are percentages with two decimals, rounded half up, as text ("98.50"), ``None`` when the
denominator is 0 (the same ``rate`` the county dashboard uses). Targets: 合规率 and 及时率
100%, 迟报率 0%; a row misses its target when a printed rate falls short (``off_target`` names
the rates), or when a county on the settings' list sent nothing in the range (无数据).

Order (``RANK_ORDER``): 合规率 descending, then 及时率 descending, then 归集量 descending; a
missing rate ranks after every number. Rows equal on all three *printed* values share a rank
(1, 2, 2, 4), so what the reader sees as a tie is one. Departments (county × dept rows) are
ranked across the whole province with the same order (全省名次) and within their county
(县内名次). Worst first is the reverse of the rank order.

``county_metrics_daily`` is read from any DuckDB connection: the lake side's ``register_lake``
view in the province, or a table of that schema.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Iterable, Mapping

from assets.dashboard.data import rate

TABLE = "county_metrics_daily"
RANK_ORDER = ("合规率（高→低）", "及时率（高→低）", "归集量（多→少）")
TARGET = Decimal("100.00")
RATE_LABELS = {"compliance": "合规率", "timely": "及时率", "late": "迟报率"}
COUNTS = ("received", "passed", "quarantined", "loaded", "timed", "on_time", "late_records", "provisional")


@dataclass(frozen=True)
class Period:
    """A closed range of province received days; ``label`` is what pages and workbooks print."""

    start: date
    end: date
    label: str
    key: str  # file-name part: YYYY-MM or YYYY-MM-DD_YYYY-MM-DD

    @classmethod
    def month(cls, month: str) -> "Period":
        try:
            y, m = int(month[:4]), int(month[5:7])
            if len(month) != 7 or month[4] != "-" or not 1 <= m <= 12:
                raise ValueError
        except ValueError:
            raise ValueError(f"月份格式应为 YYYY-MM / expected YYYY-MM: {month!r}") from None
        return cls(date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1]), f"{y}年{m}月", month)

    @classmethod
    def days(cls, start: date, end: date) -> "Period":
        if end < start:
            raise ValueError(f"结束日期早于开始日期 / end before start: {start} – {end}")
        return cls(start, end, f"{start.isoformat()} 至 {end.isoformat()}", f"{start.isoformat()}_{end.isoformat()}")


def _sums_sql(group: str, period: Period) -> str:
    return f"""
        SELECT {group}, max(county_name) AS county_name,
               sum(received_rows) AS received, sum(passed_rows) AS passed, sum(quarantined_rows) AS quarantined,
               sum(loaded_rows) AS loaded, sum(timed_records) AS timed, sum(on_time_records) AS on_time,
               sum(late_records) AS late_records, sum(provisional_records) AS provisional
        FROM {TABLE}
        WHERE day BETWEEN DATE '{period.start.isoformat()}' AND DATE '{period.end.isoformat()}'
        GROUP BY {group} ORDER BY {group}"""


def with_rates(row: dict) -> dict:
    """Rates from the summed counts, and which of them miss the 100% target."""
    timely = rate(row["on_time"], row["timed"])
    out = {**row, "compliance": rate(row["passed"], row["received"]), "timely": timely,
           "late": None if timely is None else str(TARGET - Decimal(timely))}
    off = [label for key, label in RATE_LABELS.items()
           if out[key] is not None and (Decimal(out[key]) > 0 if key == "late" else Decimal(out[key]) < TARGET)]
    if not row["received"]:
        off.append("无数据")
    out["off_target"] = off
    return out


def rank_key(row: dict) -> tuple:
    """Smaller is better: RANK_ORDER, a missing rate after every number."""
    def desc(v):
        return (1, Decimal(0)) if v is None else (0, -Decimal(v))

    return (*desc(row["compliance"]), *desc(row["timely"]), -int(row["received"] or 0))


def assign_ranks(rows: list[dict], field: str = "rank") -> list[dict]:
    """Sort by ``rank_key`` and number them; equal keys share a rank (1, 2, 2, 4)."""
    rows = sorted(rows, key=lambda r: (rank_key(r), r["county_code"], r.get("dept") or ""))
    prev, place = None, 0
    for i, r in enumerate(rows, start=1):
        key = rank_key(r)
        place = place if key == prev else i
        r[field], prev = place, key
    return rows


def _fetch(con, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [{k: (int(v) if k in COUNTS and v is not None else v) for k, v in zip(names, r)} for r in cur.fetchall()]


def _zero(code: str, name: str, **extra) -> dict:
    return {"county_code": code, "county_name": name, **extra, **{k: 0 for k in COUNTS}}


def county_league(con, period: Period, counties: Mapping[str, str] | None = None) -> list[dict]:
    """One row per county, ranked (see module docstring). ``counties`` (code → name, the
    settings' list) adds the counties that sent nothing in the range, last, flagged 无数据, and
    names counties by the settings."""
    rows = _fetch(con, _sums_sql("county_code", period))
    seen = {r["county_code"] for r in rows}
    for code, name in (counties or {}).items():
        if code not in seen:
            rows.append(_zero(code, name))
    for r in rows:
        if counties and r["county_code"] in counties:
            r["county_name"] = counties[r["county_code"]]
        r["county_name"] = r["county_name"] or r["county_code"]
    return assign_ranks([with_rates(r) for r in rows])


def county_dept_league(con, period: Period, counties: Mapping[str, str] | None = None) -> list[dict]:
    """One row per county × department (feeds summed), ranked across the province (``rank``)
    and within the county (``county_rank``), in province rank order."""
    rows = [with_rates(r) for r in _fetch(con, _sums_sql("county_code, dept", period))]
    for r in rows:
        if counties and r["county_code"] in counties:
            r["county_name"] = counties[r["county_code"]]
    by_county: dict[str, list[dict]] = {}
    for r in rows:
        by_county.setdefault(r["county_code"], []).append(r)
    for group in by_county.values():
        assign_ranks(group, "county_rank")
    return assign_ranks(rows)


def province_total(rows: Iterable[dict]) -> dict:
    """全省合计: the counties' counts added, rates recomputed from the sums."""
    rows = list(rows)
    total = {"county_code": "ALL", "county_name": "全省合计", **{k: sum(int(r[k] or 0) for r in rows) for k in COUNTS}}
    return with_rates(total)


def county_daily(con, period: Period) -> dict[str, dict]:
    """Per county the days of the range with their rates (from that day's summed counts), for
    the dashboard's chart per county: {code: {"days": [...], "received": [...], "compliance": [...],
    "timely": [...], "late": [...]}}; a day without rows is absent (the chart shows a gap)."""
    rows = _fetch(con, _sums_sql("county_code, day", period))
    out: dict[str, dict] = {}
    for r in rows:
        r = with_rates(r)
        s = out.setdefault(r["county_code"], {"days": [], "received": [], "compliance": [], "timely": [], "late": []})
        s["days"].append(r["day"].isoformat())
        s["received"].append(r["received"])
        for k in ("compliance", "timely", "late"):
            s[k].append(None if r[k] is None else float(r[k]))
    return out


def league(con, period: Period, counties: Mapping[str, str] | None = None) -> dict:
    """Everything the export and the dashboard show, in one dict."""
    counties_rows = county_league(con, period, counties)
    return {
        "period": period,
        "counties": counties_rows,
        "departments": county_dept_league(con, period, counties),
        "total": province_total(counties_rows),
        "daily": county_daily(con, period),
        "order": RANK_ORDER,
    }
