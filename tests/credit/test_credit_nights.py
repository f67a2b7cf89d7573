"""Objections, credit repair, red/black lists and commitments, replayed night by night through the
real nightly Dagster job (``run_night``: ingest → … → record statuses → cross-comparison) on real
department CSV files, a real DuckDB file and the real ``credit-etl profile`` command.

Story (received nights 12–15 October 2026; the 市场监管局 sends penalties, the 信用办 sends
objections, repairs, the black list and commitments, the 农业农村委 a subsidy):

- night 1: six penalties arrive, all 公示中; a commitment by company F; person G on the black list.
- night 2: objections about B's, C's and D's penalties (异议中, still shown, marked); a repair of
  E's older penalty after its 3-month minimum (已修复: no longer published or shared) and one of
  E's recent penalty before it (not applied, flagged); a penalty against F (commitment broken).
- night 3: B's objection decided 维持 (公示中 again); C's decided 更正 with a corrected version
  (fine changed); a subsidy paid to G while black-listed (flagged).
- night 4: D's objection decided 撤销 (已撤销: withdrawn from the public view and the export).

At each night the public view, the shared export, the profile and the cross-check report are
checked; at the end the history still holds every version and every status change.
"""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import date

import dagster as dg
import duckdb
import pytest
from openpyxl import load_workbook
from stdnum.cn import uscc

from contracts import load_contracts, load_registry
from pipelines.cli import main
from pipelines.nightly import run_night
from pipelines.samples.http import start_sample_server
from pipelines.samples.ids import make_ric, make_uscc
from warehouse.layout import DataDir
from warehouse.masking import find_unmasked

N1, N2, N3, N4 = date(2026, 10, 12), date(2026, 10, 13), date(2026, 10, 14), date(2026, 10, 15)
SCJGJ = ("巫山县市场监督管理局", "11500237743131669T")
FGW = ("巫山县发展和改革委员会（信用办）", "11500237716605742P")
NYNCW = ("巫山县农业农村委员会", "1150023740505826XK")

rng = random.Random(14)
UB, UD, UE, UF = (make_uscc(rng, "91") for _ in range(4))
IDC = make_ric(rng, today=date(2026, 1, 1))
IDG = make_ric(rng, today=date(2026, 1, 1))


def org(name: str, uscc: str) -> dict:
    return {"subject_name": name, "subject_kind": "法人及非法人组织", "subject_uscc": uscc, "legal_rep": "张三"}


def person(name: str, id_no: str) -> dict:
    return {"subject_name": name, "subject_kind": "自然人", "subject_id_type": "身份证", "subject_id_no": id_no}


def penalty(no: str, decided: str, display_end: str, subject: dict, fine: str = "0.5") -> dict:
    return subject | {
        "decision_no": no, "violation_type": "销售过期食品", "violation_facts": "经查，当事人销售过期食品",
        "penalty_basis": "《中华人民共和国食品安全法》第一百二十四条", "penalty_category": "罚款",
        "penalty_content": f"罚款人民币{int(float(fine) * 10000)}元", "fine_amount": fine, "decision_date": decided,
        "penalty_valid_until": "2099-12-31", "display_end": display_end, "procedure_kind": "一般程序",
        "authority": SCJGJ[0], "authority_uscc": SCJGJ[1], "source_unit": SCJGJ[0], "source_unit_uscc": SCJGJ[1],
    }


def objection(no: str, decision_no: str, subject: dict, filed: str, outcome: str | None = None, on: str | None = None) -> dict:
    s = {k: v for k, v in subject.items() if k in ("subject_name", "subject_kind", "subject_uscc", "subject_id_no")}
    return s | {"objection_no": no, "target_feed": "行政处罚", "decision_no": decision_no, "authority_uscc": SCJGJ[1],
                "reason": "申请人认为记录有误", "filed_date": filed, "outcome": outcome, "outcome_date": on,
                "handling_unit": SCJGJ[0]}


PEN = {
    "B": penalty("巫市监罚〔2026〕501号", "2026-10-09", "2027-04-09", org("重庆乙商贸有限公司", UB)),
    "C": penalty("巫市监罚〔2026〕502号", "2026-10-09", "2027-04-09", person("陈丙", IDC)),
    "D": penalty("巫市监罚〔2026〕503号", "2026-10-09", "2027-04-09", org("重庆丁餐饮有限公司", UD)),
    "E_old": penalty("巫市监罚〔2026〕201号", "2026-05-06", "2027-05-01", org("重庆戊建材有限公司", UE)),
    "E_new": penalty("巫市监罚〔2026〕480号", "2026-09-01", "2027-03-01", org("重庆戊建材有限公司", UE)),
    "X": penalty("巫市监罚〔2026〕504号", "2026-10-09", "2027-04-09", org("重庆己化工有限公司", make_uscc(rng, "91"))),
}
PEN_F = penalty("巫市监罚〔2026〕520号", "2026-10-12", "2027-04-12", org("重庆庚运输有限公司", UF))


