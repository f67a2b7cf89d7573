"""Issue 11 point 6: real provincial header rows map onto the contracts.

The header names are facts and live in the contracts as aliases; the files they were collected
from (``shared/testdata/real/ningbo_zj_dw_sgs_headers.csv``, ``sgs_v2_field_codes.csv``) carry no
visible open licence, so they are not copied into ``tests/data/``: these tests read the shared
folder and skip cleanly where it is absent.

Every header of the file is listed below, either with the field it must map to or with the
reason it is deliberately left unmapped (it then goes to ``_extra``, kept, never dropped).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from contracts.model import normalise_header

REPO = Path(__file__).resolve().parents[2]
CANDIDATES = [REPO.parent / "shared", REPO.parent.parent / "shared"]  # ../shared; worktrees under wt/
SHARED = next((p / "testdata" / "real" for p in CANDIDATES if (p / "testdata" / "real").is_dir()), None)
needs_shared = pytest.mark.skipif(SHARED is None, reason="shared test data (../shared/testdata/real) not present")

# table -> contract it belongs to
TABLES = {
    "data/dw_zj_fzgg_cfjbxx.csv": "penalties",  # 行政处罚 subject/case base table (Zhejiang)
    "data/dw_zj_fzgg_xzcfjdxx.csv": "penalties",  # 行政处罚 decision table, 19 columns
    "data/dw_shl_sgsxzxk.csv": "permits",  # 行政许可 双公示 table (no 行政相对人类别)
    "data/dw_nb_scjdgl_xzcfgsxx.csv": "penalties",  # Ningbo market regulation penalties
    "data/dw_nb_scjdgl_xzxk.csv": "permits",  # Ningbo market regulation permits
    "data/dw_nb_sw_csjrxzcfxx.csv": "penalties",  # Ningbo tax penalties
}
MAPPED = {
    "uni_social_crd_cd": "subject_uscc", "xk_fr_sfzh": "legal_rep_id_no",
    # penalty decision table
    "case_name": "violation_type", "punish_type": "penalty_category", "admin_punish_doc": "decision_no",
    "punish_content": "penalty_content", "law_basis": "penalty_basis", "punish_money": "fine_amount",
    "illegality_money": "confiscated_amount", "revoke_license": "suspended_licence",
    "punish_decide_tm": "decision_date", "punish_valid_dt": "penalty_valid_until", "public_deadline": "display_end",
    "casedeptname": "authority", "cf_sjly": "source_unit", "cf_sjlydm": "source_unit_uscc",
    # penalty base table
    "implement_institution": "authority", "implement_institution_code": "authority_uscc",
    "case_process_type": "procedure_kind", "administrative_cp_type": "subject_kind",
    "administrative_cp_name": "subject_name", "administrative_cp_cert_type": "subject_id_type",
    "administrative_cp_cert_code": "subject_id_no", "legal_representative": "legal_rep",
    "legal_representative_idcard": "legal_rep_id_no", "case_desc": "violation_facts", "org_code": "org_code",
    # Ningbo tables
    "taxer_nm": "subject_name", "punish_rea": "violation_facts", "punish_dt": "decision_date",
    "punish_result": "penalty_content", "legal_per": "legal_rep", "legal_per_ident": "legal_rep_id_no",
    "taxer_no": "tax_reg_no", "reg_no": "business_reg_no",
    "lic_no": "permit_no", "lic_nm": "certificate_name", "lic_anth": "authority", "lic_item": "permit_content",
    "val_from": "valid_from", "val_to": "valid_to",
}
# the permits 双公示 table uses the standard codes in lower case: they map by code
BY_CODE = {"xk_xdr_mc", "xk_xdr_gszc", "xk_frdb", "xk_xdr_zjlx", "xk_xdr_zjhm", "xk_xkws", "xk_wsh", "xk_xklb",
           "xk_xkzs", "xk_xkbh", "xk_nr", "xk_jdrq", "xk_yxqz", "xk_yxqzi", "xk_xkjg", "xk_xkjgdm", "xk_zt",
           "xk_lydw", "xk_lydwdm", "bz"}
UNMAPPED = {  # header -> why it stays in _extra
    "id": "database row id", "cd_id": "database row id", "xk_id": "database row id", "lic_id": "database row id",
    "uuid": "database row id", "record_unique_identity": "platform record id", "pripid": "market-entity internal id",
    "extend_1": "undocumented extension", "extend_2": "undocumented extension",
    "cancel_reason": "撤销原因: no catalog field", "revoke_code": "证照编号: the standard has one 名称及编号 field",
    "punish_amt": "tax penalty amount of unknown unit (元 or 万元): mapping it would risk the 10,000× error",
    "type": "too generic to map", "punish_case_code": "案件编号 is not the 决定书文号",
    "punish_action_name": "处罚事项名称 (power list item), not 违法行为类型",
    "is_entrust": "委托执法 flag", "entrust_dept_name": "委托机关", "entrust_dept_code": "委托机关代码",
    "case_source_type": "案件来源", "case_source_date": "立案日期", "check_case_code": "检查编号",
    "deportation_dept_name": "移送机关", "deportation_dept_code": "移送机关代码",
    "administrative_cp_tel": "phone: not a penalties field", "area_code_live": "address block",
    "area_name_live": "address block", "address_live": "address block", "area_code_registerd": "address block",
    "area_name_registerd": "address block", "address_registerd": "address block",
    "area_code_operating": "address block", "area_name_operating": "address block", "address_operating": "address block",
    "punish_personnel_name": "case officer", "punish_personnel_code": "case officer",
    "is_deported": "移送 flag", "deport_time": "移送时间", "is_filing": "立案 flag", "create_time": "platform timestamp",
    "opt_type": "platform operation", "env_flag": "platform flag", "source_dept_code": "platform department code",
    "cd_time": "platform timestamp", "admini_division_code": "区划代码", "legal_representative_type": "ambiguous: 类型 of what",
    "flag": "platform flag",
}


def headers() -> list[tuple[str, str]]:
    with open(SHARED / "ningbo_zj_dw_sgs_headers.csv", encoding="utf-8") as fh:
        return [(r["source_file"], r["column_name"]) for r in csv.DictReader(fh)]


@needs_shared
def test_every_real_header_is_mapped_or_deliberately_left(contracts):
    unknown = []
    for table, header in headers():
        contract = contracts[TABLES[table]]
        got = contract.header_map().get(normalise_header(header))
        if header in MAPPED:
            assert got == MAPPED[header], (table, header, got)
        elif header in BY_CODE:
            assert got is not None and contract.field(got).code.lower() == header, (table, header, got)
        elif header in UNMAPPED:
            assert got is None, (table, header, got)
        else:
            unknown.append((table, header))
    assert unknown == []


@needs_shared
def test_provincial_penalty_decision_table_maps_14_of_19(contracts):
    cols = [h for t, h in headers() if t == "data/dw_zj_fzgg_xzcfjdxx.csv"]
    assert len(cols) == 19
    hmap = contracts["penalties"].header_map()
    mapped = [h for h in cols if normalise_header(h) in hmap]
    assert len(mapped) == 14 and set(cols) - set(mapped) == {"id", "extend_1", "extend_2", "cancel_reason", "revoke_code"}


@needs_shared
def test_standard_codes_and_their_chinese_names_map_to_the_same_field(contracts):
    with open(SHARED / "sgs_v2_field_codes.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    feed = {"行政许可": "permits", "行政处罚": "penalties"}
    for r in rows:
        hmap = contracts[feed[r["record_type"]]].header_map()
        name = r["field_name_cn"].split(" (")[0]
        assert hmap.get(normalise_header(r["field_code"])) is not None, r
        assert hmap.get(normalise_header(r["field_code"])) == hmap.get(normalise_header(name)), r


@needs_shared
def test_a_real_permits_table_layout_is_read_and_its_subject_kind_inferred(tmp_path, contracts):
    """The dw_shl_sgsxzxk header row as a department would export it, one data row: the file is
    accepted, every column but the row id lands in a field, and 行政相对人类别 is inferred."""
    from assets.ingest import read_file

    cols = [h for t, h in headers() if t == "data/dw_shl_sgsxzxk.csv"]
    values = {"xk_xdr_mc": "巫山县某某商贸有限公司", "uni_social_crd_cd": "91500105MA5UM6TF71", "xk_frdb": "张三",
              "xk_fr_sfzh": "500237198001011234", "xk_xkws": "食品经营许可决定书", "xk_wsh": "巫市监许〔2026〕1号",
              "xk_xklb": "普通", "xk_nr": "食品销售", "xk_jdrq": "2026/10/05", "xk_yxqz": "2026/10/05",
              "xk_yxqzi": "2031/10/04", "xk_xkjg": "巫山县市场监督管理局", "xk_xkjgdm": "11500237743131669T",
              "xk_zt": "1", "xk_lydw": "巫山县市场监督管理局", "xk_lydwdm": "11500237743131669T", "xk_id": "88"}
    path = tmp_path / "dw_shl_sgsxzxk.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        w.writerow([values.get(c, "") for c in cols])
    df = read_file(path, contracts["permits"]).table.to_pandas()
    row = df.iloc[0]
    assert row["subject_uscc"] == "91500105MA5UM6TF71" and row["legal_rep_id_no"] == "500237198001011234"
    assert row["subject_kind"] == "法人及非法人组织" and "subject_kind.inferred" in row["_notes"]
    assert row["status"] == "有效" and row["decision_date"] == "2026-10-05"
    assert row["_extra"] == '{"xk_id":"88"}'
