"""Record status rules on a real DuckDB file: repair eligibility by tier and by the display regime in
force on the decision date, objections marked or withheld (a contract setting), status as of a day."""

from __future__ import annotations

import csv
from datetime import date

import duckdb
import pytest
from stdnum.cn import uscc

from assets.credit_status import write_share_export
from assets.load import load_day
from validated_builder import AUTH_A, file_id, penalty, write_validated
from warehouse.layout import DataDir
from warehouse.masking import find_unmasked
from warehouse.record_status import status_sql

DAY = date(2026, 10, 20)


def repair(no: str, on: str, row: int) -> dict:
    return {"target_feed": "penalties", "decision_no": no, "authority_uscc": AUTH_A, "repair_date": on,
            "repair_unit": "巫山县发展和改革委员会", "_file_id": file_id("r1"), "_row_no": row, "_dept": "fgw"}


def objection(no: str, target: str, row: int, outcome: str | None = None, on: str | None = None) -> dict:
    return {"objection_no": no, "target_feed": "penalties", "decision_no": target, "authority_uscc": AUTH_A,
            "subject_name": "李四", "subject_kind": "自然人", "subject_id_no": "50023719900307123X", "reason": "有误",
            "filed_date": "2026-10-15", "outcome": outcome, "outcome_date": on, "handling_unit": "巫山县市场监督管理局",
            "_file_id": file_id("o1"), "_row_no": row, "_dept": "fgw"}


@pytest.fixture
def dd(tmp_path, contracts):
    dd = DataDir(tmp_path / "data")
    pens = [
        # 严重 decided under the 2019 rules: at least 6 months → 2026-03-10; repaired 2026-09-01: applied
        penalty("S19", "2025-09-10", row=2, severity_tier="严重", display_end="2027-09-01"),
        # 严重 decided under the 2026 rules: at least 12 months → 2027-05-06; repaired 2026-10-01: too early
        penalty("S26", "2026-05-06", row=3, severity_tier="严重", display_end="2027-06-01"),
        # 一般 2026: 3 months → 2026-08-06; repaired on the last allowed-from day: applied
        penalty("G26", "2026-05-06", row=4, display_end="2027-04-01"),
        # 一般, repaired one day before its minimum end: not applied
        penalty("G26b", "2026-05-07", row=5, display_end="2027-04-01"),
        penalty("O1", "2026-10-09", row=6, display_end="2027-04-01"),   # objection open
        penalty("O2", "2026-10-09", row=7, display_end="2027-04-01"),   # objection decided 维持
    ]
    write_validated(dd, contracts["penalties"], DAY, passed=pens)
    write_validated(dd, contracts["repairs"], DAY, passed=[
        repair("S19", "2026-09-01", 2), repair("S26", "2026-10-01", 3), repair("G26", "2026-08-06", 4),
        repair("G26b", "2026-08-06", 5)])
    write_validated(dd, contracts["objections"], DAY, passed=[
        objection("YY1", "O1", 2), objection("YY2", "O2", 3, "维持", "2026-10-18")])
    load_day(dd, DAY, contracts)
    return dd


def statuses(dd: DataDir, contracts, as_of=None) -> dict[str, tuple[str, str]]:
    con = duckdb.connect(str(dd.db_path), read_only=True)
    try:
        sql = status_sql(contracts["penalties"], contracts, as_of)
        return {r[0]: (r[1], r[2]) for r in con.execute(f"SELECT decision_no, _status, _status_cause FROM ({sql})").fetchall()}
    finally:
        con.close()


def test_repair_eligibility_follows_tier_and_regime_of_the_decision_date(dd, contracts):
    st = statuses(dd, contracts, DAY)
    assert st["S19"][0] == "已修复" and "2026-09-01" in st["S19"][1]
    assert st["S26"][0] == "公示中"
    assert st["G26"][0] == "已修复"
    assert st["G26b"][0] == "公示中"
    assert st["O1"] == ("异议中", "异议 YY1 于 2026-10-15 提出，正在处理")
    assert st["O2"][0] == "公示中" and "维持" in st["O2"][1]
    # as of the day before they were received, the office knew none of it
    assert statuses(dd, contracts, date(2026, 10, 19)) == {}
    # today (no as-of day): the current tables, the same answers
    assert statuses(dd, contracts) == st


