"""Great Expectations: a stored suite per contract, and GE flags exactly the rows validate_frame flags."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assets.validate import validate_frame
from assets.validate.rules import evaluate
from assets.validate.suites import build_data_docs, run_suite, save_suites
from validate_helpers import GOOD_PENALTY, GOOD_SUBSIDY, fixed_ric, make_uscc, staged

pytestmark = pytest.mark.filterwarnings("ignore")


def penalty_rows():
    person = {"subject_kind": "自然人", "subject_uscc": None, "legal_rep": None, "subject_id_type": "身份证"}
    good_id = fixed_ric("50023719900101123")
    variants = [
        {}, {"decision_date": None}, {"decision_date": "2026-02-30"}, {"decision_date": "1900-01-01"},
        {"decision_date": "2026-07-01"}, {"fine_amount": "0"}, {"fine_amount": "abc"}, {"fine_amount": "-3"},
        {"penalty_category": "罚款;打板子"}, {"penalty_category": "警告", "fine_amount": None},
        {"subject_kind": "企业"}, {"subject_kind": "个体工商户"}, {**person, "subject_id_no": good_id},
        {**person, "subject_id_no": good_id[:-1] + "0" if good_id[-1] != "0" else good_id[:-1] + "1"},
        {**person}, {**person, "subject_id_no": "E123", "subject_id_type": "护照号"},
        {"org_code": "12345678-9"}, {"subject_uscc": make_uscc("91139900MA5UM6TF7")},
        {"authority_uscc": "00000000000000000X"}, {"penalty_valid_until": "2026-01-01"},
        {"display_end": "2026-05-25"}, {"severity_tier": "严重", "display_end": "2026-12-20"},
        {"procedure_kind": "简易程序"}, {"source_unit": "局" * 201}, {"legal_rep_id_type": "其他-军官证"},
        {"legal_rep_id_type": "军官证"}, {"penalty_category": "吊销许可证件"},
    ]
    rows = [{**GOOD_PENALTY, "decision_no": f"N{i}", **v} for i, v in enumerate(variants)]
    rows += [{**GOOD_PENALTY, "decision_no": "DUP"}, {**GOOD_PENALTY, "decision_no": "DUP"}]
    return rows * 3  # repeated rows: the duplicate-key rule fires across the copies too


def subsidy_rows():
    variants = [{}, {"subsidised_area": "10"}, {"contracted_area": None}, {"subsidy_type": "农机购置补贴"},
                {"recipient_id_no": "11010519491231001X"}, {"payment_date": "20260601"}, {"total_subsidy": "0"},
                {"subsidy_type": "农机购置补贴", "quantity": "1.5", "machine_item": "拖拉机"}]
    return [{**GOOD_SUBSIDY, "claim_no": f"C{i}", **v} for i, v in enumerate(variants)]


@pytest.fixture(scope="module")
def gx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gx")


def test_suite_json_for_every_contract(gx_dir, contracts):
    paths = save_suites(gx_dir, contracts)
    assert set(paths) == set(contracts)
    for feed, path in paths.items():
        assert path.exists() and path.is_relative_to(gx_dir / "reports" / "gx")
        suite = json.loads(path.read_text(encoding="utf-8"))
        ids = [e["meta"]["rule_id"] for e in suite["expectations"]]
        assert len(ids) == len(set(ids)) > 0
        types = {e["type"] for e in suite["expectations"]}
        assert "expect_column_values_to_not_be_null" in types
    pen = json.loads(paths["penalties"].read_text(encoding="utf-8"))
    by_id = {e["meta"]["rule_id"]: e for e in pen["expectations"]}
    assert by_id["subject_id_no.required_when"]["type"] == "expect_column_values_to_not_be_null"
    cond = by_id["subject_id_no.required_when"]["kwargs"]["row_condition"]
    assert cond["pass_through_filter"] == '`subject_kind` == "自然人"'
    assert by_id["subject_uscc.uscc"]["type"] == "expect_column_values_to_be_valid_uscc"
    assert by_id["PEN-DISPLAY-RANGE"]["type"] == "expect_rows_to_pass_credit_rule"
    assert by_id["org_code.org_code"]["meta"]["severity"] == "warning"


@pytest.mark.parametrize("feed,make", [("penalties", penalty_rows), ("agri_subsidies", subsidy_rows)])
def test_ge_flags_the_same_rows(contracts, feed, make):
    contract = contracts[feed]
    df = staged(contract, make())
    masks = evaluate(contract, df)
    _result, failing = run_suite(contract, df)
    assert set(failing) == set(masks)
    for rule_id, mask in masks.items():
        assert failing[rule_id].tolist() == np.flatnonzero(mask).tolist(), rule_id
    fired = {k for k, m in masks.items() if m.any()}
    assert len(fired) >= (15 if feed == "penalties" else 5)  # the frame really exercises the rules
    errors = {r for r, m in masks.items() if m.any() and r in failing}
    res = validate_frame(contract, df)
    from assets.validate.rules import compile_rules

    sev = {r.id: r.severity for r in compile_rules(contract)}
    ge_bad = sorted({int(i) for r in errors if sev[r] == "error" for i in failing[r]})
    assert ge_bad == sorted(np.flatnonzero(res.error_mask).tolist())


def test_data_docs(gx_dir, contracts):
    index = build_data_docs(gx_dir, {"penalties": contracts["penalties"]})
    assert index == (gx_dir / "reports" / "data_docs" / "index.html").resolve()
    assert index.exists() and "credit_penalties" in index.read_text(encoding="utf-8")
    cfg = (gx_dir / "reports" / "gx" / "great_expectations.yml").read_text(encoding="utf-8")
    assert "analytics_enabled: false" in cfg


def _comparable(result) -> list:
    """Every expectation's outcome and result dict, in suite order (ids and run times left out)."""
    out = []
    for er in result.results:
        cfg = er.expectation_config
        out.append((cfg.type, cfg.meta.get("rule_id"), er.success,
                    json.dumps(er.result, sort_keys=True, default=str, ensure_ascii=False)))
    return out


