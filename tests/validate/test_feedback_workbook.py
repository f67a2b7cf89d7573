"""Feedback workbooks through the real path: a CSV in the inbox → ingest → validate → workbook.

What a clerk must be able to act on: the value exactly as sent (full-width, unknown spellings),
the offending cell filled, every reason in Chinese with the rule id apart, and no full resident ID
number of a natural person anywhere in the file.
"""

from __future__ import annotations

import csv
import io
import zipfile

from openpyxl import load_workbook

from assets.ingest import ingest_day
from assets.measure.calendar import default_calendar
from assets.validate import validate_day, write_feedback
from contracts import load_registry
from validate_helpers import GOOD_PENALTY, RECEIVED, fixed_ric
from warehouse.layout import DataDir
from warehouse.masking import find_unmasked

FULLWIDTH_BAD_USCC = "９１５００１０５ＭＡ５ＵＭ６ＴＦ７９"  # half-width 91500105MA5UM6TF79: wrong check character


def _rows():
    person = fixed_ric("50023719900101123")
    bad_person = person[:-1] + ("0" if person[-1] != "0" else "1")
    other = fixed_ric("11010519491231002")
    return person, bad_person, other, [
        {**GOOD_PENALTY, "decision_no": "R1"},
        {**GOOD_PENALTY, "decision_no": "R2", "subject_uscc": FULLWIDTH_BAD_USCC},
        {**GOOD_PENALTY, "decision_no": "R3", "legal_rep_id_type": "其它", "legal_rep_id_no": other},
        {**GOOD_PENALTY, "decision_no": "R4", "subject_kind": "自然人", "subject_uscc": "", "legal_rep": "",
         "subject_id_type": "身份证", "subject_id_no": bad_person, "decision_date": "2026/02/30"},
        {**GOOD_PENALTY, "decision_no": "R5", "subject_kind": "自然人", "subject_uscc": "", "legal_rep": "",
         "subject_id_type": "身份证", "subject_id_no": person, "fine_amount": "",
         "violation_facts": f"当事人（身份证号{person}）未按规定公示"},
    ]


def _night(tmp_path, contracts, rows=None):
    P = contracts["penalties"]
    person, bad_person, other, default_rows = _rows()
    rows = rows or default_rows
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([f.label for f in P.fields])
    for r in rows:
        w.writerow([r.get(f.name) or "" for f in P.fields])
    layout = DataDir(tmp_path)
    folder = layout.inbox / "scjgj" / "penalties" / RECEIVED.isoformat()
    folder.mkdir(parents=True)
    (folder / "处罚0610.csv").write_bytes(buf.getvalue().encode("utf-8"))
    registry = load_registry(contracts=contracts)
    ingest_day(layout, RECEIVED, {"penalties": P}, registry)
    validate_day(layout, RECEIVED, {"penalties": P})
    [path] = write_feedback(layout, RECEIVED, {"penalties": P}, registry, calendar=default_calendar())
    return path, (person, bad_person, other)


def _by_row(ws):
    header = [c.value for c in ws[1]]
    return header, {ws.cell(r, 2).value: [c for c in ws[r]] for r in range(2, ws.max_row + 1)}


