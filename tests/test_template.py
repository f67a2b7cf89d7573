"""Submission templates and the catalog document come from the contracts, through the CLI."""

from __future__ import annotations

import openpyxl
from openpyxl.utils import column_index_from_string

from pipelines.cli import main

PENALTY_LABELS = [
    "行政相对人名称", "行政相对人类别", "统一社会信用代码", "工商注册号", "组织机构代码", "税务登记号",
    "事业单位证书号", "社会组织登记证号", "法定代表人", "法定代表人证件类型", "法定代表人证件号码", "证件类型",
    "证件号码", "行政处罚决定书文号", "违法行为类型", "违法事实", "处罚依据", "处罚类别", "处罚内容",
    "罚款金额（万元）", "没收违法所得、没收非法财物的金额（万元）", "暂扣或吊销证照名称及编号", "处罚决定日期",
    "处罚有效期", "公示截止期", "处罚机关", "处罚机关统一社会信用代码", "数据来源单位",
    "数据来源单位统一社会信用代码", "备注",
]
PENALTY_LOCAL = ["案件程序类别", "公示状态", "失信严重程度"]  # local extensions, after the national fields


def _lists_by_column(ws) -> dict[int, str]:
    out = {}
    for dv in ws.data_validations.dataValidation:
        if dv.type != "list":
            continue
        for rng in dv.sqref.ranges:
            assert rng.min_row == 2 and rng.max_row >= 500  # the whole data area, not the header
            out[rng.min_col] = dv.formula1
    return out


def test_penalty_template_via_cli(tmp_path, capsys):
    out = tmp_path / "行政处罚模板.xlsx"
    assert main(["template", "--feed", "penalties", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    wb = openpyxl.load_workbook(out)
    ws = wb.worksheets[0]
    labels = PENALTY_LABELS + PENALTY_LOCAL
    assert [c.value for c in ws[1]] == labels
    assert ws.max_column == 33 and ws.freeze_panes == "A2"
    lists = _lists_by_column(ws)
    enum_cols = {labels.index(n) + 1 for n in ("行政相对人类别", "法定代表人证件类型", "证件类型", "处罚类别", *PENALTY_LOCAL)}
    assert set(lists) == enum_cols
    assert "地方扩展字段" in ws.cell(1, 31).comment.text and "地方扩展字段" not in ws.cell(1, 30).comment.text
    assert ws.cell(1, 31).fill.fgColor.rgb != ws.cell(1, 30).fill.fgColor.rgb
    assert "法人及非法人组织" in lists[2] and "罚款" in lists[18]
    # notes on every header: required-ness and format
    assert "必填" in ws["N1"].comment.text  # 行政处罚决定书文号
    assert "YYYY-MM-DD" in ws.cell(1, PENALTY_LABELS.index("处罚决定日期") + 1).comment.text
    assert "条件必填" in ws["C1"].comment.text
    guide = wb["填报说明"]
    text = "\n".join(str(c.value) for row in guide.iter_rows() for c in row if c.value is not None)
    assert "《行政处罚法》" in text and "7 个工作日" in text and "PEN-FINE" in text
    assert all(label in text for label in PENALTY_LABELS + PENALTY_LOCAL)
    assert "地方扩展" in text and "颜色说明" in text
    assert ws.column_dimensions["P"].width >= 14


def test_template_bytes_are_reproducible_and_unknown_feed_is_refused(tmp_path, capsys):
    a, b = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    assert main(["template", "--feed", "permits", "--out", str(a)]) == 0
    assert main(["template", "--feed", "permits", "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    ws = openpyxl.load_workbook(a).worksheets[0]
    assert ws.max_column == 28
    lists = _lists_by_column(ws)
    assert column_index_from_string("P") in lists  # 许可类别
    assert main(["template", "--feed", "nosuch", "--out", str(tmp_path / "c.xlsx")]) == 2
    assert "nosuch" in capsys.readouterr().err


def test_catalog_markdown_via_cli(capsys):
    assert main(["contracts"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("# 公共信用信息资源目录")
    for feed, title in [("penalties", "行政处罚"), ("permits", "行政许可"), ("utility_arrears", "水电气欠费"),
                        ("agri_subsidies", "涉农补贴"), ("declarations", "决定数量台账"), ("repairs", "信用修复")]:
        assert f"## {title}（`{feed}`）" in md
    section = md.split("## 行政处罚（`penalties`）")[1].split("\n## ")[0]
    assert "| 业务主键 | 行政处罚决定书文号＋处罚机关统一社会信用代码 |" in section
    assert "自处罚决定日期起 7 个工作日内报送" in section
    assert "| 20 | 罚款金额（万元） | CF_NR_FK | `fine_amount` |" in section
    assert "| `PEN-FINE` |" in section and "罚款金额（万元）必须填写且大于0" in section
    assert "个人信息（公开时遮蔽）" in section
    registry = md.split("## 报送部门")[1]
    assert "| `zfcxjw` | 巫山县住房和城乡建设委员会 |" in registry and "接口" in registry
