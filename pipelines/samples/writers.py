"""Render canonical sample rows the way departments really send them.

Real files differ from the catalog in ways ingest must undo, so the writers add exactly those
differences and nothing that changes a value's meaning: several date spellings (and real date
cells in XLSX), enum aliases (“1” for 有效, 个体户), lower-case x in ID numbers, full-width
characters and stray spaces in codes, old (v1) or code headers, title rows above the header,
extra unknown columns, legacy encodings, amounts marked with another unit ("5000元" in a 万元
column), local status codes from the contract's code tables. Fields listed in ``Row.raw`` carry a deliberate defect
and are written verbatim. Output bytes depend only on the rng state, so reruns are identical.
"""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import date
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from warehouse.files import workbook_bytes
from contracts.model import UNIT_FACTORS, Contract, Delivery, Field
from pipelines.samples.defects import Row
from pipelines.samples.oracle import parse_date

DATE_STYLES = ["%Y/%m/%d", "%Y-%m-%d", "%Y%m%d", "cn"]
V1_EXTRAS = ["地方编码", "数据更新时间戳"]


def fmt_date(d: date, style: str) -> str:
    return f"{d.year}年{d.month}月{d.day}日" if style == "cn" else d.strftime(style)


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def second_columns(contract: Contract) -> list[tuple[Field, str]]:
    """2016 layout: a multi-value field whose v1 header ends in 1 (处罚类别1) and that also
    accepts the header ending in 2 (处罚类别2) is written over both columns."""
    out = []
    for f in contract.fields:
        if f.multi_value_separator and f.v1_label and f.v1_label.endswith("1"):
            second = f.v1_label[:-1] + "2"
            if second in f.aliases:
                out.append((f, second))
    return out


def headers(contract: Contract, style: str) -> list[str]:
    if style == "code":
        names = [f.code or f.label for f in contract.fields]
    elif style == "v1":
        names = [f.v1_label or f.label for f in contract.fields] + V1_EXTRAS + [h for _, h in second_columns(contract)]
    else:
        names = [f.label for f in contract.fields]
    return names


class Renderer:
    """Per-file rendering choices (date spelling, date cells) plus per-cell noise."""

    def __init__(self, rng: random.Random, target: str):
        self.rng, self.target = rng, target
        self.date_style = rng.choice(DATE_STYLES) if target == "csv" else rng.choice(["%Y-%m-%d", "%Y-%m-%d", "%Y/%m/%d"])
        self.date_cells = target == "xlsx" and rng.random() < 0.5

    def _enum(self, f: Field, v: str) -> str:
        rng = self.rng

        def one(part: str) -> str:
            aliases = [k for k, t in f.all_enum_aliases.items() if t == part]
            return rng.choice(aliases) if aliases and rng.random() < 0.15 else part

        if f.multi_value_separator:
            sep = "；" if rng.random() < 0.15 else f.multi_value_separator
            return sep.join(one(p) for p in v.split(f.multi_value_separator))
        return one(v)

    def _spaces(self, v: str) -> str:
        return self.rng.choice([f" {v}", f"{v} ", f"  {v} "]) if self.rng.random() < 0.03 else v

    def cell(self, f: Field, v: str | None, raw: bool):
        rng = self.rng
        if v is None:
            if raw and rng.random() < 0.5:
                return " "
            return None if self.target == "json" else ""
        if raw:
            return v
        if f.type == "date" and (d := parse_date(v)):
            return d if self.date_cells else fmt_date(d, self.date_style)
        if f.enum:
            return self._spaces(self._enum(f, v))
        if f.unit and rng.random() < 0.08:
            # an amount marked with the other unit ("5000元" in a 万元 column): ingest converts it
            other = "元" if f.unit != "元" else "万元"
            amount = Decimal(v) * UNIT_FACTORS[f.unit] / UNIT_FACTORS[other]
            return format(amount.normalize(), "f") + other
        if f.type in ("decimal", "integer"):
            if self.target == "csv":
                return v
            return int(v) if f.type == "integer" else float(v)
        if f.type == "code":
            if f.identifier and f.identifier.kind == "ric" and v.endswith("X") and rng.random() < 0.4:
                v = v[:-1] + "x"
            if rng.random() < 0.03:
                v = fullwidth(v)
            return self._spaces(v)
        return self._spaces(v)

    def row(self, contract: Contract, row: Row, style: str, region_code: str, stamp: str) -> list:
        rec = dict(row.rec)
        seconds = []
        if style == "v1":
            for f, _ in second_columns(contract):
                parts = (rec.get(f.name) or "").split(f.multi_value_separator)
                if f.name not in row.raw and len(parts) > 1:
                    rec[f.name] = parts[0]  # 处罚类别1; the rest in 处罚类别2
                    seconds.append(self.cell(f, f.multi_value_separator.join(parts[1:]), False))
                else:
                    seconds.append(None if self.target == "json" else "")
        cells = [self.cell(f, rec.get(f.name), f.name in row.raw) for f in contract.fields]
        if style == "v1":
            cells += [region_code, stamp] + seconds
        return cells


def csv_bytes(title_lines: list[str], header: list[str], rows: list[list], encoding: str) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for line in title_lines:
        w.writerow([line])
    w.writerow(header)
    for r in rows:
        w.writerow(["" if c is None else c for c in r])
    return buf.getvalue().encode(encoding)


def xlsx_bytes(title_lines: list[str], header: list[str], rows: list[list], sheet: str) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = sheet[:31]
    for i, line in enumerate(title_lines, start=1):
        ws.append([line])
        if len(header) > 1:
            ws.merge_cells(start_row=i, start_column=1, end_row=i, end_column=len(header))
        if i == 1:
            ws.cell(1, 1).font = Font(bold=True, size=14)
            ws.cell(1, 1).alignment = Alignment(horizontal="center")
    ws.append(header)
    for r in rows:
        ws.append(r)
    return workbook_bytes(wb)


def json_bytes(contract: Contract, rows: list[list]) -> bytes:
    """A JSON list of objects keyed by the fields' Chinese labels (the departments' API)."""
    labels = [f.label for f in contract.fields]
    records = [dict(zip(labels, r)) for r in rows]
    return (json.dumps(records, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def title_lines(contract: Contract, delivery: Delivery, dept_name: str, region: str, day: date) -> list[str]:
    lines = [f"{dept_name}{contract.title}信息报送表",
             f"填报单位：{dept_name}    填报日期：{day.year}年{day.month}月{day.day}日",
             f"说明：按{region}公共信用信息目录填报"]
    n = delivery.title_rows
    return (lines + [""] * n)[:n] if n <= 3 else lines + ["说明"] * (n - 3)
