"""Blank XLSX submission templates, generated from a feed contract.

Most bad rows are born in the clerk's spreadsheet. A template built from the contract puts the
catalog's rules where the clerk types:

- every field of the contract: the national fields in the national order, then the local
  extensions (``national: false``, e.g. 案件程序类别, 公示状态, 失信严重程度), their headers in their
  own colour and noted as 地方扩展字段; the header text is the field's label, so a filled-in
  template is read back by ingest with no mapping (header in row 1, data from row 2);
- identifier, code and date columns are text-formatted (``@``) in every data row, so an 18-digit
  ID number typed into Excel or LibreOffice stays 500237… instead of becoming 5.00237E+17, and a
  typed date stays as typed;
- drop-downs for enumerations that refuse any other value with a Chinese message (``stop``). Where
  the contract admits values a list cannot hold (several values joined by ``;``, or 其他-<名称>) the
  message is a warning the clerk can confirm, and it says which forms are allowed;
- a note and an input prompt on every header (必填/条件必填, format, allowed values);
- a 填报说明 sheet with a colour legend, the legal basis, the deadline, every field and every
  cross-field rule, its text wrapped with row heights set (LibreOffice does not recompute them on
  load) so it reads and prints in full;
- print setup on both sheets: A4 landscape, fit to one page wide, header row repeated.
"""

from __future__ import annotations

import math
from pathlib import Path

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation

from assets.publish.catalog_docs import (
    describe_deadline,
    describe_format,
    describe_required,
    describe_values,
)
from contracts.model import Contract, Field
from warehouse.files import text_width, workbook_bytes, write_bytes

TEMPLATE_ROWS = 1000  # rows that carry drop-downs, prompts and text format
LIST_SHEET = "取值"
GUIDE_SHEET = "填报说明"
TEXT_FORMAT = "@"
REQUIRED_FILL = PatternFill("solid", fgColor="F8CBAD")  # 必填
CONDITIONAL_FILL = PatternFill("solid", fgColor="FCE4D6")  # 条件必填
OPTIONAL_FILL = PatternFill("solid", fgColor="DDEBF7")  # 选填
LOCAL_FILL = PatternFill("solid", fgColor="E2EFDA")  # 地方扩展字段
TEXT_FILL = PatternFill("solid", fgColor="F2F2F2")  # text-format data cells (identifiers, codes, dates)
THIN = Side(style="thin", color="BFBFBF")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
LEGEND = [
    (REQUIRED_FILL, "红色字、深橙色表头：必填（国家标准字段）"),
    (CONDITIONAL_FILL, "浅橙色表头：条件必填（满足说明中的条件时必须填写）"),
    (OPTIONAL_FILL, "浅蓝色表头：选填（国家标准字段）"),
    (LOCAL_FILL, "浅绿色表头：地方扩展字段（国家标准之外，本地要求报送；排在国家标准字段之后）"),
    (TEXT_FILL, "浅灰色单元格：文本格式（证件号码、代码、日期），请直接输入，不要改成数字或日期格式"),
]


def ordered_fields(contract: Contract) -> list[Field]:
    """National fields in the contract's (national) order, then the local extensions."""
    return [f for f in contract.fields if not f.extension] + [f for f in contract.fields if f.extension]


def is_text_column(f: Field) -> bool:
    """Identifier, code and date columns: kept as typed text in the data rows."""
    return f.type in ("code", "date") or f.identifier is not None


def field_note(contract: Contract, f: Field) -> str:
    lines = [f"{f.label}（{f.code or f.name}）", describe_required(contract, f), describe_format(f)]
    if f.extension:
        lines.append("地方扩展字段（国家标准之外）")
    values = describe_values(f)
    if values:
        lines.append(f"取值：{values}")
    if is_text_column(f):
        lines.append("本列为文本格式：证件号码、代码、日期按原样输入")
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


def _header_fill(f: Field) -> PatternFill:
    if f.extension:
        return LOCAL_FILL
    if f.required:
        return REQUIRED_FILL
    return CONDITIONAL_FILL if f.required_when is not None else OPTIONAL_FILL


def _validation(wb: Workbook, contract: Contract, f: Field, col: int) -> DataValidation:
    if f.enum:
        dv = DataValidation(type="list", formula1=_list_formula(wb, f, col), allow_blank=True)
        # several values (multi-value) or 其他-<名称> cannot pass a strict list: the clerk is warned
        # and must confirm; every other enumeration refuses values outside the list
        lenient = bool(f.multi_value_separator or f.enum_allow_prefix)
        dv.errorStyle = "warning" if lenient else "stop"
        dv.errorTitle = f"「{f.label}」取值不在列表中"[:32]
        dv.error = (f"请从下拉列表选择：{describe_values(f)}" + ("。如确为多个值或“其他-名称”，可点“是”保留。" if lenient else ""))[:255]
        dv.showErrorMessage = True
    else:
        dv = DataValidation(allow_blank=True)
        dv.showErrorMessage = False
    dv.promptTitle = f.label[:32]
    dv.prompt = f"{describe_required(contract, f)}；{describe_format(f)}"[:255]
    dv.showInputMessage = True
    return dv


def _print_setup(ws, title_rows: str | None) -> None:
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    if title_rows:
        ws.print_title_rows = title_rows
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"


