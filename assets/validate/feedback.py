"""Feedback workbooks: after each run, one XLSX per department with its rejected rows.

``reports/feedback/<dept>/<YYYY-MM-DD>.xlsx``: a 汇总 sheet, then one sheet per feed with the
values as received (staged values), the original file name and row number, and every reason
(rule id + Chinese message; errors and warnings of that row). The reasons never contain values, so
no full ID number of a natural person appears in them.

Safety: a cell whose text begins with ``= + - @``, a tab or a carriage return is stored as a
*string* cell with Excel's quote prefix, so Excel shows it as text and never evaluates it.
Determinism: saved through `warehouse.files.workbook_bytes`, so a rerun writes the same bytes.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Mapping

import pandas as pd
import pyarrow.parquet as pq
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill

from contracts import Contract, Registry
from warehouse.files import workbook_bytes, write_bytes
from warehouse.layout import DataDir

DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
SEVERITY_ZH = {"error": "错误", "warning": "提示"}


def _day(received: date | str) -> date:
    return received if isinstance(received, date) else date.fromisoformat(received)


def safe_cell(ws, row: int, col: int, value) -> None:
    """Write ``value`` so that Excel never treats it as a formula."""
    if value is None or (isinstance(value, float) and value != value):
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        value = str(value)
    cell = ws.cell(row=row, column=col)
    cell.value = value
    if isinstance(value, str) and value.startswith(DANGEROUS_START):
        cell.data_type = "s"  # openpyxl would otherwise store "=..." as a formula
        cell.quotePrefix = True  # Excel keeps it text even when the clerk edits the cell


def _read(path: Path) -> pd.DataFrame | None:
    return pq.read_table(path).to_pandas() if path.exists() else None


def _reasons(failures: pd.DataFrame) -> dict[tuple[str, int], str]:
    out: dict[tuple[str, int], list[str]] = {}
    for fid, row_no, rule_id, sev, msg in failures[["_file_id", "_row_no", "rule_id", "severity", "message"]].itertuples(index=False):
        out.setdefault((fid, int(row_no)), []).append(f"[{SEVERITY_ZH.get(sev, sev)}] {rule_id}：{msg}")
    return {k: "\n".join(v) for k, v in out.items()}


def write_feedback(data_dir: str | Path, received: date | str, contracts: Mapping[str, Contract],
                   registry: Registry | None = None) -> list[Path]:
    """Write one workbook per department that had rejected rows on ``received``; return the paths."""
    layout = DataDir(data_dir)
    day = _day(received)
    per_dept: dict[str, list[tuple[Contract, pd.DataFrame, dict]]] = {}
    for feed, contract in contracts.items():
        folder = layout.validated_dir(feed, day)
        quarantined = _read(folder / "quarantined.parquet")
        failures = _read(folder / "failures.parquet")
        if quarantined is None or quarantined.empty:
            continue
        reasons = _reasons(failures) if failures is not None else {}
        for dept, rows in quarantined.groupby("_dept", sort=True):
            per_dept.setdefault(str(dept), []).append((contract, rows.sort_values(["_source_name", "_row_no"]), reasons))

    names = {d.code: d.name for d in registry.departments} if registry else {}
    written: list[Path] = []
    for dept in sorted(per_dept):
        wb = Workbook()
        summary = wb.active
        summary.title = "汇总"
        dept_name = names.get(dept, dept)
        safe_cell(summary, 1, 1, f"{dept_name} {day.isoformat()} 报送数据校验未通过记录")
        summary.cell(1, 1).font = Font(bold=True, size=13)
        safe_cell(summary, 2, 1, "以下记录未通过校验，未入库。请按“问题说明”逐条修改后重新报送。")
        for c, h in enumerate(["信息类别", "工作表", "未通过行数", "涉及文件"], 1):
            safe_cell(summary, 4, c, h)
            summary.cell(4, c).font = Font(bold=True)
            summary.cell(4, c).fill = HEADER_FILL
        r = 5
        for contract, rows, reasons in per_dept[dept]:
            sheet = wb.create_sheet(contract.title[:31])
            headers = ["原文件名", "原行号", "问题说明（规则编号：说明）"] + [f.label for f in contract.fields]
            for c, h in enumerate(headers, 1):
                safe_cell(sheet, 1, c, h)
                sheet.cell(1, c).font = Font(bold=True)
                sheet.cell(1, c).fill = HEADER_FILL
            sheet.freeze_panes = "D2"
            sheet.column_dimensions["A"].width = 28
            sheet.column_dimensions["C"].width = 60
            for i, rec in enumerate(rows.to_dict("records"), start=2):
                safe_cell(sheet, i, 1, rec.get("_source_name"))
                safe_cell(sheet, i, 2, int(rec["_row_no"]))
                safe_cell(sheet, i, 3, reasons.get((rec["_file_id"], int(rec["_row_no"])), ""))
                sheet.cell(i, 3).alignment = Alignment(wrap_text=True, vertical="top")
                for c, f in enumerate(contract.fields, start=4):
                    v = rec.get(f.name)
                    safe_cell(sheet, i, c, None if v is None or (isinstance(v, float) and v != v) else str(v))
            files = "、".join(sorted({str(s) for s in rows["_source_name"].dropna()}))
            for c, v in enumerate([contract.title, sheet.title, len(rows), files], 1):
                safe_cell(summary, r, c, v)
            r += 1
        summary.column_dimensions["A"].width = 16
        summary.column_dimensions["D"].width = 60
        target = layout.feedback_file(dept, day)
        write_bytes(workbook_bytes(wb), target)
        written.append(target)
    return written

