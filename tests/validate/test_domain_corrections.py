"""Issue 11, points 1 and 4–7: amount units, listing rule, display tiers before 2026-04-01,
real-world values and layouts, code tables, subsidy recipients. Files are real CSVs on disk read
through the clerk's pre-check path (reader → header mapping → normalisation → validation)."""

from __future__ import annotations

import csv
from datetime import date

import pandas as pd
import pytest

from assets.validate.engine import validate_frame
from assets.validate.precheck import check_file
from validate_helpers import AUTH, GOOD_PENALTY, GOOD_SUBSIDY, make_uscc, staged

RECEIVED = date(2026, 10, 9)


def write_csv(path, headers: list[str], rows: list[list]) -> str:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(headers)
        w.writerows(rows)
    return str(path)


def labelled(contract, rows: list[dict]) -> tuple[list[str], list[list]]:
    names = contract.field_names
    return [contract.field(n).label for n in names], [[r.get(n) or "" for n in names] for r in rows]


def failures_of(result, row_no: int) -> dict[str, tuple[str, str | None, str]]:
    f = result.failures[result.failures["_row_no"] == row_no]
    return {r.rule_id: (r.severity, r.value, r.message) for r in f.itertuples()}


def staged_value(df, row_no: int, field: str):
    return df.loc[df["_row_no"] == row_no, field].iloc[0]


# -- 1. amount units --------------------------------------------------------------------------
def test_amounts_marked_with_another_unit_are_converted_with_a_warning(tmp_path, contracts):
    P = contracts["penalties"]
    base = {**GOOD_PENALTY, "decision_date": "2026-10-05", "display_end": "2027-04-05"}
    rows = [
        {**base, "decision_no": "U1", "fine_amount": "5000元"},  # 5000 yuan = 0.5 万元, not 5000 万元
        {**base, "decision_no": "U2", "fine_amount": "0.5"},  # bare: taken in the field's unit
        {**base, "decision_no": "U3", "fine_amount": "3万元"},  # the field's own unit: just stripped
        {**base, "decision_no": "U4", "fine_amount": "1.2亿元"},
    ]
    headers, cells = labelled(P, rows)
    _, df, result, _ = check_file(write_csv(tmp_path / "处罚.csv", headers, cells), "penalties", RECEIVED)
    assert [staged_value(df, r, "fine_amount") for r in (2, 3, 4, 5)] == ["0.5", "0.5", "3", "12000"]
    assert len(result.quarantined) == 0
    assert failures_of(result, 2)["fine_amount.unit"][:2] == ("warning", "5000元")
    assert "已按单位换算为万元" in failures_of(result, 2)["fine_amount.unit"][2]
    assert "fine_amount.unit" not in failures_of(result, 3)
    assert "fine_amount.unit" not in failures_of(result, 4)
    assert failures_of(result, 5)["fine_amount.unit"][1] == "1.2亿元"
    assert result.passed.loc[result.passed["_row_no"] == 2, "_warnings"].iloc[0] == "fine_amount.unit"


def test_arrears_in_wan_yuan_become_yuan(tmp_path, contracts):
    A = contracts["utility_arrears"]
    row = {"user_name": "王五", "user_kind": "自然人", "user_id_no": "500237199512120018", "account_no": "W001",
           "fee_type": "水费", "billing_period": "2026-08", "arrears_amount": "0.5万元", "reminder_count": "2",
           "determination_date": "2026-10-05", "determination_reason": "两次催缴未缴",
           "determining_unit": "巫山县自来水有限公司", "determining_unit_uscc": AUTH}
    headers, cells = labelled(A, [row])
    _, df, result, _ = check_file(write_csv(tmp_path / "欠费.csv", headers, cells), "utility_arrears", RECEIVED)
    assert staged_value(df, 2, "arrears_amount") == "5000"  # not 0.5 yuan
    assert failures_of(result, 2)["arrears_amount.unit"][:2] == ("warning", "0.5万元")
    assert len(result.passed) == 1


def test_a_unit_mark_on_a_field_without_a_unit_is_reported_not_stripped(tmp_path, contracts):
    S = contracts["agri_subsidies"]
    headers, cells = labelled(S, [{**GOOD_SUBSIDY, "rate": "105元"}])  # 补贴标准 is 元/亩, not 元
    _, df, result, _ = check_file(write_csv(tmp_path / "补贴.csv", headers, cells), "agri_subsidies", RECEIVED)
    assert staged_value(df, 2, "rate") == "105元"
    assert "rate.type" in failures_of(result, 2)


