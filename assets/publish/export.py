"""Monitored-indicator export for the city ranking (城市信用状况监测), one month at a time.

``build_export(data_dir, month, contracts, registry)`` returns the indicator table: one row per
department and feed the department owes (registry order; zero counts when nothing arrived),
then one 合计 row per feed (部门代码 ``ALL``, 部门名称 ``全部``). Columns: the ten of the CSV,
``月份, 部门代码, 部门名称, 信息类别, 归集量, 清洗入库量, 合规率, 及时率, 迟报率, 上报率``, plus
``上报率说明`` (shown in the XLSX only);
rates are percentages with two decimals as text ("98.50", half-up), empty when the denominator is
0 or (上报率) nothing was declared. 迟报率 = 100.00 − 及时率 as printed, so the two always add up.
归集量 and 清洗入库量 count rows received in the month; 上报率 counts records: distinct business
keys whose *decision date* falls in the month (the month the ledger declares decisions for),
received by the export's as-of date, ÷ the declared count (rows without a readable key are not
records). 上报率说明 says "截至 <as-of>" and, when the rate is above 100%, that the ledger and the
records disagree (台账不符): the rate is shown as computed, never capped. The as-of date defaults
to the last received day in the warehouse.

Every total (a feed's 合计 over the departments, in the XLSX also each department's 合计 over its
feeds and the 总计) comes from the same cells as the rows above it, as of the same day, by the
same function (``assets.measure.figures``: ``month_cells`` and ``combine``, which the dashboard's
headline, feed table and league use too): counts are sums, each rate is the sum of its rows'
numerators over the sum of their denominators. A total's 上报率 covers the rows that declared a
count (records of those rows ÷ their declared counts; empty when none declared); when only some
did, its 上报率说明 says how many ("已申报台账 3/5 项，上报率按已申报的项计算"). The 总计's 上报率
is therefore the dashboard's headline figure for the same month and as-of day.

Refused, nothing written (``ExportRefused``; ``resolve_as_of``): an as-of date after the last
received day (``AsOfAfterLastDay``: not clamped, so a file never carries a 截至 date other than the
one asked for), and a month the warehouse has no data for at all as of that date
(``MonthHasNoData``: no day of it received, no record decided in it, no ledger count for it).

``write_export(data_dir, month, fmt)`` writes ``reports/exports/indicators_<YYYY-MM>.<csv|xlsx>``.
The CSV (UTF-8 with BOM) is for machines: exactly the ten columns above (no 上报率说明) and one
header row. The
XLSX is what the office head sends to the city: 监测指标 opens with a title block (county, month
and export date typed as dates, issuing unit from ``departments.yaml``), then each department's
feed rows followed by its 合计, the county's 全县合计 per feed and the 总计; departments in the
city's order or ranked (``indicator_order`` / ``order``: by the 合计 row's 及时率, 合规率, 上报率,
ties share a place); rates are numbers in percent format (0.985 shown as 98.50%), and a rate off
target (below 100%, or 迟报率 above 0%) is red. Printed on A4 landscape, one page wide, title and
header repeated on every page. Further sheets: 迟报记录 (late records of the month, dates as
dates), 未整改问题 (quarantine items received up to the month's end and still open) and 说明 (the
deadline rule per feed, and 暂定 when a figure used a Monday–Friday fallback year). Both files are
byte-for-byte deterministic for a given export date (fixed document time and ZIP entry dates). Every text cell passes
through ``scrub``: an 18/15-digit resident ID that is not a valid USCC is masked
(``500237********1234``), on top of the masking of personal fields.
"""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd

from assets.measure import latest_received, report_counts
from assets.measure.figures import combine, month_cells, owed_pairs, rates
from assets.measure.calendar import describe_rule
from contracts.model import Contract, Registry
from warehouse.db import connect
from warehouse.feed_tables import lit
from warehouse.masking import mask, scrub_text
from warehouse.files import text_width, write_bytes, xlsxwriter_bytes
from warehouse.layout import DataDir

