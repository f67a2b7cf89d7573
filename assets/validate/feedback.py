"""Feedback workbooks: after each night, one XLSX per department with its rejected rows.

``reports/feedback/<dept>/<部门名称>_<YYYY-MM-DD>_校验反馈.xlsx`` (the department's Chinese name is in
the file name, so the file still says whose it is once mailed on):

- 汇总: the received day, rejected rows and problems per feed, the date by which corrected rows
  are due, and the problems counted by reason (field, reason, rule id, rows), with totals.
- one sheet per feed: per rejected row the original file name and row number, every reason in
  Chinese with the offending value as received (one numbered line each, wrapped), the rule ids in
  their own column, then the row's values as received with each offending cell filled red.

Values *as received*: staged rows hold normalised values (ＧＤ５００… becomes GD500…); ingest keeps
the cells that normalisation changed in a sidecar (``assets.ingest.read_raw_values``), read here
for the rejected rows only, so the clerk sees exactly what was sent without re-reading the landed
files. Privacy: every value goes through ``warehouse.masking.mask_field_value`` (the one policy:
personal fields masked, first 6 + last 4 for ID numbers; free text scrubbed), file names through
``scrub_text``; no full resident ID number appears anywhere in a workbook.

Due date for corrections: the contract's deadline rule counted from the received day (the night
the rows were rejected), on the working-day calendar passed in by the caller (the publish asset
passes the measure stage's calendar; the validate stage does not import later stages). A feed
without a deadline says 尽快.

Speed (a big night rejects ~86,000 rows × 38 columns): XlsxWriter writes the summary, the header
rows, widths, styles and print setup; the data rows are built as SpreadsheetML column by column
with pyarrow string kernels (``warehouse.files.string_cells``/``rows_xml``) and put into the sheet,
because per-cell Python was what cost a minute. 48,000 rejected rows: 64 s with the former openpyxl
writer, 7.7 s now (busy 2-core machine). Fixed document time and ZIP dates: a rerun writes the
same bytes. A cell whose text begins with ``= + - @``, a tab or a carriage return is a string
cell with Excel's quote prefix: shown as text, never evaluated.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field as dc_field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from contracts import Contract, Registry
from warehouse.files import (
    column_letter,
    fill_sheet_rows,
    number_cells,
    rows_xml,
    string_cells,
    text_width,
    write_bytes,
    xlsxwriter_bytes,
)
from warehouse.layout import DataDir
from warehouse.masking import SCRUB_CANDIDATE, mask_field_value, scrub_text

DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
DANGEROUS_FIRST = pa.array(DANGEROUS_START)
SEVERITY_ZH = {"error": "错误", "warning": "提示"}
LEAD_COLUMNS = ["原文件名", "原行号", "问题说明（逐条，含收到的值）", "规则编号"]
REASON_WIDTH = 56  # characters of the wrapped reason column
MAX_WIDTH = 40
HEADER_BG, BAD_BG, BAD_FONT = "#DDEBF7", "#FFC7CE", "#9C0006"


def _day(received: date | str) -> date:
    return received if isinstance(received, date) else date.fromisoformat(received)


def _lines(text: str, width: int) -> int:
    return sum(max(1, math.ceil(text_width(part) / max(width - 1, 1))) for part in text.split("\n"))


def _isnull(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v) or v is pd.NA


@dataclass
class _FeedPart:
    contract: Contract
    rows: pa.Table  # the department's quarantined rows, values as received and masked
    reasons: list[str]
    rule_ids: list[str]
    bad: dict[str, np.ndarray]  # per field: rows whose cell is highlighted
    counts: Counter = dc_field(default_factory=Counter)  # (field, rule_id, severity, message) -> failures
    row_counts: Counter = dc_field(default_factory=Counter)  # same key -> rows
    problems: int = 0




def _map_values(arr: pa.Array, fn, where: pa.Array | None = None) -> pa.Array:
    """``fn`` over the distinct values of ``arr`` (only where ``where`` holds), nulls kept."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if where is not None:
        where = pc.fill_null(where, False)
        if not pc.any(where).as_py():
            return arr
        sub = _map_values(pc.filter(arr, where), fn)
        return pc.replace_with_mask(arr, where, sub)
    enc = pc.dictionary_encode(arr)
    mapped = pa.array([None if v is None else fn(v) for v in enc.dictionary.to_pylist()], pa.string())
    return pc.take(mapped, enc.indices)


