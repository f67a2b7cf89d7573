"""Great Expectations custom expectations for the credit catalog.

Every custom expectation's pandas metric calls the functions of ``assets.validate.rules`` (the same
per-distinct-value helpers and compiled rule masks the row-level engine uses), so GE and
``validate_frame`` cannot disagree. Two families:

- column map expectations for single-column checks (nulls are skipped by GE, exactly as the rules
  skip them): ``expect_column_values_to_be_valid_uscc``, ``..._valid_ric``, ``..._valid_org_code``,
  ``..._to_have_known_uscc_division``, ``..._to_be_iso_dates``, ``..._to_be_decimal_text``;
- one multicolumn map expectation, ``expect_rows_to_pass_credit_rule``, for every other compiled rule
  (conditional, cross-field, per-delivery): its metric evaluates the compiled rule ``rule_id`` of
  contract ``feed`` on the row block GE hands it (``ignore_row_if="never"``: every row).

Contracts are looked up by feed id in a small registry filled by the suite compiler
(``register_contract``), falling back to the shipped catalog.
"""

from __future__ import annotations

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # never phone home from an intranet

from typing import ClassVar, Literal, Tuple  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from great_expectations.execution_engine import PandasExecutionEngine  # noqa: E402
from great_expectations.expectations.expectation import (  # noqa: E402
    ColumnMapExpectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.metrics.map_metric_provider import (  # noqa: E402
    ColumnMapMetricProvider,
    MulticolumnMapMetricProvider,
    column_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.multicolumn_condition_partial import (  # noqa: E402
    multicolumn_condition_partial,
)

from contracts import Contract, catalog  # noqa: E402
from assets.validate import identifiers, rules  # noqa: E402

_CONTRACTS: dict[str, Contract] = {}


def register_contract(contract: Contract) -> None:
    _CONTRACTS[contract.feed] = contract


def contract_for(feed: str) -> Contract:
    if feed in _CONTRACTS:
        return _CONTRACTS[feed]
    return catalog()[feed]


def _ok(column: pd.Series, fn) -> pd.Series:
    """True where ``fn`` accepts the value, computed once per distinct value (rules._per_unique)."""
    return pd.Series(rules._per_unique_scalar(column, fn, True, bool), index=column.index)


# ---- metric providers --------------------------------------------------------------------------
class ColumnValuesValidUscc(ColumnMapMetricProvider):
    condition_metric_name = "column_values.credit_valid_uscc"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return _ok(column, identifiers.uscc_ok)


class ColumnValuesValidRic(ColumnMapMetricProvider):
    condition_metric_name = "column_values.credit_valid_ric"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return _ok(column, identifiers.ric_ok)


class ColumnValuesValidOrgCode(ColumnMapMetricProvider):
    condition_metric_name = "column_values.credit_valid_org_code"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return _ok(column, identifiers.org_code_ok)


class ColumnValuesKnownUsccDivision(ColumnMapMetricProvider):
    condition_metric_name = "column_values.credit_known_uscc_division"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return _ok(column, lambda v: not identifiers.uscc_ok(v) or rules.division_known(v.upper()))


class ColumnValuesIsoDates(ColumnMapMetricProvider):
    condition_metric_name = "column_values.credit_iso_date"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return pd.Series(~np.isnat(rules.parse_dates(column)), index=column.index)


class ColumnValuesDecimalText(ColumnMapMetricProvider):
    condition_metric_name = "column_values.credit_decimal_text"
    condition_value_keys = ("integer",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, integer=False, **kwargs):
        return pd.Series(~np.isnan(rules.parse_numbers(column, bool(integer))), index=column.index)


class RowsPassCreditRule(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.credit_rule"
    condition_domain_keys = ("batch_id", "table", "column_list", "row_condition", "condition_parser", "ignore_row_if")
    condition_value_keys = ("feed", "rule_id")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, feed=None, rule_id=None, **kwargs):
        rule = rules.rule_by_id(contract_for(feed), rule_id)
        return pd.Series(~rule.mask(column_list), index=column_list.index)


# ---- expectations ------------------------------------------------------------------------------
class ExpectColumnValuesToBeValidUscc(ColumnMapExpectation):
    """统一社会信用代码 GB 32100-2015 (python-stdnum)."""

    map_metric = "column_values.credit_valid_uscc"
    success_keys: ClassVar[Tuple[str, ...]] = ("mostly",)


class ExpectColumnValuesToBeValidRic(ColumnMapExpectation):
    """居民身份证号码 GB 11643-1999 (python-stdnum, 15-digit and lenient area; see identifiers.py)."""

    map_metric = "column_values.credit_valid_ric"
    success_keys: ClassVar[Tuple[str, ...]] = ("mostly",)


class ExpectColumnValuesToBeValidOrgCode(ColumnMapExpectation):
    """组织机构代码 GB 11714 check character."""

    map_metric = "column_values.credit_valid_org_code"
    success_keys: ClassVar[Tuple[str, ...]] = ("mostly",)


class ExpectColumnValuesToHaveKnownUsccDivision(ColumnMapExpectation):
    """USCC positions 3–8 in the MCA province/prefecture list (valid USCCs only)."""

    map_metric = "column_values.credit_known_uscc_division"
    success_keys: ClassVar[Tuple[str, ...]] = ("mostly",)


class ExpectColumnValuesToBeIsoDates(ColumnMapExpectation):
    """A real day written YYYY-MM-DD."""

    map_metric = "column_values.credit_iso_date"
    success_keys: ClassVar[Tuple[str, ...]] = ("mostly",)


class ExpectColumnValuesToBeDecimalText(ColumnMapExpectation):
    """Text that reads as a finite decimal (an integer when ``integer``)."""

    integer: bool = False
    map_metric = "column_values.credit_decimal_text"
    success_keys: ClassVar[Tuple[str, ...]] = ("mostly", "integer")


class ExpectRowsToPassCreditRule(MulticolumnMapExpectation):
    """Rows pass the compiled contract rule ``rule_id`` of ``feed`` (assets.validate.rules)."""

    feed: str
    rule_id: str
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = "never"
    map_metric = "multicolumn_values.credit_rule"
    success_keys: ClassVar[Tuple[str, ...]] = ("mostly", "feed", "rule_id")


CUSTOM_EXPECTATIONS = [
    ExpectColumnValuesToBeValidUscc,
    ExpectColumnValuesToBeValidRic,
    ExpectColumnValuesToBeValidOrgCode,
    ExpectColumnValuesToHaveKnownUsccDivision,
    ExpectColumnValuesToBeIsoDates,
    ExpectColumnValuesToBeDecimalText,
    ExpectRowsToPassCreditRule,
]
