"""Each rule kind on hand-built staged frames: the failing rows and rule ids, exactly."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from assets.validate import compile_rules, validate_frame
from validate_helpers import GOOD_PENALTY, GOOD_SUBSIDY, RECEIVED, fixed_ric, make_uscc, staged


def errors(contract, rows, **kw):
    """Per row: sorted error rule ids."""
    res = validate_frame(contract, staged(contract, rows, **kw))
    f = res.failures
    out = []
    for i, _r in enumerate(rows):
        sel = f[(f["_row_no"] == i + 2) & (f["severity"] == "error")]
        out.append(sorted(sel["rule_id"]))
    return out


def warnings(contract, rows):
    res = validate_frame(contract, staged(contract, rows))
    f = res.failures
    return [sorted(f[(f["_row_no"] == i + 2) & (f["severity"] == "warning")]["rule_id"]) for i in range(len(rows))]


_SEQ = itertools.count(1)


def pen(**kw):
    """A clean penalty row with its own decision number (so rows are not duplicates) plus changes."""
    return {**GOOD_PENALTY, "decision_no": f"巫市监罚〔2026〕{next(_SEQ)}号", **kw}


@pytest.fixture
def P(contracts):
    return contracts["penalties"]


def test_good_row_is_clean(P, contracts):
    assert errors(P, [pen()]) == [[]]
    assert warnings(P, [pen()]) == [[]]
    assert errors(contracts["agri_subsidies"], [GOOD_SUBSIDY]) == [[]]


def test_rule_ids_follow_the_contract(P):
    ids = {r.id for r in compile_rules(P)}
    assert {"decision_date.required", "subject_id_no.required_when", "subject_uscc.empty_when",
            "penalty_category.enum", "decision_date.type", "decision_date.sentinel", "decision_date.future",
            "fine_amount.range", "subject_uscc.uscc", "subject_id_no.ric", "org_code.org_code",
            "subject_uscc.uscc_division", "source_unit.length", "PEN-FINE", "PEN-DISPLAY-RANGE",
            "PEN-KEY-UNIQUE"} <= ids
    r = next(r for r in compile_rules(P) if r.id == "decision_date.required")
    assert r.message == "「处罚决定日期」为必填项" and r.severity == "error"
    assert next(r for r in compile_rules(P) if r.id == "org_code.org_code").severity == "warning"


def test_required(P):
    assert errors(P, [pen(decision_date=None), pen(authority=None)]) == [["decision_date.required"], ["authority.required"]]


def test_required_when_and_empty_when(P):
    def person(**kw):
        return pen(**{"subject_kind": "自然人", "subject_uscc": None, "legal_rep": None, **kw})

    rows = [
        person(),  # 自然人 needs 证件类型 and 证件号码
        person(subject_id_type="身份证", subject_id_no=fixed_ric("50023719900101123")),
        person(subject_id_type="身份证", subject_id_no=fixed_ric("50023719900101123"), subject_uscc="91500105MA5UM6TF71"),
        pen(legal_rep=None),  # 法人 needs 法定代表人
    ]
    assert errors(P, rows) == [
        ["subject_id_no.required_when", "subject_id_type.required_when"],
        [],
        ["subject_uscc.empty_when"],
        ["legal_rep.required_when"],
    ]


def test_enum_multi_value_and_prefix(P, contracts):
    rows = [pen(subject_kind="企业"), pen(penalty_category="罚款;打板子"), pen(penalty_category="罚款;"),
            pen(penalty_category="没收违法所得;罚款", confiscated_amount="2"),
            pen(legal_rep_id_type="其他-军官证"), pen(legal_rep_id_type="军官证")]
    assert errors(P, rows) == [["subject_kind.enum"], ["penalty_category.enum"],
                               ["penalty_category.enum"], [], [], ["legal_rep_id_type.enum"]]


def test_pattern_and_length(P, contracts):
    A = contracts["utility_arrears"]
    good = dict(user_name="张三", user_kind="自然人", user_id_no=fixed_ric("50023719900101123"), account_no="W1",
                fee_type="水费", billing_period="2026-05", arrears_amount="600", reminder_count="2",
                determination_date="2026-06-01", determination_reason="两次催缴未缴", determining_unit="巫山县自来水有限公司",
                determining_unit_uscc="91500237554346484C")
    assert errors(A, [good, {**good, "billing_period": "2026-13", "account_no": "W2"},
                      {**good, "billing_period": "202605", "account_no": "W3"}]) == [[], ["billing_period.pattern"], ["billing_period.pattern"]]
    assert errors(P, [pen(source_unit="局" * 201)]) == [["source_unit.length"]]


def test_type(P, contracts):
    assert errors(P, [pen(decision_date="2026-02-30"), pen(decision_date="2026/05/20"), pen(fine_amount="一万")]) == [
        ["decision_date.type"], ["decision_date.type"], ["fine_amount.type"]]
    S = contracts["agri_subsidies"]
    machine = {**GOOD_SUBSIDY, "subsidy_type": "农机购置补贴", "machine_item": "拖拉机", "subsidised_area": None}
    assert errors(S, [{**machine, "quantity": "1.5"}, {**machine, "quantity": "2", "claim_no": "BT-2"}]) == [["quantity.type"], []]


def test_range(P):
    assert errors(P, [pen(fine_amount="-1"), pen(fine_amount="1000001"), pen(fine_amount="0.5")]) == [
        ["PEN-FINE", "fine_amount.range"], ["fine_amount.range"], []]


def test_sentinel(P):
    got = errors(P, [pen(decision_date="1900-01-01"), pen(decision_date="1899-12-31"), pen(decision_date="1900-01-02",
                 display_end="1900-06-02", penalty_valid_until="1901-01-01")])
    assert got == [["decision_date.sentinel"], ["decision_date.sentinel"], []]


def test_future(P):
    tomorrow = (RECEIVED + timedelta(days=1)).isoformat()
    same_day = RECEIVED.isoformat()
    end = (RECEIVED + timedelta(days=200)).isoformat()
    assert errors(P, [pen(decision_date=tomorrow, display_end=end), pen(decision_date=same_day, display_end=end)]) == [
        ["decision_date.future"], []]


def test_uscc_and_ric(P):
    def person(**kw):
        return pen(**{"subject_kind": "自然人", "subject_uscc": None, "legal_rep": None, "subject_id_type": "身份证", **kw})

    bad_ric = fixed_ric("50023719900101123")[:-1] + "0"
    if bad_ric == fixed_ric("50023719900101123"):
        bad_ric = bad_ric[:-1] + "1"
    rows = [pen(authority_uscc="11500237743131669A"), pen(source_unit_uscc="00000000000000000X"),
            person(subject_id_no=bad_ric), person(subject_id_type="护照号", subject_id_no="E12345678"),
            person(subject_id_no="500237900101123")]  # 15-digit form accepted
    assert errors(P, rows) == [["authority_uscc.uscc"], ["source_unit_uscc.uscc"], ["subject_id_no.ric"], [], []]


def test_org_code_and_division_warnings(P):
    bad_division = make_uscc("91139900MA5UM6TF7")  # 河北 province, prefecture 1399 does not exist
    rows = [pen(org_code="12345678-9"), pen(org_code="60003734-1"), pen(subject_uscc=bad_division),
            pen(subject_uscc=make_uscc("91500237MA5UM6TF7")), pen(subject_uscc=make_uscc("91130000MA5UM6TF7")),
            pen(subject_uscc=make_uscc("91990000MA5UM6TF7"))]
    assert warnings(P, rows) == [["org_code.org_code"], [], ["subject_uscc.uscc_division"], [], [],
                                 ["subject_uscc.uscc_division"]]
    res = validate_frame(P, staged(P, rows))
    assert len(res.passed) == 6  # warnings never quarantine
    assert list(res.passed["_warnings"]) == ["org_code.org_code", None, "subject_uscc.uscc_division", None, None,
                                             "subject_uscc.uscc_division"]


def test_date_order(P):
    assert errors(P, [pen(penalty_valid_until="2026-05-19"), pen(penalty_valid_until="2026-05-20")]) == [
        ["PEN-VALID-ORDER"], []]


def test_required_when_contains(P):
    assert errors(P, [pen(fine_amount="0"), pen(fine_amount=None), pen(penalty_category="警告", fine_amount=None, display_end="2026-07-20"),
                      pen(penalty_category="吊销许可证件"), pen(penalty_category="吊销许可证件", suspended_licence="许可证 123")]) == [
        ["PEN-FINE"], ["PEN-FINE"], [], ["PEN-LICENCE"], []]


def test_prefix_matches_both_directions(P):
    ind = make_uscc("92500237MA5UM6TF7")
    assert errors(P, [pen(subject_uscc=ind), pen(subject_kind="个体工商户"), pen(subject_kind="个体工商户", subject_uscc=ind)]) == [
        ["PEN-PREFIX-92"], ["PEN-PREFIX-92"], []]


def test_display_period_regimes_and_tiers(P):
    old, new = "2026-03-02", "2026-04-02"
    rows = [
        pen(decision_date=old, display_end="2026-12-02", severity_tier="严重"),  # old 严重 6–36 months: ok
        pen(decision_date=new, display_end="2027-01-02", severity_tier="严重"),  # new 严重 12–36: 9 months too short
        pen(decision_date=old, display_end="2026-04-02"),  # default 一般 3–12: 1 month too short
        pen(decision_date=old, display_end="2027-03-02"),  # 一般 exactly 12 months: ok
        pen(decision_date=old, display_end="2027-03-03"),  # one day over 12 months
        pen(decision_date=old, display_end="2026-09-02", procedure_kind="简易程序"),  # old 轻微 0–12: ok
        pen(decision_date=new, display_end="2026-10-02", procedure_kind="简易程序"),  # new 轻微 0–3: too long
        pen(decision_date=new, display_end="2026-07-02", penalty_category="警告", fine_amount=None),  # 轻微 by 警告 only
        pen(decision_date=new, display_end="2099-12-31", penalty_valid_until="2099-12-31"),  # display end not long-term
    ]
    rows = [{**r, "decision_no": f"D{i}"} for i, r in enumerate(rows)]
    assert errors(P, rows, received=RECEIVED) == [[], ["PEN-DISPLAY-RANGE"], ["PEN-DISPLAY-RANGE"], [], ["PEN-DISPLAY-RANGE"],
                                                  [], ["PEN-DISPLAY-RANGE"], [], ["PEN-DISPLAY-RANGE"]]


def test_display_period_month_end_clamping(P):
    # 2025-11-30 + 3 months = 2026-02-28 (clamped): that day is allowed, the day before is not
    rows = [pen(decision_date="2025-11-30", display_end="2026-02-28", decision_no="A"),
            pen(decision_date="2025-11-30", display_end="2026-02-27", decision_no="B")]
    assert errors(P, rows) == [[], ["PEN-DISPLAY-RANGE"]]


def test_unique_key_flags_every_row(P):
    rows = [pen(decision_no="D1"), pen(decision_no="D1"), pen(decision_no="D2"),
            pen(decision_no="D1", _file_id="file-b", _row_no=5), pen(decision_no=None)]
    res = validate_frame(P, staged(P, rows))
    dup = res.failures[res.failures["rule_id"] == "PEN-KEY-UNIQUE"]
    assert sorted(dup["_row_no"].tolist()) == [2, 3]  # the other delivery is not a duplicate
    assert len(res.quarantined) == 3  # the two duplicates and the row without a decision number


def test_not_greater(contracts):
    S = contracts["agri_subsidies"]
    rows = [{**GOOD_SUBSIDY, "subsidised_area": "10"}, GOOD_SUBSIDY,
            {**GOOD_SUBSIDY, "subsidised_area": "9.5", "excluded_area": "1"},
            {**GOOD_SUBSIDY, "contracted_area": None}]
    rows = [{**r, "claim_no": f"C{i}"} for i, r in enumerate(rows)]
    assert errors(S, rows) == [["AGR-AREA-CAP"], [], ["AGR-AREA-CAP"], []]


def test_long_term_valid_until_allowed(P):
    assert errors(P, [pen(penalty_valid_until="2099-12-31")]) == [[]]
