"""credit-etl check: exit codes 0/1/2 and the JSON shape, on real CSV (UTF-8, GBK) and XLSX files."""

from __future__ import annotations

import csv
import json
from datetime import date

import pytest
from openpyxl import Workbook

from pipelines.cli import main
from validate_helpers import GOOD_PENALTY

ingest = pytest.importorskip("assets.ingest")
if not hasattr(ingest, "read_file"):
    pytest.skip("assets.ingest.read_file not available yet", allow_module_level=True)

RECEIVED = "2026-06-10"


def penalty_rows(bad: bool):
    rows = [{**GOOD_PENALTY, "decision_no": "巫市监罚〔2026〕11号"}, {**GOOD_PENALTY, "decision_no": "巫市监罚〔2026〕12号", "org_code": "12345678-9"}]
    if bad:
        rows.append({**GOOD_PENALTY, "decision_no": "巫市监罚〔2026〕13号", "decision_date": "2026-02-30"})
        rows.append({**GOOD_PENALTY, "decision_no": "巫市监罚〔2026〕14号", "fine_amount": ""})
    return rows


def write_csv(path, contract, rows, encoding):
    with open(path, "w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow([f.label for f in contract.fields])
        for r in rows:
            w.writerow([r.get(f.name) or "" for f in contract.fields])


def write_xlsx(path, contract, rows):
    wb = Workbook()
    ws = wb.active
    ws.append([f.label for f in contract.fields])
    for r in rows:
        ws.append([r.get(f.name) or None for f in contract.fields])
    wb.save(path)


def run(capsys, *args):
    code = main(["check", *map(str, args), "--received", RECEIVED])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("kind", ["utf-8", "gbk", "xlsx"])
def test_good_and_bad_files(tmp_path, capsys, contracts, kind):
    P = contracts["penalties"]
    for bad in (False, True):
        path = tmp_path / f"{'bad' if bad else 'good'}.{'xlsx' if kind == 'xlsx' else 'csv'}"
        if kind == "xlsx":
            write_xlsx(path, P, penalty_rows(bad))
        else:
            write_csv(path, P, penalty_rows(bad), kind)
        code, out, _err = run(capsys, path, "--feed", "penalties", "--format", "json")
        data = json.loads(out)
        assert set(data) == {"file", "feed", "status", "message", "hint", "suggested_feed", "rows", "valid", "invalid",
                             "warnings", "errors"}
        assert (data["status"], data["feed"], data["hint"]) == ("checked", "penalties", None)
        assert data["warnings"] == 1
        finding_keys = {"row", "field", "label", "rule", "severity", "message", "value"}
        assert all(set(e) == finding_keys for e in data["errors"])
        warn = [e for e in data["errors"] if e["severity"] == "warning"]
        assert [(e["row"], e["rule"]) for e in warn] == [(3, "org_code.org_code")]
        if not bad:
            assert code == 0 and (data["rows"], data["valid"], data["invalid"]) == (2, 2, 0)
        else:
            assert code == 1 and (data["rows"], data["valid"], data["invalid"]) == (4, 2, 2)
            errs = sorted((e["row"], e["rule"]) for e in data["errors"] if e["severity"] == "error")
            assert errs == [(4, "decision_date.type"), (5, "PEN-FINE")]
        code_text, text, _ = run(capsys, path, "--feed", "penalties")
        assert code_text == code
        assert ("不合格 2 行" in text) == bad and "共 " in text


def test_unreadable_and_mismatched_files(tmp_path, capsys, contracts):
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"\x00\x01\x02 not a workbook \xff\xfe")
    code, out, err = run(capsys, junk, "--feed", "penalties")
    assert code == 2 and err.strip() and out == ""

    wrong = tmp_path / "wrong.csv"
    wrong.write_text("姓名,年龄\n张三,30\n", encoding="utf-8")
    code, out, err = run(capsys, wrong, "--feed", "penalties", "--format", "json")
    data = json.loads(out)  # JSON also when the file cannot be checked; the exit code stays 2
    assert code == 2 and data["status"] == "unreadable" and "缺少必填列" in data["message"]
    assert data["hint"] is None and data["errors"] == []

    code, _out, err = run(capsys, tmp_path / "missing.csv", "--feed", "penalties")
    assert code == 2 and err.strip()

    code, _out, err = run(capsys, wrong, "--feed", "no_such_feed")
    assert code == 2 and "未知信息类别" in err