@pytest.mark.parametrize("feed,make", [("penalties", penalty_rows), ("agri_subsidies", subsidy_rows)])
@pytest.mark.parametrize("result_format", ["COMPLETE", "SUMMARY"])
def test_gx_speedups_change_no_result(contracts, feed, make, result_format, monkeypatch):
    """gx_fast narrows metric frames, memoises configurations, row conditions and the expectation
    objects behind metric keywords, hashes plain metric keywords directly and takes the
    sampled unexpected values and row positions without filtering whole columns: every
    expectation's result (counts, unexpected values and indexes) must be GE's own, with the
    speed-ups undone (GE's original methods restored) as the reference."""
    from great_expectations.execution_engine import PandasExecutionEngine
    from great_expectations.expectations.expectation import Expectation

    from assets.validate import gx_fast

    contract = contracts[feed]
    df = staged(contract, make())
    fast, _ = run_suite(contract, df, result_format=result_format)
    monkeypatch.setattr(PandasExecutionEngine, "get_domain_records",
                        PandasExecutionEngine.get_domain_records.__wrapped__)
    monkeypatch.setattr(PandasExecutionEngine, "_apply_row_condition_filter",
                        PandasExecutionEngine._apply_row_condition_filter.__wrapped__)
    monkeypatch.setattr(Expectation, "configuration", property(Expectation.configuration.fget.__wrapped__))
    monkeypatch.setattr(gx_fast, "_memo", None)
    with gx_fast.ge_metric_kwargs_and_ids(), gx_fast.memoised_configurations(), gx_fast.ge_metric_functions():
        plain, _ = run_suite(contract, df, result_format=result_format)  # the memo: read by nothing now
    assert _comparable(fast) == _comparable(plain)
    assert any(not ok for _t, _r, ok, _res in _comparable(fast))  # failures are compared, not only passes


def test_plain_metric_ids_are_ges_own():
    """The direct hash of plain metric keywords gives GE's id; anything GE's converter would
    change (NaN, numpy scalars, enums, dates, non-str keys) goes through GE's own path."""
    import datetime
    import enum

    from great_expectations.core.id_dict import IDDict

    from assets.validate import gx_fast

    gx_fast.install()

    class Colour(str, enum.Enum):
        BLACK = "black"

    cases = [
        {"column": "处罚决定书文号", "batch_id": "b", "row_condition": None},
        {"value_set": ["11", "12", "13"] * 50, "mostly": 1.0, "result_format": {"result_format": "COMPLETE",
                                                                              "partial_unexpected_count": 20}},
        {"a": (1, 2, 3), "b": [True, None, 2.5, float("inf")], "c": {"x": IDDict({"y": "z"})}},
        {"a": float("nan"), "b": 1},
        {"a": np.int64(3), "b": "x"},
        {"a": Colour.BLACK, "b": "x"},
        {"a": datetime.date(2026, 11, 30), "b": "x"},
        {"a": {1: "one"}, "b": "x"},
        {"a": [np.float64(0.1), "x"], "b": {}},
        {"only": ["one key"]},
        {},
    ]
    for kwargs in cases:
        d = IDDict(kwargs)
        assert d.to_id() == IDDict.to_id.__wrapped__(d), kwargs
        assert d.to_id(id_ignore_keys={"b"}) == IDDict.to_id.__wrapped__(d, id_ignore_keys={"b"}), kwargs
    assert gx_fast._plain(["a", 1, None]) and not gx_fast._plain([float("nan")]) and not gx_fast._plain(np.int64(1))