def _as_received(contract: Contract, quarantined: pa.Table, raw: pd.DataFrame) -> pa.Table:
    """Quarantined rows with the changed cells put back as received, then shown per the one
    masking policy (``mask_field_value``: personal fields masked, other text scrubbed)."""
    for name in contract.field_names + ["_file_id", "_dept", "_source_name"]:  # one string type for the kernels
        i = quarantined.schema.get_field_index(name)
        col = quarantined.column(i).cast(pa.string()) if i >= 0 else pa.nulls(quarantined.num_rows, pa.string())
        quarantined = (quarantined.set_column(i, name, col) if i >= 0 else quarantined.append_column(name, col))
    cols = {name: quarantined.column(name).combine_chunks() for name in contract.field_names}
    raw = raw[raw["field"].isin(set(contract.field_names))] if len(raw) else raw
    if len(raw):
        key = pd.DataFrame({"_file_id": quarantined.column("_file_id").to_numpy(zero_copy_only=False),
                            "_row_no": quarantined.column("_row_no").to_numpy(zero_copy_only=False).astype(np.int64),
                            "_pos": np.arange(quarantined.num_rows)})
        hits = raw.astype({"_row_no": np.int64}).merge(key, on=["_file_id", "_row_no"], how="inner")
        for name, grp in hits.groupby("field", sort=False):
            values = cols[name].to_numpy(zero_copy_only=False).astype(object)
            values[grp["_pos"].to_numpy(dtype=np.int64)] = grp["raw"].to_numpy(dtype=object)
            cols[name] = pa.array(values, pa.string(), from_pandas=True)
    for f in contract.fields:
        if f.privacy == "personal":
            cols[f.name] = _map_values(cols[f.name], lambda v, f=f: mask_field_value(v, f))
        else:  # only values that can hold a number scrub_text masks are looked at (same result, cheaper)
            arr = cols[f.name]
            cols[f.name] = _map_values(arr, lambda v, f=f: mask_field_value(v, f),
                                       pc.match_substring_regex(arr, SCRUB_CANDIDATE))
    out = quarantined
    for name, arr in cols.items():
        out = out.set_column(out.schema.get_field_index(name), name, arr.cast(pa.string()))
    return out