def test_feed_by_chinese_name_or_label_and_unknown_feed_listed_in_chinese(tmp_path, capsys, contracts):
    P = contracts["penalties"]
    path = tmp_path / "处罚.csv"
    write_csv(path, P, penalty_rows(False), "utf-8")
    for name in ("行政处罚", "行政处罚（penalties）", "行政处罚信息", "PENALTIES"):
        code, out, _ = run(capsys, path, "--feed", name, "--format", "json")
        assert code == 0 and json.loads(out)["feed"] == "penalties", name
    code, out, err = run(capsys, path, "--feed", "不存在的类别")
    assert code == 2 and out == "" and "未知信息类别：不存在的类别" in err and "行政处罚（penalties）" in err
    code, out, _ = run(capsys, path, "--feed", "不存在的类别", "--format", "json")
    assert code == 2 and json.loads(out)["status"] == "unknown_feed"


def test_header_of_another_feed_is_named(tmp_path, capsys, contracts):
    """A penalties file checked as permits: the required permit columns are missing, and the
    output says which feed the header matches."""
    path = tmp_path / "处罚.csv"
    write_csv(path, contracts["penalties"], penalty_rows(True), "gbk")
    code, out, err = run(capsys, path, "--feed", "permits")
    assert code == 2 and "缺少必填列" in err
    assert "这像是「行政处罚」文件，请使用 --feed penalties" in err
    code, out, _ = run(capsys, path, "--feed", "行政许可", "--format", "json")
    data = json.loads(out)
    assert code == 2 and data["suggested_feed"] == "penalties"
    assert data["hint"] == "这像是「行政处罚」文件，请使用 --feed penalties"


def test_unreadable_file_in_json_keeps_exit_code(tmp_path, capsys):
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"\x00\x01\x02 not a workbook \xff\xfe")
    code, out, err = run(capsys, junk, "--feed", "penalties", "--format", "json")
    data = json.loads(out)
    assert code == 2 and err == ""
    assert data["status"] == "unreadable" and data["file"] == "junk.xlsx" and data["message"]
    code, out, _ = run(capsys, tmp_path / "missing.csv", "--feed", "penalties", "--format", "json")
    assert code == 2 and json.loads(out)["status"] == "unreadable"


def test_error_lines_show_the_value_as_received_masked_when_personal(tmp_path, capsys, contracts):
    from validate_helpers import fixed_ric

    P = contracts["penalties"]
    person = fixed_ric("50023719900101123")
    bad_person = person[:-1] + ("0" if person[-1] != "0" else "1")
    rows = [
        {**GOOD_PENALTY, "decision_no": "巫市监罚〔2026〕21号", "legal_rep_id_type": "其它"},
        {**GOOD_PENALTY, "decision_no": "巫市监罚〔2026〕22号", "subject_uscc": "９１５００１０５ＭＡ５ＵＭ６ＴＦ７９"},
        {**GOOD_PENALTY, "decision_no": "巫市监罚〔2026〕23号", "subject_kind": "自然人", "subject_uscc": "",
         "legal_rep": "", "subject_id_type": "身份证", "subject_id_no": bad_person},
    ]
    path = tmp_path / "处罚.csv"
    write_csv(path, P, rows, "utf-8")
    code, text, _ = run(capsys, path, "--feed", "penalties")
    assert code == 1
    lines = text.splitlines()
    assert any("第 2 行" in l and "收到的值：「其它」" in l and "（legal_rep_id_type.enum）" in l for l in lines)
    # as received: full-width, not the normalised half-width code
    assert any("第 3 行" in l and "收到的值：「９１５００１０５ＭＡ５ＵＭ６ＴＦ７９」" in l for l in lines)
    masked = bad_person[:6] + "********" + bad_person[-4:]
    assert any("第 4 行" in l and f"收到的值：「{masked}」" in l for l in lines)
    assert bad_person not in text
    code, out, _ = run(capsys, path, "--feed", "penalties", "--format", "json")
    values = {(e["row"], e["rule"]): e["value"] for e in json.loads(out)["errors"]}
    assert values[(4, "subject_id_no.ric")] == masked and bad_person not in out
    assert values[(3, "subject_uscc.uscc")] == "９１５００１０５ＭＡ５ＵＭ６ＴＦ７９"
