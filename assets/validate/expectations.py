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

from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent  # noqa: E402
from great_expectations.render.renderer.renderer import renderer  # noqa: E402

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


# ---- how the custom expectations read in Data Docs -------------------------------------------------
def _zh_text(template: str, params: dict) -> list[RenderedStringTemplateContent]:
    return [RenderedStringTemplateContent(
        content_block_type="string_template",
        string_template={"template": template, "params": params,
                         "styling": {"params": {k: {"classes": ["badge", "badge-secondary"]} for k in params}}},
    )]


class _ZhColumnRendering:
    """Prescriptive text in Chinese for a custom column check (GE's fallback prints the raw call).
    The rule id and the contract's message are added in front by docs_site's renderers."""

    zh_description: ClassVar[str] = ""

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None, **kwargs):
        kw = configuration.kwargs if configuration is not None else {}
        params = {"column": kw.get("column") or ""}
        template = "字段 $column：" + cls.zh_description
        cond = kw.get("row_condition")
        if isinstance(cond, dict):  # GE 1.24 stores {"type": "pass_through", "pass_through_filter": ...}
            cond = cond.get("pass_through_filter") or str(cond)
        if cond:
            params["row_condition"] = str(cond)
            template += "（仅当 $row_condition）"
        return _zh_text(template, params)


# ---- expectations ------------------------------------------------------------------------------
class ExpectColumnValuesToBeValidUscc(_ZhColumnRendering, ColumnMapExpectation):
    """统一社会信用代码 GB 32100-2015 (python-stdnum)."""

    zh_description: ClassVar[str] = "统一社会信用代码校验位正确（GB 32100）"

    map_metric = "column_values.credit_valid_uscc"
    success_keys: ClassVar[Tuple[str, ...]] = ("mostly",)


class ExpectColumnValuesToBeValidRic(_ZhColumnRendering, ColumnMapExpectation):
    """居民身份证号码 GB 11643-1999 (python-stdnum, 15-digit and lenient area; see identifiers.py)."""

    zh_description: ClassVar[str] = "居民身份证号码校验位正确（GB 11643）"

    map_metric = "column_values.credit_valid_ric"
    success_keys: ClassVar[Tuple[str, ...]] = ("mostly",)


class ExpectColumnValuesToBeValidOrgCode(_ZhColumnRendering, ColumnMapExpectation):
    """组织机构代码 GB 11714 check character."""

    zh_description: ClassVar[str] = "组织机构代码校验位正确（GB 11714）"

    map_metric = "column_values.credit_valid_org_code"
    success_keys: ClassVar[Tuple[str, ...]] = ("mostly",)


class ExpectColumnValuesToHaveKnownUsccDivision(_ZhColumnRendering, ColumnMapExpectation):
    """USCC positions 3–8 in the MCA province/prefecture list (valid USCCs only)."""

    zh_description: ClassVar[str] = "统一社会信用代码中的行政区划代码存在"

    map_metric = "column_values.credit_known_uscc_division"
    success_keys: ClassVar[Tuple[str, ...]] = ("mostly",)


class ExpectColumnValuesToBeIsoDates(_ZhColumnRendering, ColumnMapExpectation):
    """A real day written YYYY-MM-DD."""

    zh_description: ClassVar[str] = "日期为真实日期，格式 YYYY-MM-DD"

    map_metric = "column_values.credit_iso_date"
    success_keys: ClassVar[Tuple[str, ...]] = ("mostly",)


class ExpectColumnValuesToBeDecimalText(_ZhColumnRendering, ColumnMapExpectation):
    """Text that reads as a finite decimal (an integer when ``integer``)."""

    zh_description: ClassVar[str] = "取值为数字"

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

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None, **kwargs):
        kw = configuration.kwargs if configuration is not None else {}
        columns = [c for c in kw.get("column_list") or [] if not str(c).startswith("_")]
        return _zh_text("合同规则 $rule_id，涉及字段：$columns", {"rule_id": kw.get("rule_id") or "", "columns": "、".join(columns) or "—"})


CUSTOM_EXPECTATIONS = [
    ExpectColumnValuesToBeValidUscc,
    ExpectColumnValuesToBeValidRic,
    ExpectColumnValuesToBeValidOrgCode,
    ExpectColumnValuesToHaveKnownUsccDivision,
    ExpectColumnValuesToBeIsoDates,
    ExpectColumnValuesToBeDecimalText,
    ExpectRowsToPassCreditRule,
]
