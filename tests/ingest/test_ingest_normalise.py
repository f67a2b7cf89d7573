"""Value normalisation: the date table of REFERENCE §2 and the other column rules."""

from __future__ import annotations

import pyarrow as pa
import pytest

from assets.ingest.normalise import clean_text, normalise_column, normalise_date, normalise_number


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2026/03/05", "2026-03-05"),
        ("2026/3/5", "2026-03-05"),
        ("2026-03-05", "2026-03-05"),
        ("2026-3-5", "2026-03-05"),
        ("2026.3.5", "2026-03-05"),
        ("20260305", "2026-03-05"),
        ("2026年3月5日", "2026-03-05"),
        ("2026年03月05日", "2026-03-05"),
        ("2026 年 3 月 5 日", "2026-03-05"),
        ("２０２６－０３－０５", "2026-03-05"),  # full-width digits and dash
        ("2026-03-05 00:00:00", "2026-03-05"),
        ("2026/3/5 14:30", "2026-03-05"),
        ("45721", "2025-03-05"),  # Excel serial
        ("45721.0", "2025-03-05"),
        ("45721.625", "2025-03-05"),  # serial with a time of day
        ("2099/12/31", "2099-12-31"),  # long-term sentinel
        ("1900-01-01", "1900-01-01"),  # sentinel converted; validation rejects it
        ("1899/12/31", "1899-12-31"),
        ("1", "1900-01-01"),  # Excel serial 1 shows as 1900-01-01
        ("2026-02-30", "2026-02-30"),  # impossible day stays as received
        ("2026/2/30", "2026/2/30"),
        ("20261301", "20261301"),
        ("2026", "2026"),  # a bare year is not read as a serial
        ("明天", "明天"),
        ("2026-03", "2026-03"),
        (None, None),
        ("", None),
        ("  ", None),
    ],
)
def test_date_table(raw, expected):
    assert normalise_date(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1,234.50", "1234.50"),
        ("1,234,567", "1234567"),
        ("500元", "500元"),  # a unit mark on a field without a unit: left for validation to report
        ("3.5万元", "3.5万元"),
        ("１２３．５", "123.5"),
        ("1，000", "1000"),
        ("1,5", "1,5"),  # not a thousands pattern: left for validation
        ("abc", "abc"),
        ("-2", "-2"),
    ],
)
def test_number_table(raw, expected):
    assert normalise_number(raw) == expected


@pytest.mark.parametrize(
    "raw, unit, expected",
    [
        ("5000元", "万元", "0.5"),  # issue 11: not 5000 万元 (fifty million yuan)
        ("0.5万元", "元", "5000"),  # issue 11: not 0.5 yuan
        ("1,234.5元", "万元", "0.12345"),
        ("3万元", "万元", "3"),  # marked with the field's own unit: just stripped
        ("500 元", "元", "500"),
        ("1.2亿元", "万元", "12000"),
        ("0.5", "万元", "0.5"),  # a bare number is taken to be in the field's unit
        ("约5000元", "万元", "约5000元"),  # not a number: reported by validation as received
    ],
)
def test_amount_units_convert_to_the_field_unit(raw, unit, expected):
    assert normalise_number(raw, unit) == expected


def col(values):
    return clean_text(pa.array(values, type=pa.string()))


def test_trim_and_empty_to_null():
    assert col(["  a ", "", "\u3000", None, "\ufeffb"]).to_pylist() == ["a", None, None, None, "b"]


def test_code_fields_upper_and_halfwidth(contracts):
    f = contracts["permits"].field("subject_uscc")
    out = normalise_column(col(["９１５００２３７ｍａ５ｕ１２３４ｘ７", "91500237ma5u1234x7", None]), f)
    assert out.to_pylist() == ["91500237MA5U1234X7", "91500237MA5U1234X7", None]


def test_enum_aliases_and_multi_value(contracts):
    status = contracts["permits"].field("status")
    assert normalise_column(col(["1", "2", "１", "有效", "x"]), status).to_pylist() == ["有效", "无效", "有效", "有效", "x"]
    kind = contracts["permits"].field("subject_kind")
    assert normalise_column(col(["法人及其他组织", "个体户"]), kind).to_pylist() == ["法人及非法人组织", "个体工商户"]
    cat = contracts["penalties"].field("penalty_category")
    out = normalise_column(col(["罚款；没收违法所得", "警告、暂扣执照", "罚款,警告", "罚款 ; ;警告", "罚款，吊销许可证"]), cat)
    assert out.to_pylist() == ["罚款;没收违法所得", "警告;暂扣许可证件", "罚款;警告", "罚款;警告", "罚款;吊销许可证件"]


def test_amount_column(contracts):
    f = contracts["penalties"].field("fine_amount")
    assert normalise_column(col(["1,000", "2万元", "3", None, "x1"]), f).to_pylist() == ["1000", "2", "3", None, "x1"]


def test_date_column(contracts):
    f = contracts["permits"].field("decision_date")
    assert normalise_column(col(["2026/3/5", "2026-02-30", "45721"]), f).to_pylist() == [
        "2026-03-05", "2026-02-30", "2025-03-05"]