def write_csv(root, dept: str, feed: str, day: date, rows: list[dict]) -> None:
    contract = load_contracts()[feed]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([f.label for f in contract.fields])
    for r in rows:
        w.writerow(["" if r.get(f.name) is None else r[f.name] for f in contract.fields])
    path = DataDir(root).inbox / dept / feed / day.isoformat() / f"{contract.title}_{day:%Y%m%d}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8")


def write_nights(root) -> None:
    write_csv(root, "scjgj", "penalties", N1, list(PEN.values()))
    write_csv(root, "fgw", "commitments", N1, [{
        "commitment_no": "CN001", "subject_name": "重庆庚运输有限公司", "subject_kind": "法人及非法人组织", "subject_uscc": UF,
        "commitment_kind": "审批替代型", "content": "遵守道路运输法规，诚信经营", "commitment_date": "2026-09-01",
        "issuer": SCJGJ[0], "issuer_uscc": SCJGJ[1]}])
    write_csv(root, "fgw", "blacklist", N1, [{
        "subject_name": "郭辛", "subject_kind": "自然人", "subject_id_no": IDG, "list_name": "失信被执行人名单",
        "decision_no": "巫信列〔2026〕9号", "listing_reason": "有履行能力而拒不履行生效法律文书确定义务", "authority": FGW[0],
        "authority_uscc": FGW[1], "listed_date": "2026-09-01"}])
    write_csv(root, "fgw", "objections", N2, [
        objection("YY001", PEN["B"]["decision_no"], PEN["B"], "2026-10-13"),
        objection("YY002", PEN["C"]["decision_no"], PEN["C"], "2026-10-13"),
        objection("YY003", PEN["D"]["decision_no"], PEN["D"], "2026-10-13"),
    ])
    write_csv(root, "fgw", "repairs", N2, [
        {"target_feed": "行政处罚", "decision_no": PEN["E_old"]["decision_no"], "authority_uscc": SCJGJ[1],
         "repair_date": "2026-10-12", "repair_unit": FGW[0]},
        {"target_feed": "行政处罚", "decision_no": PEN["E_new"]["decision_no"], "authority_uscc": SCJGJ[1],
         "repair_date": "2026-10-12", "repair_unit": FGW[0]},
    ])
    write_csv(root, "scjgj", "penalties", N2, [PEN_F])
    write_csv(root, "fgw", "objections", N3, [
        objection("YY001", PEN["B"]["decision_no"], PEN["B"], "2026-10-13", "维持", "2026-10-14"),
        objection("YY002", PEN["C"]["decision_no"], PEN["C"], "2026-10-13", "更正", "2026-10-14"),
    ])
    write_csv(root, "scjgj", "penalties", N3, [PEN["C"] | {"fine_amount": "0.2", "penalty_content": "罚款人民币2000元"}])
    write_csv(root, "nyncw", "agri_subsidies", N3, [{
        "claim_no": "GD5002372026009001", "county": "巫山县", "township": "龙门街道", "recipient_name": "郭辛",
        "recipient_kind": "自然人", "recipient_id_no": IDG, "subsidy_type": "耕地地力保护补贴", "contracted_area": "12", "subsidised_area": "10",
        "rate": "105.5", "total_subsidy": "1055.00", "status": "已发放", "payment_date": "2026-10-13",
        "granting_unit": NYNCW[0], "granting_unit_uscc": NYNCW[1]}])
    write_csv(root, "fgw", "objections", N4, [
        objection("YY003", PEN["D"]["decision_no"], PEN["D"], "2026-10-13", "撤销", "2026-10-15"),
    ])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("credit") / "data"
    write_nights(root)
    registry = load_registry(contracts=load_contracts())
    tokens = {}
    with pytest.MonkeyPatch.context() as mp:
        for dept in registry.departments:
            for delivery in dept.delivery.values():
                if delivery.kind == "http":
                    mp.setenv(delivery.token_env, "t")
                    tokens[dept.code] = "t"
        server, base = start_sample_server(root, tokens=tokens)
        mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        try:
            yield DataDir(root), base, dg.DagsterInstance.ephemeral()
        finally:
            server.stop()