def _reason_lines(failures: pd.DataFrame, rows: pa.Table, contract: Contract) -> tuple[list[str], list[str], dict[str, np.ndarray], Counter, Counter, int]:
    """Per row (in ``rows`` order): numbered reasons with the value shown, rule ids, bad cells;
    and the tallies by reason. Vectorised: a night can reject a hundred thousand rows."""
    n = rows.num_rows
    labels = {f.name: f.label for f in contract.fields}
    key = pd.DataFrame({"_file_id": rows.column("_file_id").to_numpy(zero_copy_only=False).astype(object),
                        "_row_no": rows.column("_row_no").to_numpy(zero_copy_only=False).astype(np.int64),
                        "_pos": np.arange(n)})
    f = failures.merge(key, on=["_file_id", "_row_no"], how="inner", sort=False)  # drops warnings of passed rows
    f = f.sort_values("_pos", kind="stable").reset_index(drop=True)  # rule order kept within a row
    pos = f["_pos"].to_numpy(dtype=np.int64)
    fields = f["field"].to_numpy(dtype=object)
    values = np.full(len(f), None, dtype=object)
    bad: dict[str, np.ndarray] = {}
    for name in contract.field_names:
        sel = fields == name
        if sel.any():
            values[sel] = pc.take(rows.column(name), pa.array(pos[sel])).to_numpy(zero_copy_only=False)
            bad[name] = np.zeros(n, dtype=bool)
            bad[name][pos[sel]] = True
    number = f.groupby("_pos", sort=False).cumcount().to_numpy() + 1
    known = np.isin(fields, list(labels))
    value_arr = pa.array(values, pa.string(), from_pandas=True)
    has_value = pc.fill_null(pc.greater(pc.utf8_length(value_arr), 0), False)
    suffix = pc.if_else(
        has_value,
        pc.binary_join_element_wise("；收到的值：「", pc.fill_null(value_arr, ""), "」", ""),
        pc.if_else(pa.array(known), "；收到的值：（空）", ""),
    )
    lines = pc.binary_join_element_wise(
        pa.array(number.astype(str).astype(object), pa.string()), ". ",
        pc.if_else(pa.array(f["severity"].to_numpy(dtype=object) == "error"), "", "（提示）"),
        pa.array(f["message"].to_numpy(dtype=object), pa.string()), suffix, "").to_numpy(zero_copy_only=False)
    rule_ids = f["rule_id"].to_numpy(dtype=object)
    reasons = [""] * n
    ids = [""] * n
    if len(f):
        starts = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1]])
        ends = np.r_[starts[1:], len(pos)]
        for a, b in zip(starts.tolist(), ends.tolist()):
            i = pos[a]
            reasons[i] = "\n".join(lines[a:b])
            ids[i] = "\n".join(rule_ids[a:b])
    f["_label"] = [labels.get(x, x or "") for x in fields]
    grouped = f.groupby(["_label", "rule_id", "severity", "message"], sort=False)["_pos"].agg(["size", "nunique"])
    counts = Counter({k: int(v) for k, v in grouped["size"].items()})
    row_counts = Counter({k: int(v) for k, v in grouped["nunique"].items()})
    return reasons, ids, bad, counts, row_counts, len(f)


FAILURE_READ = ["_file_id", "_row_no", "_dept", "rule_id", "field", "severity", "message"]