# -- 3. the arrears listing rule --------------------------------------------------------------
ARREARS = {"user_name": "王五", "user_kind": "自然人", "user_id_no": "500237199512120018", "account_no": "W1",
           "fee_type": "水费", "billing_period": "2026-08", "arrears_amount": "500", "reminder_count": "2",
           "determination_date": "2026-10-05", "determination_reason": "两次催缴未缴",
           "determining_unit": "巫山县自来水有限公司", "determining_unit_uscc": AUTH}
ORG = {"user_name": "巫山县某某商贸有限公司", "user_kind": "法人及非法人组织", "user_uscc": "91500105MA5UM6TF71", "user_id_no": None}


@pytest.mark.parametrize("over, listed", [
    ({}, True),  # a household: 2 reminders and 500 yuan
    ({"arrears_amount": "499.99"}, False),
    ({"reminder_count": "1"}, False),
    ({**ORG, "arrears_amount": "999"}, False),  # an organisation needs 1000 yuan
    ({**ORG, "arrears_amount": "1000"}, True),
    ({"arrears_amount": "80", "reminder_count": "0", "arrears_count": "3"}, True),  # three episodes
    ({"arrears_amount": "80", "reminder_count": "5", "arrears_count": "2"}, False),
])
def test_arrears_listing_rule(contracts, over, listed):
    A = contracts["utility_arrears"]
    result = validate_frame(A, staged(A, [{**ARREARS, **over}], received=RECEIVED))
    rules = set(result.failures["rule_id"])
    assert ("ARR-LISTING" not in rules) is listed, rules
    assert rules <= {"ARR-LISTING"}


def test_paid_arrears_need_a_payment_date(contracts):
    A = contracts["utility_arrears"]
    rows = [{**ARREARS, "account_no": "W1", "payment_status": "已缴清"},
            {**ARREARS, "account_no": "W2", "payment_status": "已结清", "paid_date": "2026-10-08"},
            {**ARREARS, "account_no": "W3", "payment_status": "未缴清", "paid_date": "2026-10-08"},
            {**ARREARS, "account_no": "W4", "payment_status": "已缴清", "paid_date": "2026-10-01"}]
    df = staged(A, rows, received=RECEIVED)
    df["payment_status"] = ["已缴清", "已缴清", "未缴清", "已缴清"]  # 已结清 after normalisation
    result = validate_frame(A, df)
    by_row = {r: set(result.failures.loc[result.failures["_row_no"] == r, "rule_id"]) for r in (2, 3, 4, 5)}
    assert by_row == {2: {"paid_date.required_when"}, 3: set(), 4: {"paid_date.empty_when"}, 5: {"ARR-PAID-ORDER"}}


# -- 5. display tiers before 2026-04-01 -------------------------------------------------------
@pytest.mark.parametrize("decided, over, end, ok", [
    ("2025-06-02", {}, "2025-08-02", False),  # 一般 under 2019 rules: at least 3 months
    ("2025-06-02", {"severity_tier": "严重"}, "2026-02-02", True),  # 严重 2019: 6 months–3 years
    ("2026-06-02", {"severity_tier": "严重"}, "2027-02-02", False),  # 严重 2026: at least 1 year
    ("2025-06-02", {"procedure_kind": "简易程序"}, "2026-06-02", True),  # no 轻微 tier then: judged 一般
    ("2026-06-02", {"procedure_kind": "简易程序"}, "2027-06-02", False),  # 轻微 2026: at most 3 months
])
def test_display_ranges_follow_the_regime_of_the_decision_date(contracts, decided, over, end, ok):
    P = contracts["penalties"]
    row = {**GOOD_PENALTY, "decision_date": decided, "display_end": end, **over}
    result = validate_frame(P, staged(P, [row], received=RECEIVED))
    rules = set(result.failures["rule_id"])
    assert ("PEN-DISPLAY-RANGE" not in rules) is ok, rules


def test_display_range_message_quotes_the_rules_in_force_on_the_decision_date(contracts):
    P = contracts["penalties"]
    rows = [{**GOOD_PENALTY, "decision_no": "A", "decision_date": "2025-06-02", "display_end": "2025-07-02"},
            {**GOOD_PENALTY, "decision_no": "B", "decision_date": "2026-06-02", "display_end": "2026-07-02"}]
    result = validate_frame(P, staged(P, rows, received=RECEIVED))
    f = result.failures[result.failures["rule_id"] == "PEN-DISPLAY-RANGE"].set_index("_row_no")["message"]
    assert "发改办财金〔2019〕527号" in f[2] and "严重6个月至3年" in f[2] and "信用修复管理办法" not in f[2]
    assert "《信用修复管理办法》" in f[3] and "严重1年至3年" in f[3] and "轻微原则上不公示" in f[3]