def test_objections_marked_or_withheld_by_contract_setting(dd, contracts):
    con = duckdb.connect(str(dd.db_path), read_only=True)
    try:
        shown = dict(con.execute("SELECT decision_no, _status FROM public_penalties").fetchall())
        withheld = dict(contracts)
        obj = contracts["objections"]
        withheld["objections"] = obj.model_copy(update={"objection": obj.objection.model_copy(update={"while_open": "withhold"})})
        hidden = {r[0] for r in con.execute(
            f"SELECT decision_no FROM ({status_sql(contracts['penalties'], withheld, None)}) WHERE _published").fetchall()}
    finally:
        con.close()
    assert shown == {"S26": "公示中", "G26b": "公示中", "O1": "异议中", "O2": "公示中"}
    assert hidden == {"S26", "G26b", "O2"}


def test_shared_export_masks_and_leaves_out_repaired_records(dd, contracts):
    summary = write_share_export(dd, DAY, contracts)
    with open(dd.share_file(DAY, "penalties"), encoding="utf-8-sig") as fh:
        text = fh.read()
    rows = list(csv.DictReader(text.splitlines()))
    assert sorted(r["行政处罚决定书文号"] for r in rows) == ["G26b", "O1", "O2", "S26"]
    assert {r["公示状态"] for r in rows} == {"公示中", "异议中"}
    assert {r["证件号码"] for r in rows} == {"500237********123X"}
    assert not [m for m in find_unmasked(text) if not uscc.is_valid(m)]
    assert summary.shared["penalties"] == 4


def test_shared_export_bytes_are_the_rows_formatted_by_python_csv(dd, contracts):
    """DuckDB writes the share file (its CSV writer, in parallel): its bytes are those of the
    night's shared rows formatted by Python's csv module, in key order."""
    from assets.credit_status import status
    from warehouse.db import connect

    summary = write_share_export(dd, DAY, contracts)
    with connect(dd, read_only=True) as con:
        header, rows = status.share_rows(con, contracts["penalties"], contracts, DAY)
    assert len(rows) == summary.shared["penalties"] == 4
    assert dd.share_file(DAY, "penalties").read_bytes() == status._csv_bytes(header, rows)
    assert not [p for p in dd.share_file(DAY, "penalties").parent.iterdir() if p.name.startswith(".")]


def test_share_command_writes_the_full_snapshot_on_request(dd, contracts, capsys):
    """Nightly runs write the night's changes once a first export exists; ``credit-etl share``
    writes the full snapshot of a night on request, beside that night's changes."""
    from assets.credit_status import status
    from pipelines.cli import main
    from warehouse.db import connect

    def changes(day):
        with open(dd.share_changes_file(day, "penalties"), encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
        assert reader.fieldnames[0] == "变更类型" and reader.fieldnames[-1] == "公示状态"
        return {(r["变更类型"], r["行政处罚决定书文号"], r["公示状态"]) for r in rows}

    write_share_export(dd, DAY, contracts)  # the first export: the snapshot only
    assert dd.share_file(DAY, "penalties").exists() and not dd.share_changes_file(DAY, "penalties").exists()
    quiet = date(2026, 11, 1)  # nothing changes: the header only, no snapshot
    s = write_share_export(dd, quiet, contracts)
    assert changes(quiet) == set() and not dd.share_file(quiet, "penalties").exists() and s.shared["penalties"] == 4
    later = date(2027, 5, 1)  # G26b's and O2's display periods ended on 2027-04-01
    s = write_share_export(dd, later, contracts)
    assert changes(later) == {("撤下", "G26b", "已到期"), ("撤下", "O2", "已到期")} and s.shared["penalties"] == 2
    assert not dd.share_file(later, "penalties").exists()
    assert main(["--data-dir", str(dd.root), "share", "--day", later.isoformat()]) == 0
    assert str(dd.share_file(later, "penalties")) in capsys.readouterr().out
    with connect(dd, read_only=True) as con:
        h, rows = status.share_rows(con, contracts["penalties"], contracts, later)
    assert dd.share_file(later, "penalties").read_bytes() == status._csv_bytes(h, rows)
    at = h.index("行政处罚决定书文号")
    assert sorted(r[at] for r in rows) == ["O1", "S26"]
    assert changes(later) == {("撤下", "G26b", "已到期"), ("撤下", "O2", "已到期")}  # rewritten, same rows