def night(world, day: date) -> DataDir:
    dd, base, instance = world
    result = run_night(dd.root, day, http_base=base, instance=instance)
    assert result.success and not result.failed_checks, result.describe()
    return dd


def public(dd: DataDir) -> dict[str, str]:
    con = duckdb.connect(str(dd.db_path), read_only=True)
    try:
        return dict(con.execute("SELECT decision_no, _status FROM public_penalties").fetchall())
    finally:
        con.close()


def shared(dd: DataDir, day: date) -> dict[str, str]:
    """What a receiving platform holds after night ``day``: the first night's snapshot, then each
    later night's changes (新增/更新/撤下) applied in order."""
    nights = sorted(p.name for p in dd.share.iterdir() if p.name <= day.isoformat())
    held: dict[str, str] = {}
    for n in nights:
        snapshot, changes = dd.share_file(n, "penalties"), dd.share_changes_file(n, "penalties")
        if changes.exists():
            with open(changes, encoding="utf-8-sig") as fh:
                for r in csv.DictReader(fh):
                    if r["变更类型"] == "撤下":
                        held.pop(r["行政处罚决定书文号"])
                    else:
                        held[r["行政处罚决定书文号"]] = r["公示状态"]
        else:
            with open(snapshot, encoding="utf-8-sig") as fh:
                held = {r["行政处罚决定书文号"]: r["公示状态"] for r in csv.DictReader(fh)}
    assert nights and not dd.share_changes_file(nights[0], "penalties").exists()
    return held


def report(dd: DataDir, day: date) -> list[dict]:
    ws = load_workbook(dd.crosscheck_file(day), read_only=True)["比对结果"]
    rows = list(ws.iter_rows(values_only=True))
    header = list(rows[1])
    return [dict(zip(header, r)) for r in rows[2:] if r[0] not in (None, "")]