# -- 6. real-world values and layouts ---------------------------------------------------------
def test_seed_spelling_of_the_land_subsidy_is_accepted(tmp_path, contracts):
    S = contracts["agri_subsidies"]
    headers, cells = labelled(S, [{**GOOD_SUBSIDY, "subsidy_type": "耕地地力补贴"}])
    _, df, result, _ = check_file(write_csv(tmp_path / "补贴.csv", headers, cells), "agri_subsidies", RECEIVED)
    assert staged_value(df, 2, "subsidy_type") == "耕地地力保护补贴"
    assert len(result.passed) == 1


def test_2016_penalty_category_and_the_second_category_column(tmp_path, contracts):
    P = contracts["penalties"]
    base = {**GOOD_PENALTY, "decision_date": "2020-05-06", "display_end": "2021-05-06", "severity_tier": "一般"}
    names = P.field_names
    headers = [P.field(n).v1_label or P.field(n).label for n in names] + ["处罚类别2"]
    rows = [
        # the 2016 law's value, split over both halves by 、 (one category: not distinguished)
        [{**base, "decision_no": "V1", "penalty_category": "暂扣或者吊销许可证、暂扣或者吊销执照",
          "suspended_licence": "营业执照（91500105MA5UM6TF71）", "fine_amount": None}.get(n) or "" for n in names] + [""],
        # the same without the licence named: PEN-LICENCE applies to it as to 吊销许可证件
        [{**base, "decision_no": "V2", "penalty_category": "暂扣或者吊销许可证", "fine_amount": None}.get(n) or "" for n in names] + [""],
        # 处罚类别1 + 处罚类别2 → one multi-value field
        [{**base, "decision_no": "V3", "penalty_category": "罚款", "confiscated_amount": "0.2"}.get(n) or "" for n in names]
        + ["没收违法所得"],
    ]
    _, df, result, _ = check_file(write_csv(tmp_path / "处罚v1.csv", headers, rows), "penalties", RECEIVED)
    assert [staged_value(df, r, "penalty_category") for r in (2, 3, 4)] == [
        "暂扣或者吊销许可证件", "暂扣或者吊销许可证件", "罚款;没收违法所得"]
    assert set(failures_of(result, 2)) == set()
    assert set(failures_of(result, 3)) == {"PEN-LICENCE"}
    assert set(failures_of(result, 4)) == set()
    assert df["_extra"].isna().all()  # 处罚类别2 is not dropped into the extras


def test_permits_without_subject_kind_column_are_inferred_with_a_warning(tmp_path, contracts):
    """A real provincial permits table (dw_shl_sgsxzxk) has no 行政相对人类别: infer it from which
    identifier is filled instead of refusing the whole file."""
    P = contracts["permits"]
    base = {"decision_doc_name": "准予许可决定书", "permit_category": "普通", "permit_content": "食品销售",
            "decision_date": "2026-10-05", "valid_from": "2026-10-05", "valid_to": "2031-10-04",
            "authority": "巫山县市场监督管理局", "authority_uscc": AUTH, "status": "1",
            "source_unit": "巫山县市场监督管理局", "source_unit_uscc": AUTH}
    rows = [
        {**base, "decision_no": "I1", "subject_name": "某某有限公司", "subject_uscc": "91500105MA5UM6TF71", "legal_rep": "张三"},
        {**base, "decision_no": "I2", "subject_name": "某某商店", "subject_uscc": make_uscc("92500237MA5U00001"), "legal_rep": "李四"},
        {**base, "decision_no": "I3", "subject_name": "王五", "subject_id_type": "身份证", "subject_id_no": "500237199512120018"},
        {**base, "decision_no": "I4", "subject_name": "无名"},  # nothing to infer from: required error
    ]
    names = [n for n in P.field_names if n != "subject_kind"]
    headers = [P.field(n).code.lower() if P.field(n).code else P.field(n).label for n in names]
    _, df, result, _ = check_file(write_csv(tmp_path / "dw_shl_sgsxzxk.csv", headers, [[r.get(n) or "" for n in names] for r in rows]),
                               "permits", RECEIVED)
    assert [staged_value(df, r, "subject_kind") for r in (2, 3, 4)] == ["法人及非法人组织", "个体工商户", "自然人"]
    assert pd.isna(staged_value(df, 5, "subject_kind"))
    for r in (2, 3, 4):
        sev, value, message = failures_of(result, r)["subject_kind.inferred"]
        assert sev == "warning" and "推定" in value and "文件缺少「行政相对人类别」列" in message
    assert set(failures_of(result, 5)) == {"subject_kind.required"}
    assert len(result.passed) == 3