def _failures(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame({c: pd.Series([], dtype=np.int64 if c == "_row_no" else object) for c in FAILURE_READ})
    t = pq.read_table(path, columns=FAILURE_READ)
    out = pd.DataFrame({c: t.column(c).to_numpy(zero_copy_only=False).astype(object) for c in FAILURE_READ if c != "_row_no"})
    out["_row_no"] = pc.fill_null(t.column("_row_no"), -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return out


def _collect(layout: DataDir, day: date, contracts: Mapping[str, Contract]) -> dict[str, list[_FeedPart]]:
    from assets.ingest import read_raw_values  # public API of the ingest stage

    per_dept: dict[str, list[_FeedPart]] = {}
    for feed, contract in contracts.items():
        folder = layout.validated_dir(feed, day)
        path = folder / "quarantined.parquet"
        if not path.exists():
            continue
        quarantined = pq.read_table(path)
        if quarantined.num_rows == 0:
            continue
        failures = _failures(folder / "failures.parquet")
        wanted: dict[str, list[int]] = {}
        for fid, row_no in zip(quarantined.column("_file_id").to_pylist(), quarantined.column("_row_no").to_pylist()):
            if fid is not None and row_no is not None:
                wanted.setdefault(fid, []).append(int(row_no))
        raw = read_raw_values(layout, feed, day, wanted, rows=wanted)
        shown = _as_received(contract, quarantined, raw)
        for dept in sorted(pc.unique(shown.column("_dept").drop_null()).to_pylist()):
            rows = shown.filter(pc.equal(shown.column("_dept"), dept))
            rows = rows.sort_by([("_source_name", "ascending"), ("_row_no", "ascending")])
            mine = failures[failures["_dept"] == dept]
            reasons, ids, bad, counts, row_counts, problems = _reason_lines(mine, rows, contract)
            per_dept.setdefault(str(dept), []).append(
                _FeedPart(contract, rows, reasons, ids, bad, counts, row_counts, problems))
    return per_dept


def due_date(contract: Contract, day: date, calendar: Any | None) -> str:
    """When corrected rows are due: the contract's deadline rule counted from the received day."""
    rule = contract.deadline
    if rule is None:
        return "尽快"
    if rule.kind == "calendar":
        return (day + timedelta(days=rule.days)).isoformat()
    if calendar is None:
        return f"接收日后{rule.days}个工作日内"
    due, provisional = calendar.deadline(day, rule)
    return due.isoformat() + ("（暂按周一至周五计算）" if provisional else "")


class _Styles:
    def __init__(self, wb):
        add = wb.add_format
        self.title = add({"bold": True, "font_size": 14})
        self.note = add({"text_wrap": True, "valign": "top"})
        self.head = add({"bold": True, "bg_color": HEADER_BG, "border": 1, "text_wrap": True, "valign": "vcenter", "align": "center"})
        self.cell = add({"valign": "top", "text_wrap": True})
        self.quote = add({"valign": "top", "text_wrap": True, "quote_prefix": True})
        self.bad = add({"valign": "top", "text_wrap": True, "bg_color": BAD_BG, "font_color": BAD_FONT, "bold": True})
        self.bad_quote = add({"valign": "top", "text_wrap": True, "bg_color": BAD_BG, "font_color": BAD_FONT,
                              "bold": True, "quote_prefix": True})
        self.reason = add({"valign": "top", "text_wrap": True, "font_color": BAD_FONT})
        self.key = add({"bold": True, "valign": "top"})
        self.total = add({"bold": True, "top": 1})
        self.number = add({"valign": "top"})

    @staticmethod
    def xf(fmt) -> int:
        """The format's cell-style index, fixed now so pre-built rows can refer to it (XlsxWriter
        assigns indices in first-use order; a format used only in pre-built rows needs this)."""
        return fmt._get_xf_index()


def _put(ws, r: int, c: int, value, st: _Styles, bad: bool = False, fmt=None) -> None:
    """Write one cell as text (numbers stay numbers); never a formula."""
    if _isnull(value):
        if bad:
            ws.write_blank(r, c, None, st.bad)
        return
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        ws.write_number(r, c, float(value), fmt or st.number)
        return
    text = str(value)
    dangerous = text.startswith(DANGEROUS_START)
    if fmt is None:
        fmt = (st.bad_quote if dangerous else st.bad) if bad else (st.quote if dangerous else st.cell)
    ws.write_string(r, c, text, fmt)


def _feed_sheet(wb, st: _Styles, part: _FeedPart, name: str) -> None:
    """The sheet's frame (widths, header, print setup); its data rows come from :func:`_feed_rows`."""
    ws = wb.add_worksheet(name)
    fields = part.contract.fields
    rows = part.rows
    n = rows.num_rows
    headers = LEAD_COLUMNS + [f.label + ("（扩展）" if f.extension else "") for f in fields]
    # widths from the header and a sample of values (CJK counts double)
    widths = [24, 8, REASON_WIDTH, 22]
    sample = rows.slice(0, 300)
    src_w = [text_width(str(scrub_text(v))) for v in sample.column("_source_name").to_pylist() if v is not None]
    widths[0] = min(max([text_width(LEAD_COLUMNS[0])] + src_w) + 2, MAX_WIDTH)
    for f in fields:
        vals = [text_width(v) for v in sample.column(f.name).to_pylist() if v is not None]
        longest = int(np.percentile(vals, 90)) if vals else 0
        widths.append(max(min(max(longest, text_width(f.label) // 2 + 2) + 2, MAX_WIDTH), 10))
    for c, w in enumerate(widths):
        ws.set_column(c, c, w)
    ws.set_row(0, 36)
    for c, h in enumerate(headers):
        ws.write_string(0, c, h, st.head)
    ws.freeze_panes(1, 3)
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.repeat_rows(0)
    ws.repeat_columns(0, 1)  # 38 columns do not fit a page legibly: each printed page names file and row
    ws.autofilter(0, 0, max(n, 1), len(headers) - 1)


def _display_width(arr: pa.Array) -> np.ndarray:
    """Approximate display width per string: CJK characters (3 UTF-8 bytes) count two."""
    chars = pc.fill_null(pc.utf8_length(arr), 0).to_numpy(zero_copy_only=False)
    nbytes = pc.fill_null(pc.binary_length(arr), 0).to_numpy(zero_copy_only=False)
    return chars + (nbytes - chars) // 2


ROW_BATCH = 20_000  # rows built at a time: bounds memory and keeps string arrays small


def _feed_rows(part: _FeedPart, st: _Styles) -> tuple[bytes, str]:
    """The data rows of a feed sheet as SpreadsheetML, built column by column with pyarrow."""
    n = part.rows.num_rows
    out = [_feed_rows_batch(part, st, lo, min(lo + ROW_BATCH, n)) for lo in range(0, n, ROW_BATCH)]
    return b"".join(out), f"{column_letter(3 + len(part.contract.fields))}{n + 1}"


def _feed_rows_batch(part: _FeedPart, st: _Styles, lo: int, hi: int) -> bytes:
    rows = part.rows.slice(lo, hi - lo)
    row_no = pa.array(np.arange(lo + 2, hi + 2, dtype=np.int64)).cast(pa.string())
    reasons = pa.array(part.reasons[lo:hi], pa.string())
    rule_ids = pa.array(part.rule_ids[lo:hi], pa.string())
    lines = pc.add(pc.count_substring(reasons, "\n"), 1).to_numpy(zero_copy_only=False)
    wrapped = lines + _display_width(reasons) // REASON_WIDTH
    heights = pa.array(15 * np.maximum(wrapped, 1) + 3, pa.int64())
    sources = _map_values(rows.column("_source_name"), lambda v: str(scrub_text(v)))
    cells = [
        string_cells(sources, "A", row_no, st.xf(st.cell)),
        number_cells(rows.column("_row_no"), "B", row_no, st.xf(st.number)),
        string_cells(reasons, "C", row_no, st.xf(st.reason)),
        string_cells(rule_ids, "D", row_no, st.xf(st.cell)),
    ]
    plain, quote = st.xf(st.cell), st.xf(st.quote)
    bad_xf, bad_quote = st.xf(st.bad), st.xf(st.bad_quote)
    for j, f in enumerate(part.contract.fields):
        values = rows.column(f.name).combine_chunks()
        dangerous = pc.fill_null(pc.is_in(pc.utf8_slice_codeunits(values, 0, 1), DANGEROUS_FIRST), False).to_numpy(
            zero_copy_only=False)
        bad = part.bad.get(f.name)
        if bad is None:
            style = pa.array(np.where(dangerous, quote, plain))
            blank = None
        else:
            bad = bad[lo:hi]
            style = pa.array(np.where(bad, np.where(dangerous, bad_quote, bad_xf), np.where(dangerous, quote, plain)))
            blank = pc.if_else(pa.array(bad), pa.scalar(str(bad_xf)), pa.scalar(None, pa.string()))
        cells.append(string_cells(values, column_letter(4 + j), row_no, style, blank))
    return rows_xml(cells, row_no, heights)


def _summary_sheet(wb, st: _Styles, dept_name: str, day: date, parts: list[tuple[_FeedPart, str]], calendar) -> None:
    ws = wb.add_worksheet("汇总")
    ws.set_column(0, 0, 22)
    ws.set_column(1, 1, 24)
    ws.set_column(2, 2, 60)
    ws.set_column(3, 3, 24)
    ws.set_column(4, 5, 12)
    ws.set_column(6, 6, 30)
    ws.set_landscape()
    ws.set_paper(9)
    ws.fit_to_pages(1, 0)
    total_rows = sum(p.rows.num_rows for p, _ in parts)
    total_problems = sum(p.problems for p, _ in parts)
    ws.write_string(0, 0, f"{dept_name} {day.isoformat()} 报送数据校验反馈", st.title)
    ws.set_row(1, 48)
    ws.merge_range(1, 0, 1, 6, (
        f"以下 {total_rows} 行记录未通过校验，未入库（共 {total_problems} 个问题）。请按各工作表“问题说明”逐条修改"
        "（标红的单元格为出错的值，按收到时的原样显示，个人证件号码已遮蔽），并在“更正后报送期限”前重新报送更正后的记录。"),
        st.note)
    r = 3
    head = ["信息类别", "工作表", "涉及文件", "更正后报送期限", "未通过行数", "问题数", "报送时限规则"]
    for c, h in enumerate(head):
        ws.write_string(r, c, h, st.head)
    for part, sheet in parts:
        r += 1
        c = part.contract
        files = "、".join(sorted({str(scrub_text(s)) for s in pc.unique(part.rows.column("_source_name").drop_null()).to_pylist()}))
        rule = (f"{c.deadline.days}个{'工作日' if c.deadline.kind == 'working' else '自然日'}（自接收日起算）"
                if c.deadline else "未规定")
        for col, v in enumerate([c.title, sheet, files, due_date(c, day, calendar), part.rows.num_rows, part.problems, rule]):
            _put(ws, r, col, v, st)
    r += 1
    ws.write_string(r, 0, "合计", st.total)
    for col in (1, 2, 3, 6):
        ws.write_blank(r, col, None, st.total)
    ws.write_number(r, 4, total_rows, st.total)
    ws.write_number(r, 5, total_problems, st.total)

    r += 2
    ws.write_string(r, 0, "问题分类统计", st.key)
    r += 1
    for c, h in enumerate(["信息类别", "字段", "问题说明", "规则编号", "类型", "问题数", "涉及行数"]):
        ws.write_string(r, c, h, st.head)
    for part, _ in parts:
        for key, n in sorted(part.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            label, rule_id, sev, msg = key
            r += 1
            for col, v in enumerate([part.contract.title, label, msg, rule_id, SEVERITY_ZH.get(sev, sev), n,
                                     part.row_counts[key]]):
                _put(ws, r, col, v, st)
            ws.set_row(r, 15 * _lines(msg, 60) + 3)
    r += 1
    ws.write_string(r, 0, "合计", st.total)
    for col in (1, 2, 3, 4, 6):
        ws.write_blank(r, col, None, st.total)
    ws.write_number(r, 5, total_problems, st.total)
    ws.activate()


def _sheet_names(parts: list[_FeedPart]) -> list[str]:
    names, used = [], {"汇总"}
    for p in parts:
        base = p.contract.title[:31]
        name, k = base, 2
        while name in used:
            name, k = f"{base[:28]}({k})", k + 1
        used.add(name)
        names.append(name)
    return names


def write_feedback(data_dir: str | Path, received: date | str, contracts: Mapping[str, Contract],
                   registry: Registry | None = None, calendar: Any | None = None) -> list[Path]:
    """Write one workbook per department that had rejected rows on ``received``; return the paths.

    ``calendar``: anything with ``deadline(day, rule) -> (date, provisional)`` (the measure stage's
    ``WorkCalendar``) for the due date of working-day rules; without it the rule is described.
    """
    layout = DataDir(data_dir)
    day = _day(received)
    per_dept = _collect(layout, day, contracts)
    names = {d.code: d.name for d in registry.departments} if registry else {}
    written: list[Path] = []
    for dept in sorted(per_dept):
        parts = per_dept[dept]
        sheets = _sheet_names(parts)
        dept_name = names.get(dept, dept)

        built: dict[int, bytes] = {}
        last: dict[int, str] = {}

        def build(wb, parts=parts, sheets=sheets, dept_name=dept_name):
            st = _Styles(wb)
            _summary_sheet(wb, st, dept_name, day, list(zip(parts, sheets)), calendar)
            for no, (part, sheet) in enumerate(zip(parts, sheets), start=2):  # 汇总 is sheet 1
                _feed_sheet(wb, st, part, sheet)
                built[no], last[no] = _feed_rows(part, st)

        target = layout.feedback_file(dept, day, names.get(dept))
        write_bytes(fill_sheet_rows(xlsxwriter_bytes(build), built, last), target, private=False)  # masked
        written.append(target)
    return written