def _data_sheet(wb: Workbook, contract: Contract) -> None:
    ws = wb.active
    ws.title = contract.title[:31]
    fields = ordered_fields(contract)
    last = TEMPLATE_ROWS + 1
    text_align = Alignment(vertical="top")
    for col, f in enumerate(fields, start=1):
        cell = ws.cell(1, col, f.label)
        cell.font = Font(bold=True, color="C00000" if f.required else "000000")
        cell.fill = _header_fill(f)
        cell.border = BOX
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        note = field_note(contract, f)
        cell.comment = Comment(note, "credit-etl", width=320, height=40 + 18 * note.count("\n"))
        letter = get_column_letter(col)
        width = 22 if f.identifier is not None else 14
        ws.column_dimensions[letter].width = min(max(text_width(f.label) + 4, width), 40)
        dv = _validation(wb, contract, f, col)
        dv.add(f"{letter}2:{letter}{last}")
        ws.add_data_validation(dv)
        if is_text_column(f):
            # the format on every data cell (not only the column): Excel and LibreOffice keep cell
            # formats through a save, and a typed 18-digit number stays text
            for row in range(2, last + 1):
                c = ws.cell(row, col)
                c.number_format = TEXT_FORMAT
                c.fill = TEXT_FILL
                c.alignment = text_align
    ws.row_dimensions[1].height = 45
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(fields))}1"
    _print_setup(ws, "1:1")


def _lines(text: str, width: float) -> int:
    return sum(max(1, math.ceil(text_width(part) / max(width - 2, 1))) for part in str(text).split("\n"))


def _guide_sheet(wb: Workbook, contract: Contract) -> None:
    ws = wb.create_sheet(GUIDE_SHEET)
    widths = (12, 30, 16, 24, 34, 40, 40, 14)
    for letter, width in zip("ABCDEFGH", widths):
        ws.column_dimensions[letter].width = width
    wrap = Alignment(wrap_text=True, vertical="top")
    bold = Font(bold=True)
    row_texts: dict[int, list[tuple[int, str]]] = {}

    def put(r: int, c: int, value, *, font=None, fill=None, span: int = 1) -> None:
        cell = ws.cell(r, c, value)
        cell.alignment = wrap
        cell.border = BOX
        if font:
            cell.font = font
        if fill:
            cell.fill = fill
        if span > 1:
            ws.merge_cells(start_row=r, start_column=c, end_row=r, end_column=c + span - 1)
        if value is not None:
            width = sum(widths[c - 1: c - 1 + span])
            row_texts.setdefault(r, []).append((_lines(value, width), str(value)))

    ws.cell(1, 1, f"{contract.title}信息报送模板填报说明").font = Font(bold=True, size=14)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=7)
    ws.row_dimensions[1].height = 24
    r = 3
    put(r, 1, "颜色说明", font=bold, span=7)
    for fill, text in LEGEND:
        r += 1
        put(r, 1, "", fill=fill)
        put(r, 2, text, span=6)
    r += 2
    rows = [
        ("信息类别", f"{contract.title}（{contract.feed}）"),
        ("法律依据", contract.legal_basis),
        ("目录事项", contract.catalog_item or "—"),
        ("业务主键", "＋".join(contract.field(k).label for k in contract.business_key)),
        ("报送时限", describe_deadline(contract)),
        ("说明", contract.description or "—"),
        ("填写方法", "第1行为表头，请勿修改、删除或调换列；从第2行起每行填写一条记录。日期按 YYYY-MM-DD 填写；"
                  "证件号码、代码、日期列已设为文本格式，请直接输入，勿改为数字格式（否则18位号码会变成 5.00237E+17）。"
                  "有下拉列表的列请从列表选择；浅绿色表头为地方扩展字段，按本地要求填写。"),
    ]
    for k, v in rows:
        put(r, 1, k, font=bold)
        put(r, 2, v, span=6)
        r += 1
    r += 1
    head = ["序号", "中文名", "代码", "必填", "类型/格式", "取值", "说明", "字段来源"]
    for c, h in enumerate(head, start=1):
        put(r, c, h, font=bold, fill=OPTIONAL_FILL)
    for i, f in enumerate(ordered_fields(contract), start=1):
        r += 1
        values = [i, f.label, f.code or f.name, describe_required(contract, f), describe_format(f),
                  describe_values(f), f.description, contract.field_source(f)]
        for c, v in enumerate(values, start=1):
            put(r, c, v, fill=LOCAL_FILL if (c == 8 and f.extension) else None)
    if contract.rules:
        r += 2
        put(r, 1, "规则编号", font=bold, fill=OPTIONAL_FILL)
        put(r, 2, "校验规则", font=bold, fill=OPTIONAL_FILL, span=6)
        for rule in contract.rules:
            r += 1
            put(r, 1, rule.id)
            put(r, 2, rule.message, span=6)
    # LibreOffice keeps the stored row height on load: set it from the wrapped text
    for row, texts in row_texts.items():
        ws.row_dimensions[row].height = 15 * max(n for n, _ in texts) + 4
    _print_setup(ws, None)  # the field table starts mid-sheet: no rows to repeat


def template_file_name(contract: Contract) -> str:
    """The template's file name when only a folder is given: ``行政处罚模板.xlsx``."""
    return f"{contract.title}模板.xlsx".replace("/", "／")


def write_template(contract: Contract, out_path: str | Path) -> Path:
    """Write the blank submission template for ``contract`` to ``out_path`` (XLSX), atomically:
    the temporary file sits beside ``out_path`` and is removed on any failure."""
    wb = Workbook()
    _data_sheet(wb, contract)
    _guide_sheet(wb, contract)
    if LIST_SHEET in wb.sheetnames:
        wb.move_sheet(LIST_SHEET, offset=len(wb.sheetnames))
    return write_bytes(workbook_bytes(wb), out_path, private=False)