# the machine-readable CSV: exactly these ten columns; the XLSX adds NOTE_COLUMN for people
COLUMNS = ["月份", "部门代码", "部门名称", "信息类别", "归集量", "清洗入库量", "合规率", "及时率", "迟报率", "上报率"]
NOTE_COLUMN = "上报率说明"
SHEET_INDICATORS = "监测指标"
SHEET_LATE = "迟报记录"
SHEET_OPEN = "未整改问题"
SHEET_NOTES = "说明"
TOTAL_CODE, TOTAL_NAME = "ALL", "全部"
DEPT_TOTAL = "合计"
GRAND_CODE, GRAND_NAME, GRAND_FEED = "ALL", "总计", "全部"

def scrub(value):
    """Free text as it may leave the office (the one masking policy, warehouse.masking)."""
    return scrub_text(value)


def _check_month(month: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ValueError(f"月份格式应为 YYYY-MM / expected YYYY-MM: {month!r}")
    return month


def _records_feeds(contracts: dict[str, Contract]) -> list[Contract]:
    return [c for c in contracts.values() if c.role == "records"]


def _report_note(c: dict, as_of: date | None, total: bool = False) -> str:
    """截至 <as-of>; for a total covering only some declared pairs, how many (上报率 counts those);
    台账不符 when more records arrived than the ledger declares."""
    note = f"截至{as_of.isoformat()}" if as_of else "无数据"
    if total and 0 < c["declared_pairs"] < c["pairs"]:
        note += f"；已申报台账{c['declared_pairs']}/{c['pairs']}项，上报率按已申报的项计算"
    if c["declared"] is not None and c["declared_records"] > c["declared"]:
        note += f"；台账不符：报送记录{int(c['declared_records'])}条多于台账申报{int(c['declared'])}条，请核对台账"
    return note


def _row(month: str, code: str, name: str, title: str, c: dict, as_of: date | None, total: bool = False) -> dict:
    """One line of the export from a combined cell (``assets.measure.figures.combine``): a
    department × feed row is one cell, a total the cells it adds up; the rates are the same
    function of the counts for both."""
    r = rates(c)
    return {
        "月份": month,
        "部门代码": code,
        "部门名称": name,
        "信息类别": title,
        "归集量": int(c["received"]),
        "清洗入库量": int(c["loaded"]),
        "合规率": r["compliance"] or "",
        "及时率": r["timely"] or "",
        "迟报率": r["late"] or "",
        "上报率": r["report"] or "",
        "上报率说明": _report_note(c, as_of, total),
    }


class ExportRefused(ValueError):
    """Nothing was written; the message (Chinese and English) says why."""


class MonthHasNoData(ExportRefused):
    """The warehouse holds nothing at all for the month (as of the export's date)."""


class AsOfAfterLastDay(ExportRefused):
    """``as_of`` is after the last received day: 上报率 cannot be known for days not received yet."""


def resolve_as_of(con, month: str, contracts: dict[str, Contract], as_of: date | None = None) -> date:
    """The export's as-of date: ``as_of``, or the last received day in the warehouse.

    Refused (``ExportRefused``, nothing written): an ``as_of`` after the last received day (the
    figure would be labelled with a day whose deliveries have not arrived; it is not clamped, so
    the date printed is always the date asked for), and a month the warehouse has nothing for as
    of that date: no day of the month received and no record decided in the month or ledger
    count declared for it received by then (the workbook would be all zeros)."""
    _check_month(month)
    latest = latest_received(con)
    if latest is None:
        raise MonthHasNoData(f"仓库中尚无任何接收数据，未导出 {month} 的监测指标（请先运行 credit-etl run） / "
                             f"the warehouse has received nothing yet; no export written")
    if as_of is not None and as_of > latest:
        raise AsOfAfterLastDay(
            f"数据截止日 {as_of.isoformat()} 晚于仓库最后接收日 {latest.isoformat()}：之后的报送尚未接收，上报率无法按该日计算，"
            f"未导出。请省略 --as-of（默认按最后接收日 {latest.isoformat()}）或指定不晚于该日的日期 / "
            f"--as-of {as_of.isoformat()} is after the last received day {latest.isoformat()}; no export written")
    as_of = as_of or latest
    if not _month_has_data(con, month, contracts, as_of):
        raise MonthHasNoData(
            f"{month} 没有任何数据：截至 {as_of.isoformat()}，仓库中既无该月接收的报送，也无决定日期在该月的记录或该月的台账申报，"
            f"未导出。请检查月份是否正确 / no data at all for {month} as of {as_of.isoformat()}; no export written")
    return as_of


def _month_has_data(con, month: str, contracts: dict[str, Contract], as_of: date) -> bool:
    first = date.fromisoformat(month + "-01")
    last = min(first.replace(day=monthrange(first.year, first.month)[1]), as_of)
    if last >= first:
        span = f"BETWEEN DATE {lit(first.isoformat())} AND DATE {lit(last.isoformat())}"
        received = con.execute(
            f"""SELECT (SELECT count(*) FROM ingest_manifest WHERE received_date {span})
                     + (SELECT count(*) FROM metrics_daily WHERE day {span})"""
        ).fetchall()[0][0]
        if received:
            return True
    return bool(report_counts(con, contracts, month, as_of))


def _indicators(con, month: str, contracts: dict[str, Contract], registry: Registry,
                as_of: date | None) -> tuple[pd.DataFrame, dict[str, dict], dict, dict[str, bool]]:
    """Every figure of the export from one set of cells (``month_cells``, 上报率 as of ``as_of``):
    the department × feed rows and the feed totals (the CSV's table), each department's 合计 and
    the 总计, all by ``combine`` and ``_row``."""
    feeds = _records_feeds(contracts)
    titles = {c.feed: c.title for c in feeds}
    pairs = owed_pairs(contracts, registry)
    cells = month_cells(con, contracts, month, as_of, pairs)
    names = {d.code: d.name for d in registry.departments}
    rows = [_row(month, dept, names[dept], titles[feed], combine([cells[(dept, feed)]]), as_of) for dept, feed in pairs]
    provisional: dict[str, bool] = {}
    for c in feeds:
        t = combine(cells[p] for p in pairs if p[1] == c.feed)
        rows.append(_row(month, TOTAL_CODE, TOTAL_NAME, c.title, t, as_of, total=True))
        provisional[c.feed] = t["provisional"] > 0
    dept_totals = {}
    for d in registry.departments:
        own = [cells[p] for p in pairs if p[0] == d.code]
        if own:
            dept_totals[d.code] = _row(month, d.code, d.name, DEPT_TOTAL, combine(own), as_of, total=True)
    grand = _row(month, GRAND_CODE, GRAND_NAME, GRAND_FEED, combine(cells.values()), as_of, total=True)
    df = pd.DataFrame(rows, columns=[*COLUMNS, NOTE_COLUMN])
    for col in ("归集量", "清洗入库量"):
        df[col] = df[col].astype("int64")
    for col in ("月份", "部门代码", "部门名称", "信息类别", "合规率", "及时率", "迟报率", "上报率", "上报率说明"):
        df[col] = df[col].astype(object)
    return df, dept_totals, grand, provisional


def build_export(data_dir: DataDir | str | Path, month: str, contracts: dict[str, Contract], registry: Registry,
                 as_of: date | None = None) -> pd.DataFrame:
    """The indicator table of ``month`` (YYYY-MM) with 上报率 as of ``as_of`` (default: the last
    received day in the warehouse); see the module docstring. Raises ``ExportRefused`` as
    ``resolve_as_of`` says."""
    data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    _check_month(month)
    with connect(data_dir, read_only=True) as con:
        as_of = resolve_as_of(con, month, contracts, as_of)
        df, *_ = _indicators(con, month, contracts, registry, as_of)
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
    rows.append(["指标口径", "归集量=接收行数（含重报）；清洗入库量=校验通过入库行数；合规率=通过÷接收；及时率=首次有效报送未超期记录÷入库记录（按首次接收月份归集）；迟报率=100%−及时率；上报率=决定日期在本月的报送记录数÷部门台账申报的本月决定数（记录按业务主键去重，按决定日期所在月份计，截至数据截止日已接收的均计入，重报、更正和重复行不重复计数；业务主键缺项无法识别的行计入归集量但不计为记录；未申报为空；超过100%照实显示并标注台账不符）；合计、全县合计、总计：各行计数相加后再求比率，上报率只计已申报台账的行（已申报台账的记录数之和÷申报数之和），与归集质量看板的全县上报率口径一致", "", ""])
    rows.append(["数据截止日", f"上报率按截至{as_of.isoformat()}已接收的记录计算" if as_of else "仓库中尚无接收数据", "", ""])
    return pd.DataFrame(rows, columns=["信息类别", "报送时限规则", "依据", "工作日历"])


def _d(v) -> str:
    return v.isoformat() if v is not None else ""


def _csv_bytes(df: pd.DataFrame) -> bytes:
    return df[COLUMNS].to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


RATE_COLUMNS = ("合规率", "及时率", "迟报率", "上报率")
LOWER_IS_BETTER = ("迟报率",)  # target 0 %; the other rates' target is 100 %
DATE_COLUMNS = ("决定日期", "报送期限", "首次接收日", "首次有效接收日", "接收日期")
FEED_TOTAL_NAME = "全县合计"


def _rank_key(row: dict) -> tuple:
    def r(v):
        return float(v) if v not in ("", None) else -1.0

    return (-r(row["及时率"]), -r(row["合规率"]), -r(row["上报率"]), -int(row["归集量"]))


def _main_rows(df: pd.DataFrame, dept_totals: dict[str, dict], grand: dict, registry: Registry, order: str) -> list[tuple[str, str, dict]]:
    """(number, kind, row) in print order: each department's feeds and its 合计, then the feed totals
    of the county and the grand total. kind: feed | dept | feed_total | grand."""
    feed_rows = df[df["部门代码"] != TOTAL_CODE].to_dict("records")
    by_dept: dict[str, list[dict]] = {}
    for r in feed_rows:
        by_dept.setdefault(r["部门代码"], []).append(r)
    depts = [d.code for d in registry.departments if d.code in dept_totals]
    numbers = {code: str(i) for i, code in enumerate(depts, start=1)}
    if order == "rank":
        depts.sort(key=lambda c: _rank_key(dept_totals[c]))
        numbers, prev, place = {}, None, 0
        for i, code in enumerate(depts, start=1):
            key = _rank_key(dept_totals[code])
            place = place if key == prev else i  # ties share a place (1, 2, 2, 4)
            numbers[code], prev = str(place), key
    out: list[tuple[str, str, dict]] = []
    for code in depts:
        out += [(numbers[code], "feed", r) for r in by_dept.get(code, [])]
        out.append((numbers[code], "dept", dept_totals[code]))
    out += [("", "feed_total", {**r, "部门名称": FEED_TOTAL_NAME}) for r in df[df["部门代码"] == TOTAL_CODE].to_dict("records")]
    out.append(("", "grand", grand))
    return out


def _fraction(v) -> float | None:
    """"98.50" → 0.985: a rate as the number Excel's percent format shows as 98.50%."""
    if v is None or v == "" or (isinstance(v, float) and pd.isna(v)):
        return None
    return float(Decimal(str(v)) / 100)


def _below_target(col: str, v) -> bool:
    if v is None or v == "":
        return False
    return Decimal(str(v)) > 0 if col in LOWER_IS_BETTER else Decimal(str(v)) < 100


ROW_KINDS = {
    "feed": {}, "dept": {"bold": True, "bg_color": "#F2F2F2"},
    "feed_total": {"bold": True, "bg_color": "#FFF2CC"}, "grand": {"bold": True, "bg_color": "#FCE4D6", "top": 2},
}


def indicator_formats(wb) -> dict:
    """The indicator workbook's look, shared by the county's export and the province's league
    (``assets/province/report.py``): title block styles, header, and per row kind (``ROW_KINDS``)
    text, centred, integer, rate (0.00%) and off-target rate (red) cells."""
    add = wb.add_format
    base = {"border": 1, "valign": "vcenter", "font_size": 10}
    f: dict = {
        "title": add({"bold": True, "font_size": 16, "align": "center", "valign": "vcenter"}),
        "label": add({"bold": True, "font_size": 10, "align": "right"}),
        "info": add({"font_size": 10}),
        "info_date": add({"font_size": 10, "num_format": "yyyy-mm-dd", "align": "left"}),
        "info_month": add({"font_size": 10, "num_format": 'yyyy"年"m"月"', "align": "left"}),
        "note": add({"font_size": 9, "text_wrap": True, "valign": "top", "font_color": "#595959"}),
        "head": add({**base, "bold": True, "bg_color": "#DDEBF7", "align": "center", "text_wrap": True}),
    }
    for kind, extra in ROW_KINDS.items():
        f[(kind, "text")] = add({**base, **extra})
        f[(kind, "center")] = add({**base, **extra, "align": "center"})
        f[(kind, "int")] = add({**base, **extra, "num_format": "#,##0"})
        f[(kind, "rate")] = add({**base, **extra, "num_format": "0.00%"})
        f[(kind, "low")] = add({**base, **extra, "num_format": "0.00%", "font_color": "#C00000", "bg_color": "#FFC7CE", "bold": True})
    return f


def title_block(ws, f: dict, last_col: int, title: str, *, region: str, period, exported: date, issuer: str,
                note: str, period_label: str = "统计月份", note_height: float = 30) -> int:
    """Rows 0–3: title, 地区 / period / 导出日期 (dates typed as dates; ``period`` a datetime of the
    month's first day, or text for another range), 填报单位, the explanatory note. Returns the
    header row."""
    ws.set_row(0, 30)
    ws.merge_range(0, 0, 0, last_col, title, f["title"])
    ws.write_string(1, 0, "地区", f["label"])
    ws.merge_range(1, 1, 1, 2, region, f["info"])
    ws.write_string(1, 3, period_label, f["label"])
    if isinstance(period, datetime):
        ws.write_datetime(1, 4, period, f["info_month"])
    else:
        ws.write_string(1, 4, str(period), f["info"])
    ws.write_string(1, 5, "导出日期", f["label"])
    ws.write_datetime(1, 6, datetime(exported.year, exported.month, exported.day), f["info_date"])
    ws.write_string(2, 0, "填报单位", f["label"])
    ws.merge_range(2, 1, 2, last_col, issuer, f["info"])
    ws.set_row(3, note_height)
    ws.merge_range(3, 0, 3, last_col, note, f["note"])
    return 4


def write_header(ws, f: dict, header_row: int, headers: list[str], widths: list[float]) -> None:
    ws.set_row(header_row, 30)
    for c, h in enumerate(headers):
        ws.write_string(header_row, c, h, f["head"])
    for c, w in enumerate(widths):
        ws.set_column(c, c, w)


def write_rate(ws, f: dict, r: int, c: int, kind: str, col: str, value) -> None:
    """A rate given as percent text ("98.50") written as the number 0.985 in percent format,
    red when off target (``_below_target``), blank when there is none."""
    v = _fraction(value)
    style = f[(kind, "low" if _below_target(col, value) else "rate")]
    if v is None:
        ws.write_blank(r, c, None, style)
    else:
        ws.write_number(r, c, v, style)


def _indicator_sheet(wb, month: str, rows: list[tuple[str, str, dict]], registry: Registry, order: str,
                     exported: date, provisional: bool) -> None:
    ws = wb.add_worksheet(SHEET_INDICATORS)
    fmt = indicator_formats(wb)
    headers = ["名次" if order == "rank" else "序号"] + COLUMNS[1:] + [NOTE_COLUMN]
    last_col = len(headers) - 1
    y, m = int(month[:4]), int(month[5:7])
    ordering = "按市里规定的部门顺序排列" if order == "city" else "按部门合计的及时率、合规率、上报率排名"
    header_row = title_block(
        ws, fmt, last_col, f"{registry.region}公共信用信息归集监测指标（{y}年{m}月）",
        region=f"{registry.region}（{registry.region_code}）", period=datetime(y, m, 1), exported=exported,
        issuer=registry.issuer, note=(
            "说明：合规率、及时率、上报率目标为100%，迟报率目标为0%，未达目标的比率标红；比率为百分比，空白表示无可计算的记录"
            f"（上报率：部门未申报台账数）；{ordering}；“合计”为部门各类信息之和，“全县合计”为各部门之和，"
            "合计行的比率按所含各行的分子之和÷分母之和计算，上报率只计已申报台账的行（见上报率说明）。"
            + ("部分年份无国务院节假日安排，及时率按周一至周五暂定计算。" if provisional else "")))
    write_header(ws, fmt, header_row, headers, [6, 10, 30, 14, 10, 11, 10, 10, 10, 10, 26])
    names = [text_width(r["部门名称"]) for _, _, r in rows]
    ws.set_column(2, 2, min(max(names + [20]) + 2, 40))
    r = header_row
    for number, kind, row in rows:
        r += 1
        ws.write_string(r, 0, number, fmt[(kind, "center")])
        ws.write_string(r, 1, "" if kind in ("feed_total", "grand") else str(row["部门代码"]), fmt[(kind, "text")])
        ws.write_string(r, 2, str(row["部门名称"]), fmt[(kind, "text")])
        ws.write_string(r, 3, str(row["信息类别"]), fmt[(kind, "text")])
        ws.write_number(r, 4, int(row["归集量"]), fmt[(kind, "int")])
        ws.write_number(r, 5, int(row["清洗入库量"]), fmt[(kind, "int")])
        for c, col in enumerate(RATE_COLUMNS, start=6):
            write_rate(ws, fmt, r, c, kind, col, row[col])
        ws.write_string(r, len(COLUMNS), str(row.get(NOTE_COLUMN) or ""), fmt[(kind, "text")])
    ws.freeze_panes(header_row + 1, 3)
    print_setup(ws, header_row)
    ws.repeat_rows(0, header_row)  # title block and header on every printed page


def print_setup(ws, header_row: int) -> None:
    """A4 landscape, one page wide (as many pages tall as needed), header repeated, page numbers."""
    ws.set_paper(9)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.center_horizontally()
    ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    ws.repeat_rows(header_row)
    ws.set_footer("&C第 &P 页，共 &N 页")


def table_sheet(wb, title: str, df: pd.DataFrame) -> None:
    """A plain table (late records, open items, notes): typed dates, readable widths, printable."""
    ws = wb.add_worksheet(title)
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "vcenter"})
    text = wb.add_format({"valign": "top", "text_wrap": True, "font_size": 10})
    day = wb.add_format({"valign": "top", "num_format": "yyyy-mm-dd", "font_size": 10})
    rate = wb.add_format({"valign": "top", "num_format": "0.00", "font_size": 10})
    cols = list(df.columns)
    for c, h in enumerate(cols):
        ws.write_string(0, c, str(h), head)
    for c, col in enumerate(cols):
        sample = [text_width(str(v)) for v in df.iloc[:500, c].tolist() if v not in (None, "")]
        width = max([text_width(col)] + sample) + 2
        ws.set_column(c, c, min(width, 60))
    for r, row in enumerate(df.itertuples(index=False), start=1):
        for c, (col, v) in enumerate(zip(cols, row)):
            if v is None or (isinstance(v, float) and pd.isna(v)) or v == "":
                continue
            if col in DATE_COLUMNS and isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
                d = date.fromisoformat(v)
                ws.write_datetime(r, c, datetime(d.year, d.month, d.day), day)
            elif col in RATE_COLUMNS:
                ws.write_number(r, c, float(v), rate)
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                ws.write_number(r, c, v.item() if hasattr(v, "item") else v, text)
            else:
                ws.write_string(r, c, str(v), text)
    ws.freeze_panes(1, 0)
    if len(df):
        ws.autofilter(0, 0, len(df), len(cols) - 1)
    print_setup(ws, 0)


