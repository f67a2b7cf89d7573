"""validate_frame outputs, validate_day files and conservation, feedback workbooks."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from openpyxl import load_workbook

from assets.validate import mask_value, validate_day, validate_frame, write_feedback
from contracts import load_registry
from validate_helpers import GOOD_PENALTY, RECEIVED, fixed_ric, staged
from warehouse.layout import DataDir


def rows():
    person_id = fixed_ric("50023719900101123")
    bad_id = person_id[:-1] + ("0" if person_id[-1] != "0" else "1")
    return [
        {**GOOD_PENALTY, "decision_no": "A1"},
        {**GOOD_PENALTY, "decision_no": "A2", "decision_date": None},
        {**GOOD_PENALTY, "decision_no": "A3", "subject_kind": "自然人", "subject_uscc": None, "legal_rep": None,
         "subject_id_type": "身份证", "subject_id_no": bad_id},
        {**GOOD_PENALTY, "decision_no": "=HYPERLINK(\"http://x\",\"y\")", "violation_facts": "+1+cmd|' /C calc'!A0",
         "penalty_content": "-2+3", "remarks": "@SUM(1)", "authority": "\t=1+1", "fine_amount": "0"},
        {**GOOD_PENALTY, "decision_no": "A5", "org_code": "12345678-9"},
    ]


def test_validate_frame_shapes_and_masking(contracts):
    P = contracts["penalties"]
    df = staged(P, rows())
    res = validate_frame(P, df)
    assert len(res.passed) + len(res.quarantined) == len(df)
    assert list(res.passed["decision_no"]) == ["A1", "A5"]
    assert list(res.passed["_warnings"]) == [None, "org_code.org_code"]
    assert list(res.failures.columns) == ["_file_id", "_row_no", "_dept", "feed", "rule_id", "field", "severity", "message", "value"]
    ric = res.failures[res.failures["rule_id"] == "subject_id_no.ric"].iloc[0]
    assert ric["value"] == rows()[2]["subject_id_no"][:6] + "********" + rows()[2]["subject_id_no"][-4:]
    assert ric["_row_no"] == 4 and ric["_dept"] == "scjgj" and ric["feed"] == "penalties"
    assert set(res.quarantined.columns) == set(df.columns)


def test_mask_value():
    assert mask_value("500237199001011234") == "500237********1234"
    assert mask_value("13812345678", "phone") == "138****5678"
    assert mask_value("ab") == "**"
    assert mask_value(None) is None


def _stage(tmp_path, contract, frame, name):
    folder = DataDir(tmp_path).staging_dir(contract.feed, RECEIVED)
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(table.schema.get_field_index("_received_date"), "_received_date",
                             pa.array([RECEIVED] * len(frame), pa.date32()))
    pq.write_table(table, folder / f"{name}.parquet")


def test_validate_day_and_feedback(tmp_path, contracts):
    P = contracts["penalties"]
    _stage(tmp_path, P, staged(P, rows(), file_id="f1", source="处罚0610.csv"), "f1")
    _stage(tmp_path, P, staged(P, rows()[:2], file_id="f2", dept="jtysj", source="交通.csv"), "f2")
    summary = validate_day(tmp_path, RECEIVED, {"penalties": P, "permits": contracts["permits"]})
    s = summary.feeds["penalties"]
    assert (s.received, s.passed, s.quarantined, s.warning_rows) == (7, 3, 4, 1)
    assert s.conserved and summary.conserved
    assert abs(s.compliance_rate - 3 / 7) < 1e-9
    assert s.errors_by_rule["decision_date.required"] == 2
    assert "permits" not in summary.feeds
    out = DataDir(tmp_path).validated_dir("penalties", RECEIVED)
    passed = pq.read_table(out / "passed.parquet")
    quarantined = pq.read_table(out / "quarantined.parquet")
    failures = pq.read_table(out / "failures.parquet")
    assert passed.num_rows + quarantined.num_rows == 7
    assert passed.schema.field("_received_date").type == pa.date32()
    assert "_warnings" in passed.column_names and "_warnings" not in quarantined.column_names
    assert failures.schema.field("_row_no").type == pa.int64()

    registry = load_registry(contracts=contracts)
    paths = write_feedback(tmp_path, RECEIVED, {"penalties": P}, registry)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "reports/feedback/jtysj/巫山县交通运输局_2026-06-10_校验反馈.xlsx",
        "reports/feedback/scjgj/巫山县市场监督管理局_2026-06-10_校验反馈.xlsx"]
    first = [p.read_bytes() for p in paths]
    assert [p.read_bytes() for p in write_feedback(tmp_path, RECEIVED, {"penalties": P}, registry)] == first

    wb = load_workbook(paths[1])
    assert wb.sheetnames == ["汇总", "行政处罚"]
    ws = wb["行政处罚"]
    header = [c.value for c in ws[1]]
    assert header[:4] == ["原文件名", "原行号", "问题说明（逐条，含收到的值）", "规则编号"] and "行政相对人名称" in header
    cells = [c for row in ws.iter_rows() for c in row] + [c for row in wb["汇总"].iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"], "a cell would be executed as a formula"
    values = {c.value for c in cells}
    for text in ["=HYPERLINK(\"http://x\",\"y\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "\t=1+1"]:
        assert text in values  # kept exactly as received, stored as text
    by_row = {ws.cell(r, 2).value: (ws.cell(r, 3).value, ws.cell(r, 4).value) for r in range(2, ws.max_row + 1)}
    assert set(by_row) == {3, 4, 5}
    assert "「处罚决定日期」为必填项；收到的值：（空）" in by_row[3][0] and by_row[3][1] == "decision_date.required"
    assert "PEN-FINE" in by_row[5][1] and "PEN-FINE" not in by_row[5][0]
    assert "decision_date" not in by_row[3][0]  # no internal ids in the reasons
    full_id = rows()[2]["subject_id_no"]
    assert full_id not in by_row[4][0] and full_id[:6] + "********" + full_id[-4:] in by_row[4][0]
    summary = [[c.value for c in r] for r in wb["汇总"].iter_rows()]
    feeds = next(i for i, r in enumerate(summary) if r[0] == "信息类别")
    assert summary[feeds + 1][:2] == ["行政处罚", "行政处罚"] and summary[feeds + 1][4] == 3
    assert summary[feeds + 2][0] == "合计" and summary[feeds + 2][4] == 3
