"""Monitored-indicator export for the city ranking (城市信用状况监测), one month at a time.

``build_export(data_dir, month, contracts, registry)`` returns the indicator table: one row per
department and feed the department owes (registry order; zero counts when nothing arrived),
then one 合计 row per feed (部门代码 ``ALL``, 部门名称 ``全部``). Columns exactly
``月份, 部门代码, 部门名称, 信息类别, 归集量, 清洗入库量, 合规率, 及时率, 迟报率, 上报率, 上报率说明``;
rates are percentages with two decimals as text ("98.50", half-up), empty when the denominator is
0 or (上报率) nothing was declared. 迟报率 = 100.00 − 及时率 as printed, so the two always add up.
归集量 and 清洗入库量 count rows received in the month; 上报率 counts records: distinct business
keys whose *decision date* falls in the month (the month the ledger declares decisions for),
received by the export's as-of date, ÷ the declared count (rows without a readable key are not
records). 上报率说明 says "截至 <as-of>" and, when the rate is above 100%, that the ledger and the
records disagree (台账不符): the rate is shown as computed, never capped. The as-of date defaults
to the last received day in the warehouse. The 合计 rows add the departments' counts; their
上报率 is empty unless every department that owes the feed declared a count for the month.

``write_export(data_dir, month, fmt)`` writes ``reports/exports/indicators_<YYYY-MM>.<csv|xlsx>``:
CSV in UTF-8 with BOM; XLSX with sheets 监测指标, 迟报记录 (late records of the month),
未整改问题 (quarantine items received up to the month's end and still open) and 说明 (the
deadline rule per feed, and 暂定 when a figure used a Monday–Friday fallback year). Both are
byte-for-byte deterministic (no timestamps; fixed ZIP entry dates). Every text cell passes
through ``scrub``: an 18/15-digit resident ID that is not a valid USCC is masked
(``500237********1234``), on top of the masking of personal fields.
"""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd

from assets.measure import latest_received, report_counts
from assets.measure.calendar import describe_rule
from contracts.model import Contract, Registry
from warehouse.db import connect
from warehouse.feed_tables import lit
from warehouse.masking import mask, scrub_text
from warehouse.files import workbook_bytes, write_bytes
from warehouse.layout import DataDir

COLUMNS = ["月份", "部门代码", "部门名称", "信息类别", "归集量", "清洗入库量", "合规率", "及时率", "迟报率", "上报率", "上报率说明"]
SHEET_INDICATORS = "监测指标"
SHEET_LATE = "迟报记录"
SHEET_OPEN = "未整改问题"
SHEET_NOTES = "说明"
TOTAL_CODE, TOTAL_NAME = "ALL", "全部"

def scrub(value):
    """Free text as it may leave the office (the one masking policy, warehouse.masking)."""
    return scrub_text(value)