def _xlsx_bytes(month: str, df: pd.DataFrame, totals: tuple[dict, dict], extra: list[tuple[str, pd.DataFrame]],
                registry: Registry, order: str, exported: date, provisional: bool) -> bytes:
    rows = _main_rows(df, totals[0], totals[1], registry, order)

    def build(wb):
        _indicator_sheet(wb, month, rows, registry, order, exported, provisional)
        for title, sheet in extra:
            table_sheet(wb, title, sheet)

    return xlsxwriter_bytes(build)


def export_file_name(month: str, fmt: str) -> str:
    """``indicators_<YYYY-MM>.<xlsx|csv>``: the default file under reports/exports."""
    return f"indicators_{month}.{fmt}"


def write_export(
    data_dir: DataDir | str | Path,
    month: str,
    fmt: str = "xlsx",
    out: str | Path | None = None,
    *,
    contracts: dict[str, Contract] | None = None,
    registry: Registry | None = None,
    as_of: date | None = None,
    order: str | None = None,
    exported: date | None = None,
) -> Path:
    """Write the month's export (CSV with BOM, or XLSX with the extra sheets); return its path.

    XLSX only: ``order`` "city" (the registry's order) or "rank" (default: the registry's
    ``indicator_order``); ``exported`` is the export date in the title block (default today).
    """
    from contracts.loader import load_contracts, load_registry

    data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
    _check_month(month)
    if fmt not in ("xlsx", "csv"):
        raise ValueError(f"导出格式只能是 xlsx 或 csv / fmt must be xlsx or csv: {fmt!r}")
    contracts = contracts or load_contracts()
    registry = registry or load_registry(contracts=contracts)
    target = Path(out) if out else data_dir.exports / export_file_name(month, fmt)
    with connect(data_dir, read_only=True) as con:
        as_of = resolve_as_of(con, month, contracts, as_of)  # refused before anything is written
        df, dept_totals, grand, provisional = _indicators(con, month, contracts, registry, as_of)
        df = df.map(scrub)
        if fmt == "csv":
            data = _csv_bytes(df)
        else:
            order = order or registry.indicator_order
            if order not in ("city", "rank"):
                raise ValueError(f"排序只能是 city 或 rank / order must be city or rank: {order!r}")
            scrub_row = lambda r: {k: scrub(v) for k, v in r.items()}  # noqa: E731
            data = _xlsx_bytes(
                month, df, ({k: scrub_row(v) for k, v in dept_totals.items()}, scrub_row(grand)),
                [
                    (SHEET_LATE, _late_records(con, month, contracts, registry)),
                    (SHEET_OPEN, _open_items(con, month, contracts, registry)),
                    (SHEET_NOTES, _notes(contracts, provisional, as_of)),
                ],
                registry, order, exported or date.today(), any(provisional.values()),
            )
    return write_bytes(data, target, private=False)