def test_feedback_shows_values_as_received_and_marks_the_bad_cell(tmp_path, contracts):
    path, _ = _night(tmp_path, contracts)
    assert path.name == "巫山县市场监督管理局_2026-06-10_校验反馈.xlsx"
    wb = load_workbook(path)
    ws = wb["行政处罚"]
    header, rows = _by_row(ws)
    assert sorted(rows) == [3, 4, 5, 6]  # original line numbers (header is line 1)
    col = {h: i for i, h in enumerate(header)}

    # a non-personal code as sent: full-width, not the normalised GD500… form
    uscc_cell = rows[3][col["统一社会信用代码"]]
    assert uscc_cell.value == FULLWIDTH_BAD_USCC
    assert uscc_cell.fill.fgColor.rgb.endswith("FFC7CE")  # the offending cell is filled
    assert f"收到的值：「{FULLWIDTH_BAD_USCC}」" in rows[3][col["问题说明（逐条，含收到的值）"]].value
    assert rows[3][col["规则编号"]].value == "subject_uscc.uscc"
    assert not rows[3][col["行政相对人名称"]].fill.fgColor.rgb.endswith("FFC7CE")  # good cells are not

    # an unknown spelling is shown as typed (其它 vs 其他), with the reason in Chinese only
    reason = rows[4][col["问题说明（逐条，含收到的值）"]].value
    assert "收到的值：「其它」" in reason and "「法定代表人证件类型」的值不在规定范围内" in reason
    assert "legal_rep_id_type" not in reason and rows[4][col["规则编号"]].value == "legal_rep_id_type.enum"
    assert rows[4][col["法定代表人证件类型"]].fill.fgColor.rgb.endswith("FFC7CE")
    # a date as typed, before normalisation; two reasons → two numbered lines in one wrapped cell
    r5 = rows[5][col["问题说明（逐条，含收到的值）"]]
    assert r5.value.startswith("1. ") and "\n2. " in r5.value and "「2026/02/30」" in r5.value
    assert r5.alignment.wrap_text
    assert rows[5][col["规则编号"]].value.count("\n") == r5.value.count("\n")
    assert ws.row_dimensions[5].height >= 30  # tall enough for both lines
    assert ws.column_dimensions["C"].width >= 40 and ws.freeze_panes == "D2"

    summary = [[c.value for c in r] for r in wb["汇总"].iter_rows()]
    flat = [v for r in summary for v in r if v is not None]
    start = next(i for i, r in enumerate(summary) if r[0] == "信息类别")
    assert summary[start][:4] == ["信息类别", "工作表", "涉及文件", "更正后报送期限"]
    # 7 working days after Wednesday 2026-06-10: 端午节 2026-06-19 is a holiday → 2026-06-22
    assert summary[start + 1][3] == "2026-06-22" and summary[start + 1][4] == 4
    assert summary[start + 2][0] == "合计" and summary[start + 2][4] == 4
    by_reason = next(i for i, r in enumerate(summary) if r[0] == "问题分类统计")
    reasons = {r[3]: r[5] for r in summary[by_reason + 2:] if r[0] == "行政处罚"}
    assert reasons["subject_uscc.uscc"] == 1 and reasons["PEN-FINE"] == 1
    assert summary[-1][0] == "合计" and summary[-1][5] == sum(reasons.values())
    assert any("未通过校验" in str(v) for v in flat)


def test_no_full_resident_id_anywhere_in_the_workbook(tmp_path, contracts):
    path, ids = _night(tmp_path, contracts)
    with zipfile.ZipFile(path) as z:
        xml = "\n".join(z.read(n).decode("utf-8") for n in z.namelist())
    for full in ids:
        assert full not in xml
    assert find_unmasked(xml) == []
    wb = load_workbook(path)
    texts = [str(c.value) for ws in wb for row in ws.iter_rows() for c in row if c.value is not None]
    person = ids[0]
    masked = person[:6] + "********" + person[-4:]
    assert any(masked in t for t in texts)  # masked by the one policy (first 6 + last 4), still recognisable


ALL_DIGIT_BAD_USCC = "115002370000009176"  # a public body's all-digit code, wrong check character


def test_an_all_digit_code_is_shown_as_received_and_a_resident_id_typed_into_it_is_masked(tmp_path, contracts):
    """An all-digit unified social credit code looks like an 18-digit bank card, but a clerk must
    see the code the row was rejected for; a resident ID typed into a code field is still masked."""
    person = fixed_ric("50023719900101123")
    path, _ = _night(tmp_path, contracts, rows=[
        {**GOOD_PENALTY, "decision_no": "D1", "authority_uscc": ALL_DIGIT_BAD_USCC},
        {**GOOD_PENALTY, "decision_no": "D2", "subject_uscc": person},
    ])
    header, rows = _by_row(load_workbook(path)["行政处罚"])
    col = {h: i for i, h in enumerate(header)}
    reasons = col["问题说明（逐条，含收到的值）"]
    assert rows[2][col["处罚机关统一社会信用代码"]].value == ALL_DIGIT_BAD_USCC
    assert f"收到的值：「{ALL_DIGIT_BAD_USCC}」" in rows[2][reasons].value
    masked = person[:6] + "********" + person[-4:]
    assert rows[3][col["统一社会信用代码"]].value == masked
    assert f"收到的值：「{masked}」" in rows[3][reasons].value
    with zipfile.ZipFile(path) as z:
        xml = "".join(z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".xml"))
    assert person not in xml
    assert set(find_unmasked(xml)) == {ALL_DIGIT_BAD_USCC}  # the code, and nothing personal
