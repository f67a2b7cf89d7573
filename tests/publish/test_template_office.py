"""The penalties template after a LibreOffice round trip (opened and saved again, as a clerk would):
identifier, code and date cells of the data rows are still text-formatted, the three contract
fields the national layout lacks are there, the drop-downs still refuse other values in Chinese,
and the 填报说明 sheet prints its text in full on landscape pages."""

from __future__ import annotations

import re

import openpyxl

from assets.publish.templates import TEMPLATE_ROWS
from office import convert, needs_poppler, needs_soffice, pdf_page_size, pdf_pages
from pipelines.cli import main

LOCAL = ["案件程序类别", "公示状态", "失信严重程度"]


def _template(tmp_path):
    out = tmp_path / "行政处罚模板.xlsx"
    assert main(["template", "--feed", "行政处罚", "--out", str(out)]) == 0
    return out


@needs_soffice
def test_text_format_and_fields_survive_a_libreoffice_round_trip(tmp_path, contracts):
    saved = convert(_template(tmp_path), "xlsx", tmp_path / "saved")
    wb = openpyxl.load_workbook(saved)
    ws = wb.worksheets[0]
    header = [c.value for c in ws[1]]
    P = contracts["penalties"]
    assert header == [f.label for f in P.fields if not f.extension] + LOCAL  # national first, then local
    text_cols = [f.label for f in P.fields if f.type in ("code", "date") or f.identifier]
    assert {"证件号码", "法定代表人证件号码", "统一社会信用代码", "处罚决定日期", "行政处罚决定书文号"} <= set(text_cols)
    for label in text_cols:
        col = header.index(label) + 1
        formats = {ws.cell(r, col).number_format for r in (2, 3, 500, TEMPLATE_ROWS + 1)}
        assert formats == {"@"}, (label, formats)
    for label in ("行政相对人名称", "罚款金额（万元）"):  # free text and amounts stay General
        assert ws.cell(2, header.index(label) + 1).number_format == "General"

    lists = {}
    for dv in ws.data_validations.dataValidation:
        if dv.type == "list":
            for rng in dv.sqref.ranges:
                lists[header[rng.min_col - 1]] = dv
    assert set(LOCAL) <= set(lists)
    for label in ("行政相对人类别", "失信严重程度", "公示状态"):
        dv = lists[label]
        assert dv.showErrorMessage and dv.errorStyle == "stop" and dv.error.startswith("请从下拉列表选择")
    assert "严重" in lists["失信严重程度"].formula1 and "撤销" in lists["公示状态"].formula1
    assert lists["处罚类别"].showErrorMessage  # several values allowed: warned, not silent
    assert ws.page_setup.orientation == "landscape" and ws.print_title_rows == "$1:$1"
    assert ws.sheet_properties.pageSetUpPr.fitToPage


@needs_soffice
@needs_poppler
def test_guide_sheet_wraps_and_prints_in_full(tmp_path, contracts):
    pdf = convert(_template(tmp_path), "pdf", tmp_path / "pdf")
    w, h = pdf_page_size(pdf)
    assert w > h  # landscape
    pages = pdf_pages(pdf)
    flat = re.sub(r"\s+", "", "".join(pages))
    P = contracts["penalties"]
    # long cells print whole (wrapped over several lines), not cut at the first line
    for text in (P.legal_basis, "有下拉列表的列请从列表选择；浅绿色表头为地方扩展字段，按本地要求填写。",
                 "浅灰色单元格：文本格式（证件号码、代码、日期），请直接输入，不要改成数字或日期格式"):
        assert re.sub(r"\s+", "", text) in flat, text
    for rule in P.rules:
        assert re.sub(r"\s+", "", rule.message) in flat, rule.id