def audit_count(dd: DataDir) -> int:
    con = duckdb.connect(str(dd.db_path), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM profile_queries").fetchone()[0]
    finally:
        con.close()


def profile(dd: DataDir, subject: str, capsys, *extra: str) -> dict:
    before = audit_count(dd)
    assert main(["--data-dir", str(dd.root), "profile", subject, "--format", "json", "--reason", "答复主体投诉",
                 "--operator", "信用办张科员", *extra]) == 0
    out = capsys.readouterr().out
    assert audit_count(dd) == before + 1  # every query leaves exactly one register row
    # an all-digit USCC looks like a card number to the scanner: only valid USCCs are allowed through
    assert not [m for m in find_unmasked(out) if not uscc.is_valid(m)], "a personal identifier left unmasked"
    return json.loads(out)


def by_ref(p: dict) -> dict[str, dict]:
    return {r["reference"]: r for r in p["records"]}


def kinds(rows: list[dict]) -> list[str]:
    return sorted(r["发现类型"] for r in rows)


def test_nights_one_to_four(world, capsys):
    dd = night(world, N1)
    no = {k: v["decision_no"] for k, v in PEN.items()}
    assert public(dd) == {n: "公示中" for n in no.values()}
    assert shared(dd, N1) == {n: "公示中" for n in no.values()}
    assert report(dd, N1) == []  # the report is written even when nothing is found
    p = profile(dd, IDC, capsys)
    assert p["subject"]["identifier"] != IDC and p["subject"]["identifier"].startswith(IDC[:6])
    assert [r["status"] for r in p["records"]] == ["公示中"]
    assert profile(dd, UF, capsys)["commitments"][0]["state"] == "履约中"

    # night 2: objections, repairs, the penalty that breaks F's commitment
    night(world, N2)
    pub = public(dd)
    assert {pub[no[k]] for k in "BCD"} == {"异议中"}
    assert no["E_old"] not in pub, "a repair after the minimum period stops publication"
    assert pub[no["E_new"]] == "公示中", "a repair before the minimum period is not applied"
    exp = shared(dd, N2)
    assert no["E_old"] not in exp and exp[no["E_new"]] == "公示中" and exp[no["C"]] == "异议中"
    found = report(dd, N2)
    assert kinds(found) == ["信用修复不符合条件", "信用承诺未履行"]
    early = next(r for r in found if r["发现类型"] == "信用修复不符合条件")
    assert "最短公示3个月" in early["原因"] and "2026-12-01" in early["原因"]
    broken = next(r for r in found if r["发现类型"] == "信用承诺未履行")
    assert broken["主体标识"] == UF and "承诺未履行" in broken["原因"] and broken["今晚新发现"] == "是"
    pe = by_ref(profile(dd, UE, capsys))
    assert pe[no["E_old"]]["status"] == "已修复" and pe[no["E_new"]]["status"] == "公示中"
    pf = profile(dd, UF, capsys)
    assert pf["commitments"][0]["state"] == "未履行" and no["X"] not in by_ref(pf)
    pc = profile(dd, IDC, capsys)
    assert pc["records"][0]["status"] == "异议中" and pc["objections"][0]["outcome"] == "处理中"

    # night 3: 维持 and 更正 (with a corrected version), a subsidy to a black-listed person
    night(world, N3)
    pub = public(dd)
    assert pub[no["B"]] == "公示中" and pub[no["C"]] == "公示中" and pub[no["D"]] == "异议中"
    found = report(dd, N3)
    assert kinds(found) == ["信用修复不符合条件", "信用承诺未履行", "黑名单主体获得许可、补贴或红名单"]
    black = next(r for r in found if r["发现类型"].startswith("黑名单"))
    assert black["主体标识"] == IDG[:6] + "********" + IDG[-4:]
    assert "失信被执行人名单" in black["原因"] and "获得涉农补贴发放" in black["原因"] and black["今晚新发现"] == "是"
    assert next(r for r in found if r["发现类型"] == "信用承诺未履行")["今晚新发现"] == "否"
    pc = by_ref(profile(dd, IDC, capsys))[no["C"]]
    assert pc["status"] == "公示中" and "更正" in pc["status_cause"]
    assert [v["changed_fields"] for v in pc["versions"]] == [[], ["处罚内容", "罚款金额（万元）"]]
    assert pc["fields"]["罚款金额（万元）"] == "0.2"
    pg = profile(dd, IDG, capsys)
    assert pg["lists"][0]["on_list"] and pg["flags"][0]["kind"].startswith("黑名单")

    # night 4: D's objection decided 撤销
    night(world, N4)
    assert no["D"] not in public(dd) and no["D"] not in shared(dd, N4)
    pd_ = by_ref(profile(dd, UD, capsys))[no["D"]]
    assert pd_["status"] == "已撤销" and "撤销" in pd_["status_cause"]
    assert [(h["date"], h["status"]) for h in pd_["status_history"]] == [
        ("2026-10-12", "公示中"), ("2026-10-13", "异议中"), ("2026-10-15", "已撤销")]

    # the history keeps every version and every change; 归集量 still counts the repaired record
    con = duckdb.connect(str(dd.db_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM penalties_versions WHERE decision_no = ?", [no["C"]]).fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM penalties_versions WHERE decision_no IN (?, ?)", [no["D"], no["E_old"]]).fetchone()[0] == 2
        assert con.execute("SELECT sum(received_rows) FROM metrics_daily WHERE feed = 'penalties' AND dept = 'scjgj'").fetchone()[0] == 8
        old = con.execute("SELECT fine_amount FROM penalties_versions WHERE decision_no = ? ORDER BY _received_date", [no["C"]]).fetchall()
        assert [str(r[0]) for r in old] == ["0.5000", "0.2000"]
        log = con.execute("SELECT business_key, as_of, status FROM record_status_log WHERE feed = 'penalties' ORDER BY 1, 2").fetchall()
        assert (f"{no['E_old']}|{SCJGJ[1]}", N2, "已修复") in log
        # the nightly run builds the findings' repeated sub-relations once as temporary tables;
        # the same query inlined (as the profile embeds it) finds the same rows, night by night
        from assets.crosscheck.findings import COLUMNS, Relations, findings_sql

        cols = ", ".join(COLUMNS)
        seen = set()
        for n in (N2, N3, N4):
            inline = con.execute(f"SELECT DISTINCT {cols} FROM ({findings_sql(contracts := load_contracts(), n)}) "
                                 "ORDER BY ALL").fetchall()
            rel = Relations(con)
            built = con.execute(f"SELECT DISTINCT {cols} FROM ({findings_sql(contracts, n, rel)}) ORDER BY ALL").fetchall()
            rel.drop()
            assert built == inline and inline
            seen |= {r[0] for r in inline}
        assert seen >= {"repair_too_early", "broken_commitment", "blacklisted_subject"}
    finally:
        con.close()

    # the profile as the office knew it on night 2: C under objection, one version
    pc2 = by_ref(profile(dd, IDC, capsys, "--as-of", N2.isoformat()))[no["C"]]
    assert pc2["status"] == "异议中" and len(pc2["versions"]) == 1 and pc2["fields"]["罚款金额（万元）"] == "0.5"

    # text output in Chinese, identifier masked
    assert main(["--data-dir", str(dd.root), "profile", IDC, "--reason", "核查"]) == 0
    text = capsys.readouterr().out
    assert "信用档案" in text and "公示中" in text and IDC not in text
