"""The indicator workbook the office head sends to the city: title block, totals, order, marks, print.

The figures themselves are checked against truth elsewhere (tests/test_demo_truth.py on the CSV,
test_public_and_export.py for the workbook = CSV); here: what the workbook shows and how it prints.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import openpyxl
import pytest

from assets.publish.export import write_export
from office import convert, needs_poppler, needs_soffice, pdf_page_size, pdf_pages
from test_public_and_export import dd, loaded  # noqa: F401  (fixtures: a loaded sample month)

EXPORTED = date(2026, 10, 8)


def _main(path):
    ws = openpyxl.load_workbook(path)["监测指标"]
    return ws, [[c for c in r] for r in ws.iter_rows(min_row=6)]


def test_title_block_totals_and_marks(loaded, contracts, registry, tmp_path):  # noqa: F811
    path = write_export(loaded, "2026-09", "xlsx", out=tmp_path / "x.xlsx", contracts=contracts, registry=registry,
                        exported=EXPORTED)
    ws, rows = _main(path)
    assert ws["A1"].value == "巫山县公共信用信息归集监测指标（2026年9月）"
    assert ws["B2"].value == "巫山县（500237）" and ws["B3"].value == registry.issuer
    assert ws["E2"].value == datetime(2026, 9, 1) and ws["E2"].is_date  # month and export date are dates
    assert ws["G2"].value == datetime(2026, 10, 8) and ws["G2"].number_format == "yyyy-mm-dd"
    assert "未达目标的比率标红" in ws["A4"].value

    records = {c.feed for c in contracts.values() if c.role == "records"}
    names = [d.name for d in registry.departments if records & set(d.feeds)]
    dept_rows = [r for r in rows if r[3].value == "合计"]
    assert [r[2].value for r in dept_rows] == names  # one 合计 per department, in the city's order
    assert [r[0].value for r in dept_rows] == [str(i) for i in range(1, len(names) + 1)]
    # a department's 合计 adds its feeds; its rates come from the added counts
    scjgj = [r for r in rows if r[1].value == "scjgj"]
    feeds, total = scjgj[:-1], scjgj[-1]
    assert total[3].value == "合计" and total[4].value == sum(r[4].value for r in feeds) == 10
    assert total[5].value == sum(r[5].value for r in feeds)
    assert total[6].value == pytest.approx(total[5].value / total[4].value, abs=5e-5)  # 合规率 = loaded ÷ received here
    grand = rows[-1]
    assert (grand[2].value, grand[3].value) == ("总计", "全部")
    assert grand[4].value == sum(r[4].value for r in dept_rows)
    county = [r for r in rows if r[2].value == "全县合计"]
    assert len(county) == len({c.title for c in contracts.values() if c.role == "records"})

    # rates are percentages; below target (or 迟报率 above 0) is marked, on target is not
    rated = [c for r in rows for c in r[6:10] if c.value is not None]
    assert rated and all(c.number_format == "0.00%" and 0 <= c.value <= 1 for c in rated)
    low = [c for c in rated if c.font.color is not None and str(c.font.color.rgb).endswith("C00000")]
    header = [c.value for c in ws[5]]
    for c in rated:
        col = header[c.column - 1]
        below = c.value > 0 if col == "迟报率" else c.value < 1
        assert (c in low) == below, (c.coordinate, col, c.value)
    assert any(c.value < 1 for c in low)

    # print setup: A4 landscape, one page wide, title and header repeated on every page
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth in (None, 1) and ws.page_setup.fitToHeight == 0  # absent = 1
    assert ws.print_title_rows == "$1:$5"


def test_rank_order_and_csv_unchanged(loaded, contracts, registry, tmp_path):  # noqa: F811
    path = write_export(loaded, "2026-09", "xlsx", out=tmp_path / "r.xlsx", contracts=contracts, registry=registry,
                        order="rank", exported=EXPORTED)
    ws, rows = _main(path)
    assert ws["A5"].value == "名次"
    dept_rows = [r for r in rows if r[3].value == "合计"]
    places = [int(r[0].value) for r in dept_rows]
    assert places == sorted(places) and places[0] == 1
    keys = [tuple(-(c.value if c.value is not None else -1) for c in (r[7], r[6], r[9])) for r in dept_rows]
    assert keys == sorted(keys)  # by 及时率, then 合规率, then 上报率 (unknown last)
    records = {c.feed for c in contracts.values() if c.role == "records"}
    assert {r[2].value for r in dept_rows} == {d.name for d in registry.departments if records & set(d.feeds)}
    # the CSV is for machines: ten fixed columns, one header row, no title block or department totals
    text = write_export(loaded, "2026-09", "csv", out=tmp_path / "c.csv", contracts=contracts,
                        registry=registry).read_bytes().decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["月份", "部门代码", "部门名称", "信息类别", "归集量", "清洗入库量", "合规率", "及时率", "迟报率", "上报率"]
    assert all(len(r) == 10 for r in table) and all(r[0] == "2026-09" for r in table[1:])
    assert not any(r[3] == "合计" for r in table)


@needs_soffice
@needs_poppler
def test_main_sheet_prints_on_one_page_width(loaded, contracts, registry, tmp_path):  # noqa: F811
    """Rendered by LibreOffice to PDF: the main sheet is one page wide (its pages are its row pages
    only), A4 landscape, and every department's name is on the same printed line as its figures."""
    path = write_export(loaded, "2026-09", "xlsx", out=tmp_path / "indicators.xlsx", contracts=contracts,
                        registry=registry, exported=EXPORTED)
    ws, rows = _main(path)
    only_main = openpyxl.load_workbook(path)
    for name in only_main.sheetnames[1:]:
        del only_main[name]
    main_path = tmp_path / "main.xlsx"
    only_main.save(main_path)
    pdf = convert(main_path, "pdf", tmp_path / "pdf")
    pages = pdf_pages(pdf)
    w, h = pdf_page_size(pdf)
    assert w > h and round(w) in (842, 841) and round(h) in (595, 596)  # A4 landscape
    # 11 departments × their feeds + totals fit on one page; a second page width would add pages
    assert len(pages) == 1, [p[:200] for p in pages]
    page = pages[0]
    assert "巫山县公共信用信息归集监测指标（2026年9月）" in page and "2026-10-08" in page
    with_rates = 0
    for r in rows:
        if r[3].value != "合计":
            continue
        line = next(l for l in page.splitlines() if r[2].value in l and "合计" in l)
        assert line.split(r[2].value)[1].split()[1] == f"{r[4].value:,}", line  # name and figures on one line
        for c in r[6:10]:
            if c.value is not None:
                with_rates += 1
                assert f"{c.value * 100:.2f}%" in line, line
    assert with_rates

    # the whole workbook prints landscape, one page wide per sheet (not 194 portrait pages)
    whole = pdf_pages(convert(path, "pdf", tmp_path / "whole"))
    assert len(whole) <= 4
