"""The province indicator export over a real DuckDB file of ``county_metrics_daily``: the XLSX
opened with openpyxl equals plain SQL over the table and has the county workbook's look (title
block, typed dates, percentages, red off-target rates, A4 landscape one page wide), LibreOffice
prints it one page wide with names and figures on the same line, the CSV has one header row and
the same figures, and no full ID or phone number is in anything written."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import duckdb
import pytest
from openpyxl import load_workbook

from assets.province.ranking import Period
from assets.province.report import CSV_COLUMNS, SHEET_DEPTS, SHEET_LEAGUE, SHEET_NOTES, write_province_export
from office import convert, needs_poppler, needs_soffice, pdf_page_size, pdf_pages
from province_report_data import COUNTIES, FULL_ID, FULL_PHONE, MONTH, PLAIN_COUNTY_SQL, PLAIN_DEPT_SQL, build
from warehouse.masking import find_unmasked

EXPORTED = date(2026, 11, 3)
RED = "FFC00000"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("province")
    db = build(root / "province.duckdb")
    con = duckdb.connect(str(db), read_only=True)
    try:
        plain = con.execute(PLAIN_COUNTY_SQL, [MONTH]).fetchall()
        depts = con.execute(PLAIN_DEPT_SQL, [MONTH]).fetchall()
        total = con.execute("SELECT sum(received_rows), sum(loaded_rows), round(100.0 * sum(passed_rows) / sum(received_rows), 2) "
                            "FROM county_metrics_daily WHERE strftime(day, '%Y-%m') = ?", [MONTH]).fetchone()
        xlsx = write_province_export(con, Period.month(MONTH), root / "reports", counties=COUNTIES, region="重庆市",
                                     issuer="重庆市社会信用体系建设工作领导小组办公室", exported=EXPORTED)
        csv_path = write_province_export(con, Period.month(MONTH), root / "reports", fmt="csv", counties=COUNTIES)
    finally:
        con.close()
    return {"root": root, "xlsx": xlsx, "csv": csv_path, "plain": plain, "depts": depts, "total": total}


def _cells_text(wb) -> str:
    return "\n".join(str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None)


def test_league_sheet_equals_plain_sql_with_the_indicator_look(made):
    wb = load_workbook(made["xlsx"])
    assert wb.sheetnames == [SHEET_LEAGUE, SHEET_DEPTS, SHEET_NOTES]
    ws = wb[SHEET_LEAGUE]
    assert ws["A1"].value == "重庆市公共信用信息归集监测区县排名（2026年10月）"
    assert ws["E2"].value == datetime(2026, 10, 1) and ws["E2"].number_format == 'yyyy"年"m"月"'
    assert ws["G2"].value == datetime(2026, 11, 3) and ws["B3"].value.startswith("重庆市社会信用")
    assert [c.value for c in ws[5]] == ["名次", "区县代码", "区县名称", "归集量", "清洗入库量", "合规率", "及时率", "迟报率", "未达标项"]
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=6)]
    assert [r[1] for r in rows[:-2]] == [p[0] for p in made["plain"]] and rows[-2][2] == "渝中区"
    for r, (code, received, loaded, compliance, timely) in zip(rows, made["plain"]):
        assert (r[3], r[4]) == (received, loaded)
        assert r[5] == pytest.approx(float(compliance) / 100, abs=5e-5) and r[6] == pytest.approx(float(timely) / 100, abs=5e-5)
        assert r[7] == pytest.approx(1 - r[6], abs=5e-5)
    assert [r[0] for r in rows[:-1]] == ["1", "2", "3", "4"]
    assert rows[-1][2] == "全省合计" and (rows[-1][3], rows[-1][4]) == made["total"][:2]
    assert rows[-1][5] == pytest.approx(float(made["total"][2]) / 100, abs=5e-5)
    # percentages; off-target red, on-target not
    for i, r in enumerate(ws.iter_rows(min_row=6, max_row=8), start=6):
        for cell in r[5:8]:
            assert cell.number_format == "0.00%"
        off = rows[i - 6][8]
        assert (r[5].font.color is not None and r[5].font.color.rgb == RED) == ("合规率" in off)
    assert rows[0][8] == "" and "合规率" in rows[1][8]
    # A4 landscape, one page wide, header repeated
    assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 9
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth in (None, 1) and ws.page_setup.fitToHeight == 0  # XML default width 1
    assert ws.print_title_rows == "$1:$5"


def test_department_sheet_groups_counties_in_rank_order(made):
    ws = load_workbook(made["xlsx"])[SHEET_DEPTS]
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=6)]
    plain = {(c, d): rest for c, d, *rest in made["depts"]}
    seen = set()
    order = []
    for r in rows:
        if r[4] == "合计":
            order.append(r[2])
            continue
        received, loaded, compliance, _ = plain[(r[2], r[4].replace("138****5678", FULL_PHONE).replace("500237********123X", FULL_ID))]
        assert (r[5], r[6]) == (received, loaded) and r[7] == pytest.approx(float(compliance) / 100, abs=5e-5)
        seen.add((r[2], r[4]))
    assert len(seen) == len(plain)
    assert order == [p[0] for p in made["plain"]] + ["500103"]


def test_csv_has_one_header_row_and_the_same_figures(made):
    text = made["csv"].read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == CSV_COLUMNS and all(r[0] == "2026年10月" for r in rows[1:])
    counties = [r for r in rows if r[1] == "区县"]
    assert [(r[3], int(r[6]), int(r[7])) for r in counties[:3]] == [(p[0], p[1], p[2]) for p in made["plain"]]
    assert counties[-1][3] == "500103" and counties[-1][11] == "无数据"
    assert len([r for r in rows if r[1] == "部门"]) == len(made["depts"])


def test_nothing_written_holds_a_full_id_or_phone(made):
    wb = load_workbook(made["xlsx"])
    for text in (_cells_text(wb), made["csv"].read_bytes().decode("utf-8-sig")):
        assert FULL_ID not in text and FULL_PHONE not in text and not find_unmasked(text)
        assert "138****5678" in text  # the department is still named, its number masked


@needs_soffice
@needs_poppler
def test_libreoffice_prints_the_league_one_page_wide(made, tmp_path):
    pdf = convert(made["xlsx"], "pdf", tmp_path / "pdf")
    w, h = pdf_page_size(pdf)
    assert w > h  # landscape
    pages = pdf_pages(pdf)
    text = "\n".join(pages)
    assert FULL_ID not in text and FULL_PHONE not in text and not find_unmasked(text)
    # each county's name and its figures are on one printed line (the sheet is one page wide)
    for code, received, *_ in made["plain"]:
        name = COUNTIES[code]
        lines = [ln for p in pages for ln in p.splitlines() if code in ln and name in ln and "%" in ln]
        assert any(f"{received:,}" in ln for ln in lines), (name, lines)
    league_pages = [p for p in pages if "区县排名" in p]
    assert len(league_pages) == 1  # four counties fit on one page; nothing spills to the right
    # the department sheet: a long (masked) name and its rates share a line
    assert any("138****5678" in ln and "%" in ln for p in pages for ln in p.splitlines())
