"""Blank XLSX submission templates, generated from a feed contract.

Most bad rows are born in the clerk's spreadsheet. A template built from the contract puts
the catalog's rules where the clerk types: the national columns in the national order,
a note on every header (必填/条件必填, format, allowed values), drop-downs for enumerations
and a 填报说明 sheet with the legal basis and the deadline. The header row is row 1 and data
start in row 2, so a filled-in template is read back by ingest with no title rows to skip.
"""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation

from assets.publish.catalog_docs import (
    describe_deadline,
    describe_format,
    describe_required,
    describe_values,
)
from contracts.model import Contract, Field
from warehouse.files import workbook_bytes

TEMPLATE_ROWS = 1000  # rows that carry drop-downs and prompts
LIST_SHEET = "取值"
REQUIRED_FILL = PatternFill("solid", fgColor="FCE4D6")
OPTIONAL_FILL = PatternFill("solid", fgColor="DDEBF7")


def field_note(contract: Contract, f: Field) -> str:
    lines = [f"{f.label}（{f.code or f.name}）", describe_required(contract, f), describe_format(f)]
    values = describe_values(f)
    if values:
        lines.append(f"取值：{values}")
    if f.privacy == "personal":
        lines.append("个人信息：公开时遮蔽")
    if f.description:
        lines.append(f.description)
    return "\n".join(lines)


def _list_formula(wb: Workbook, f: Field, column: int) -> str:
    """Inline list when it fits Excel's 255-character limit, else a range on a hidden sheet."""
    inline = ",".join(f.enum or [])
    if len(inline) <= 250 and not any("," in v for v in f.enum or []):
        return f'"{inline}"'
    ws = wb[LIST_SHEET] if LIST_SHEET in wb.sheetnames else wb.create_sheet(LIST_SHEET)
    ws.sheet_state = "hidden"
    for i, v in enumerate(f.enum or [], start=1):
        ws.cell(i, column, v)
    letter = get_column_letter(column)
    return f"{quote_sheetname(LIST_SHEET)}!${letter}$1:${letter}${len(f.enum or [])}"


def _data_sheet(wb: Workbook, contract: Contract) -> None:
    ws = wb.active
    ws.title = contract.title[:31]
    fields = contract.national_fields
    last = TEMPLATE_ROWS + 1
    for col, f in enumerate(fields, start=1):
        cell = ws.cell(1, col, f.label)
        required = f.required or f.required_when is not None
        cell.font = Font(bold=True, color="C00000" if f.required else "000000")
        cell.fill = REQUIRED_FILL if required else OPTIONAL_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        note = field_note(contract, f)
        cell.comment = Comment(note, "credit-etl", width=320, height=40 + 18 * note.count("\n"))
        letter = get_column_letter(col)
        ws.column_dimensions[letter].width = min(max(len(f.label) * 2 + 4, 14), 40)
        rng = f"{letter}2:{letter}{last}"
        if f.enum:
            dv = DataValidation(type="list", formula1=_list_formula(wb, f, col), allow_blank=True)
            # several values (multi-value) or 其他-<名称> cannot pass a strict list: warn only
            lenient = bool(f.multi_value_separator or f.enum_allow_prefix)
            dv.errorStyle = "warning" if lenient else "stop"
            dv.error = f"请从下拉列表选择：{describe_values(f)}"
            dv.errorTitle = f.label
        else:
            dv = DataValidation(allow_blank=True)
            dv.showErrorMessage = False
        dv.promptTitle = f.label[:32]
        dv.prompt = f"{describe_required(contract, f)}；{describe_format(f)}"[:255]
        dv.showInputMessage = True
        dv.add(rng)
        ws.add_data_validation(dv)
        if f.type in ("date", "code"):
            ws.column_dimensions[letter].number_format = "@"  # keep leading zeros and typed date text
    ws.row_dimensions[1].height = 36
    ws.freeze_panes = "A2"


def _guide_sheet(wb: Workbook, contract: Contract) -> None:
    ws = wb.create_sheet("填报说明")
    bold = Font(bold=True)
    rows = [
        ("信息类别", f"{contract.title}（{contract.feed}）"),
        ("法律依据", contract.legal_basis),
        ("目录事项", contract.catalog_item or "—"),
        ("业务主键", "＋".join(contract.field(k).label for k in contract.business_key)),
        ("报送时限", describe_deadline(contract)),
        ("说明", contract.description or "—"),
        ("填写方法", "第1行为表头，请勿修改；从第2行起每行填写一条记录；日期按 YYYY-MM-DD 填写。"),
    ]
    for r, (k, v) in enumerate(rows, start=1):
        ws.cell(r, 1, k).font = bold
        ws.cell(r, 2, v).alignment = Alignment(wrap_text=True, vertical="top")
    start = len(rows) + 2
    head = ["序号", "中文名", "代码", "必填", "类型/格式", "取值", "说明"]
    for c, h in enumerate(head, start=1):
        ws.cell(start, c, h).font = bold
    for i, f in enumerate(contract.national_fields, start=1):
        values = [i, f.label, f.code or f.name, describe_required(contract, f), describe_format(f),
                  describe_values(f), f.description]
        for c, v in enumerate(values, start=1):
            ws.cell(start + i, c, v).alignment = Alignment(wrap_text=True, vertical="top")
    r = start + len(contract.national_fields) + 2
    if contract.rules:
        ws.cell(r, 1, "规则编号").font = bold
        ws.cell(r, 2, "校验规则").font = bold
        for j, rule in enumerate(contract.rules, start=1):
            ws.cell(r + j, 1, rule.id)
            ws.cell(r + j, 2, rule.message).alignment = Alignment(wrap_text=True)
    for letter, width in zip("ABCDEFG", (12, 36, 16, 24, 36, 40, 40)):
        ws.column_dimensions[letter].width = width


def write_template(contract: Contract, out_path: str | Path) -> Path:
    """Write the blank submission template for ``contract`` to ``out_path`` (XLSX)."""
    out_path = Path(out_path)
    wb = Workbook()
    _data_sheet(wb, contract)
    _guide_sheet(wb, contract)
    if LIST_SHEET in wb.sheetnames:
        wb.move_sheet(LIST_SHEET, offset=len(wb.sheetnames))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_bytes(workbook_bytes(wb))
    tmp.replace(out_path)
    return out_path
