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
        assert set(data) == {"rows", "valid", "invalid", "warnings", "errors"}
        assert data["warnings"] == 1
        finding_keys = {"row", "field", "rule", "severity", "message"}
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
    assert code == 2 and err.strip() and out == ""

    code, _out, err = run(capsys, tmp_path / "missing.csv", "--feed", "penalties")
    assert code == 2 and err.strip()

    code, _out, err = run(capsys, wrong, "--feed", "no_such_feed")
    assert code == 2 and "未知信息类别" in err