# -- 7. code tables and subsidy recipients ----------------------------------------------------
def test_permit_status_codes_come_from_the_code_table_only(tmp_path, contracts):
    P = contracts["permits"]
    field = P.field("status")
    assert field.code_table.codes == {"1": "有效", "2": "无效"} and "790号" in field.code_table.source
    base = {**{k: v for k, v in GOOD_PENALTY.items() if k in P.field_names},
            "decision_doc_name": "准予许可决定书", "permit_category": "普通", "permit_content": "食品销售",
            "decision_date": "2026-10-05", "valid_from": "2026-10-05", "valid_to": "2031-10-04"}
    rows = [{**base, "decision_no": f"S{c}", "status": c} for c in ("1", "2", "0")]
    headers, cells = labelled(P, rows)
    _, df, result, _ = check_file(write_csv(tmp_path / "许可.csv", headers, cells), "permits", RECEIVED)
    assert [staged_value(df, r, "status") for r in (2, 3, 4)] == ["有效", "无效", "0"]  # "0" is not guessed
    assert set(failures_of(result, 4)) == {"status.enum"}


def test_subsidies_to_cooperatives_companies_and_family_farms(contracts):
    S = contracts["agri_subsidies"]
    machine = {**GOOD_SUBSIDY, "subsidy_type": "农机购置补贴", "machine_item": "微耕机", "quantity": "1",
               "subsidised_area": None, "contracted_area": None, "transferred_in_area": None, "rate": None,
               "total_subsidy": "960", "recipient_id_no": None}
    coop = make_uscc("93500237MA5U00002")
    rows = [
        {**machine, "claim_no": "C1", "recipient_kind": "法人及非法人组织", "recipient_name": "巫山县青龙种植专业合作社", "recipient_uscc": coop},
        {**machine, "claim_no": "C2", "recipient_kind": "个体工商户", "recipient_name": "巫山县红岩李家庭农场",
         "recipient_uscc": make_uscc("92500237MA5U00003")},
        {**machine, "claim_no": "C3", "recipient_kind": "法人及非法人组织", "recipient_name": "某某农业发展有限公司"},  # no USCC
        {**GOOD_SUBSIDY, "claim_no": "C4", "recipient_uscc": coop},  # a person with a USCC
        {**machine, "claim_no": "C5", "recipient_kind": "个体工商户", "recipient_name": "某某农场", "recipient_uscc": coop},
    ]
    result = validate_frame(S, staged(S, rows, received=RECEIVED))
    by_row = {r: set(result.failures.loc[result.failures["_row_no"] == r, "rule_id"]) - {"recipient_uscc.uscc_division"}
              for r in range(2, 7)}
    assert by_row == {2: set(), 3: set(), 4: {"recipient_uscc.required_when"}, 5: {"recipient_uscc.empty_when"},
                      6: {"AGR-PREFIX-92"}}


def test_catalog_marks_only_standard_fields_national(contracts):
    from assets.publish.catalog_docs import render_markdown

    for feed in ("utility_arrears", "agri_subsidies", "declarations", "repairs"):
        c = contracts[feed]
        assert not c.standard and not any(c.is_national(f) for f in c.fields), feed
    assert all(contracts["permits"].is_national(f) for f in contracts["permits"].fields)
    assert not contracts["penalties"].is_national(contracts["penalties"].field("procedure_kind"))
    doc = render_markdown(contracts, None)
    start = doc.index("## 水电气欠费")
    end = doc.find("\n## ", start)
    arrears = doc[start:end if end > 0 else len(doc)]
    fields = arrears[arrears.index("### 字段"):].split("\n\n")[1].splitlines()[2:]
    assert fields and all(line.endswith("| 地方目录 |") or line.endswith("| 扩展 |") for line in fields), fields
    assert "无国家字段标准" in arrears
    assert "顺延至节假日后第一日（《民法典》第二百零三条）" in arrears
    assert "本县信用办自定" in arrears  # the arrears deadline is the office's own choice, said so