def _rate(num: int, den: int | None) -> str:
    if not den:
        return ""
    return str((Decimal(int(num)) * 100 / Decimal(int(den))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _check_month(month: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ValueError(f"月份格式应为 YYYY-MM / expected YYYY-MM: {month!r}")
    return month


def _records_feeds(contracts: dict[str, Contract]) -> list[Contract]:
    return [c for c in contracts.values() if c.role == "records"]


def _monthly(con, month: str) -> dict[tuple[str, str], dict]:
    rows = con.execute(
        f"""SELECT feed, dept, received_rows, passed_rows, loaded_rows, timed_records, on_time_records,
                   declared_count, provisional_records, received_records
            FROM metrics_monthly WHERE month = {lit(month)}"""
    ).fetchall()
    keys = ["received", "passed", "loaded", "timed", "on_time", "declared", "provisional", "records"]
    return {(r[0], r[1]): dict(zip(keys, r[2:])) for r in rows}


def _report_note(m: dict, as_of: date | None) -> str:
    """截至 <as-of>, plus 台账不符 when more records arrived than the ledger declares."""
    note = f"截至{as_of.isoformat()}" if as_of else "无数据"
    if m["declared"] is not None and m["records"] is not None and m["records"] > m["declared"]:
        note += f"；台账不符：报送记录{int(m['records'])}条多于台账申报{int(m['declared'])}条，请核对台账"
    return note


def _row(month: str, code: str, name: str, title: str, m: dict, as_of: date | None = None) -> dict:
    timely = _rate(m["on_time"], m["timed"])
    late = "" if timely == "" else str(Decimal("100.00") - Decimal(timely))
    return {
        "月份": month,
        "部门代码": code,
        "部门名称": name,
        "信息类别": title,
        "归集量": int(m["received"]),
        "清洗入库量": int(m["loaded"]),
        "合规率": _rate(m["passed"], m["received"]),
        "及时率": timely,
        "迟报率": late,
        "上报率": _rate(m["records"], m["declared"]) if m["declared"] is not None and m["records"] is not None else "",
        "上报率说明": _report_note(m, as_of),
    }


def _indicators(con, month: str, contracts: dict[str, Contract], registry: Registry,
                as_of: date | None = None) -> tuple[pd.DataFrame, dict[str, bool]]:
    data = _monthly(con, month)
    # 上报率 by decision month as of the export's date (metrics_monthly holds it as of the last night)
    as_of = as_of or latest_received(con)
    reports = report_counts(con, contracts, month, as_of) if as_of else {}
    for key in set(data) | set(reports):
        records, declared = reports.get(key, (0, None))
        base = data.get(key) or {"received": 0, "passed": 0, "loaded": 0, "timed": 0, "on_time": 0, "provisional": 0}
        data[key] = {**base, "records": records, "declared": declared}
    zero = {"received": 0, "passed": 0, "loaded": 0, "timed": 0, "on_time": 0, "declared": None, "provisional": 0, "records": 0}
    feeds = _records_feeds(contracts)
    by_feed = {c.feed: c for c in feeds}
    rows: list[dict] = []
    totals: dict[str, dict] = {c.feed: {**zero, "declared": 0, "undeclared": False, "unknown_records": False} for c in feeds}
    for dept in registry.departments:
        for feed in dept.feeds:
            if feed not in by_feed:
                continue
            m = data.get((feed, dept.code), zero)
            rows.append(_row(month, dept.code, dept.name, by_feed[feed].title, m, as_of))
            t = totals[feed]
            for k in ("received", "passed", "loaded", "timed", "on_time", "provisional", "records"):
                t[k] += int(m[k] or 0)
            if m["records"] is None:  # a monthly row written before received_records existed
                t["unknown_records"] = True
            if m["declared"] is None:
                t["undeclared"] = True
            else:
                t["declared"] += int(m["declared"])
    provisional: dict[str, bool] = {}
    for c in feeds:
        t = totals[c.feed]
        t["declared"] = None if t["undeclared"] else t["declared"]
        t["records"] = None if t["unknown_records"] else t["records"]
        rows.append(_row(month, TOTAL_CODE, TOTAL_NAME, c.title, t, as_of))
        provisional[c.feed] = t["provisional"] > 0
    df = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("归集量", "清洗入库量"):
        df[col] = df[col].astype("int64")
    for col in ("月份", "部门代码", "部门名称", "信息类别", "合规率", "及时率", "迟报率", "上报率", "上报率说明"):
        df[col] = df[col].astype(object)
    return df, provisional


def build_export(data_dir: DataDir | str | Path, month: str, contracts: dict[str, Contract], registry: Registry,
                 as_of: date | None = None) -> pd.DataFrame:
    """The indicator table of ``month`` (YYYY-MM) with 上报率 as of ``as_of`` (default: the last
    received day in the warehouse); see the module docstring."""
    data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    _check_month(month)
    with connect(data_dir, read_only=True) as con:
        df, _ = _indicators(con, month, contracts, registry, as_of)
    return df.map(scrub)


def _late_records(con, month: str, contracts: dict[str, Contract], registry: Registry) -> pd.DataFrame:
    feeds = _records_feeds(contracts)
    cols = ["信息类别", "部门代码", "部门名称", "业务主键", "决定日期", "报送期限", "首次接收日", "首次有效接收日", "逾期工作日数", "逾期自然日数", "暂定"]
    if not feeds:
        return pd.DataFrame(columns=cols)
    first = date.fromisoformat(month + "-01")
    last = first.replace(day=monthrange(first.year, first.month)[1])
    rows = con.execute(
        f"""SELECT feed, dept, business_key, decision_date, deadline, first_received, first_valid_received,
                   working_days_late, days_late, provisional
            FROM timeliness
            WHERE NOT on_time AND first_received BETWEEN DATE {lit(first.isoformat())} AND DATE {lit(last.isoformat())}
              AND feed IN ({', '.join(lit(c.feed) for c in feeds)})
            ORDER BY feed, dept, first_received, business_key"""
    ).fetchall()
    names = {d.code: d.name for d in registry.departments}
    titles = {c.feed: c.title for c in feeds}
    out = [
        [titles[r[0]], r[1], names.get(r[1], ""), r[2], _d(r[3]), _d(r[4]), _d(r[5]), _d(r[6]), r[7], r[8], "是" if r[9] else ""]
        for r in rows
    ]
    return pd.DataFrame(out, columns=cols).map(scrub)


def _open_items(con, month: str, contracts: dict[str, Contract], registry: Registry) -> pd.DataFrame:
    cols = ["信息类别", "部门代码", "部门名称", "接收日期", "文件名", "行号", "业务主键", "问题规则", "问题说明"]
    first = date.fromisoformat(month + "-01")
    last = first.replace(day=monthrange(first.year, first.month)[1])
    rows = con.execute(
        f"""SELECT feed, dept, received_date, source_name, row_no, business_key, rule_ids, messages
            FROM quarantine_items WHERE status = 'open' AND received_date <= DATE {lit(last.isoformat())}
            ORDER BY feed, dept, received_date, file_id, row_no"""
    ).fetchall()
    names = {d.code: d.name for d in registry.departments}
    titles = {c.feed: c.title for c in contracts.values()}
    out = [[titles.get(r[0], r[0]), r[1], names.get(r[1], ""), _d(r[2]), r[3], r[4], r[5], r[6], r[7]] for r in rows]
    return pd.DataFrame(out, columns=cols).map(scrub)


def _notes(contracts: dict[str, Contract], provisional: dict[str, bool], as_of: date | None = None) -> pd.DataFrame:
    rows = []
    for c in _records_feeds(contracts):
        rule = describe_rule(c.deadline) if c.deadline else "未规定报送时限"
        cal = "暂定（provisional）：部分年份无国务院节假日安排，按周一至周五计算" if provisional.get(c.feed) else "国务院节假日安排"
        rows.append([c.title, rule, c.deadline.basis if c.deadline else "", cal])
    rows.append(["指标口径", "归集量=接收行数（含重报）；清洗入库量=校验通过入库行数；合规率=通过÷接收；及时率=首次有效报送未超期记录÷入库记录（按首次接收月份归集）；迟报率=100%−及时率；上报率=决定日期在本月的报送记录数÷部门台账申报的本月决定数（记录按业务主键去重，按决定日期所在月份计，截至数据截止日已接收的均计入，重报、更正和重复行不重复计数；业务主键缺项无法识别的行计入归集量但不计为记录；未申报为空；超过100%照实显示并标注台账不符）", "", ""])
    rows.append(["数据截止日", f"上报率按截至{as_of.isoformat()}已接收的记录计算" if as_of else "仓库中尚无接收数据", "", ""])
    return pd.DataFrame(rows, columns=["信息类别", "报送时限规则", "依据", "工作日历"])


def _d(v) -> str:
    return v.isoformat() if v is not None else ""


def _csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


RATE_COLUMNS = ("合规率", "及时率", "迟报率", "上报率")


def _xlsx_value(v, rate: bool):
    """Cell value: rates become numbers (percent, two decimals shown) so Excel can sort and sum
    them; an unknown rate stays an empty cell, never 0."""
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return None
    if rate:
        return float(v) if v != "" else None
    return v.item() if hasattr(v, "item") else v


def _xlsx_bytes(sheets: list[tuple[str, pd.DataFrame]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for title, df in sheets:
        ws = wb.create_sheet(title)
        ws.append(list(df.columns))
        for cell in ws[1]:
            cell.font = Font(bold=True)
        rate_cols = {i for i, c in enumerate(df.columns) if c in RATE_COLUMNS}
        for row in df.itertuples(index=False):
            ws.append([_xlsx_value(v, i in rate_cols) for i, v in enumerate(row)])
        for i in sorted(rate_cols):
            for (cell,) in ws.iter_rows(min_row=2, min_col=i + 1, max_col=i + 1):
                cell.number_format = "0.00"
        for i, col in enumerate(df.columns, start=1):
            width = max([len(str(col))] + [len(str(v)) for v in df.iloc[:, i - 1].tolist()[:500]]) + 2
            ws.column_dimensions[ws.cell(1, i).column_letter].width = min(60, width * 1.6)
        ws.freeze_panes = "A2"
    return workbook_bytes(wb)


def write_export(
    data_dir: DataDir | str | Path,
    month: str,
    fmt: str = "xlsx",
    out: str | Path | None = None,
    *,
    contracts: dict[str, Contract] | None = None,
    registry: Registry | None = None,
    as_of: date | None = None,
) -> Path:
    """Write the month's export (CSV with BOM, or XLSX with the extra sheets); return its path."""
    from contracts.loader import load_contracts, load_registry

    data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    _check_month(month)
    if fmt not in ("xlsx", "csv"):
        raise ValueError(f"导出格式只能是 xlsx 或 csv / fmt must be xlsx or csv: {fmt!r}")
    contracts = contracts or load_contracts()
    registry = registry or load_registry(contracts=contracts)
    target = Path(out) if out else data_dir.exports / f"indicators_{month}.{fmt}"
    with connect(data_dir, read_only=True) as con:
        as_of = as_of or latest_received(con)
        df, provisional = _indicators(con, month, contracts, registry, as_of)
        df = df.map(scrub)
        if fmt == "csv":
            data = _csv_bytes(df)
        else:
            data = _xlsx_bytes(
                [
                    (SHEET_INDICATORS, df),
                    (SHEET_LATE, _late_records(con, month, contracts, registry)),
                    (SHEET_OPEN, _open_items(con, month, contracts, registry)),
                    (SHEET_NOTES, _notes(contracts, provisional, as_of)),
                ]
            )
    return write_bytes(data, target)
