"""Data Docs as a data officer reads them: offline, in Chinese, with rule ids and Chinese messages,
and with personal values masked.

Great Expectations builds the site; this module plugs into the hooks GE 1.24's site builder takes
from the site configuration (``site_section_builders`` renderer and view classes, the site index
builder's ``view``), rather than rewriting pages after the build:

- **Offline.** ``CreditPageView`` / ``CreditIndexPageView`` put ``datadocs_templates/`` in front of
  GE's own templates. Those templates link jQuery, Bootstrap, bootstrap-table, FontAwesome, vega …
  from the site's ``static/vendor/`` (shipped in ``datadocs_static/``, copied by
  :func:`install_static`) instead of public CDNs, and the logo and favicon from ``static/images/``.
  GE's docs call these keys "not supported" (they still work in 1.24); the browser test
  (tests/publish/test_data_docs_browser.py) fails if a GE upgrade stops honouring them.
- **Chinese.** Page text that lives in templates is Chinese in ours; headings GE's renderers
  hard-code in English ("Overview", "Table-Level Expectations", column titles …) are translated
  in the view by exact match (:data:`ZH`), so data values are never touched.
- **Rule id + Chinese message.** Every expectation carries ``meta.rule_id`` and ``meta.message``
  (suites.py); the content-block renderers below put them in front of GE's own description on
  suite and result pages.
- **Masking.** :func:`mask_validation_result` masks the values GE keeps in a result (sampled
  unexpected values, value counts, observed values) through ``warehouse.masking`` — personal
  fields by their kind, everything else scrubbed — and keeps the row indexes. It runs inside the
  context's validation results store (:func:`guard_store`), so nothing unmasked is written to
  ``reports/gx`` nor rendered.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import types
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader

from great_expectations.core import ExpectationSuiteValidationResult
from great_expectations.render import RenderedStringTemplateContent
from great_expectations.render.renderer.content_block.bullet_list_content_block import (
    ExpectationSuiteBulletListContentBlockRenderer,
)
from great_expectations.render.renderer.content_block.validation_results_table_content_block import (
    ValidationResultsTableContentBlockRenderer,
)
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView

from warehouse.masking import is_free_text, kind_for_field, mask, scrub_text

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "datadocs_templates"
STATIC_DIR = HERE / "datadocs_static"

# ---- site configuration -------------------------------------------------------------------------
_GE_RENDERER = "great_expectations.render.renderer"
_GE_COLUMNS = "great_expectations.render.renderer.column_section_renderer"


def section_builders() -> dict[str, Any]:
    """``site_section_builders`` of the site config: GE's page renderers with our content blocks
    and our page view. We never profile: no profiling section."""
    view = {"module_name": __name__, "class_name": "CreditPageView"}
    return {
        "expectations": {
            "renderer": {
                "module_name": _GE_RENDERER, "class_name": "ExpectationSuitePageRenderer",
                "column_section_renderer": {
                    "module_name": _GE_COLUMNS, "class_name": "ExpectationSuiteColumnSectionRenderer",
                    "bullet_list_renderer": {"module_name": __name__, "class_name": "CreditSuiteBulletListRenderer"},
                },
            },
            "view": view,
        },
        "validations": {
            "renderer": {
                "module_name": _GE_RENDERER, "class_name": "ValidationResultsPageRenderer",
                "column_section_renderer": {
                    "module_name": _GE_COLUMNS, "class_name": "ValidationResultsColumnSectionRenderer",
                    "table_renderer": {"module_name": __name__, "class_name": "CreditResultsTableRenderer"},
                },
            },
            "view": view,
        },
        "profiling": "None",
    }


def index_view() -> dict[str, str]:
    return {"module_name": __name__, "class_name": "CreditIndexPageView"}


# ---- static assets ------------------------------------------------------------------------------
def _static_digest() -> str:
    h = hashlib.sha256()
    for path in sorted((STATIC_DIR / "vendor").rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(STATIC_DIR)).encode())
            h.update(str(path.stat().st_size).encode())
    return h.hexdigest()


def install_static(site: str | Path) -> bool:
    """Copy the shipped scripts, styles and fonts (with their licences) to ``site/static/vendor``
    unless the same set is already there; True when copied. A stat of ~40 files per build."""
    target = Path(site) / "static" / "vendor"
    marker = target / ".credit_vendor"
    digest = _static_digest()
    if marker.exists() and marker.read_text(encoding="utf-8") == digest:
        return False
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(STATIC_DIR / "vendor", target)
    shutil.copyfile(STATIC_DIR / "README.md", target / "README.md")
    marker.write_text(digest, encoding="utf-8")
    return True


# ---- Chinese text -------------------------------------------------------------------------------
ZH: dict[str, str] = {
    # page renderers
    "Overview": "概览",
    "Table-Level Expectations": "表级规则（跨字段、整批）",
    "Statistics": "统计",
    "Evaluated Expectations": "已执行规则",
    "Successful Expectations": "通过的规则",
    "Unsuccessful Expectations": "未通过的规则",
    "Success Percent": "通过率",
    "Show more info...": "更多信息…",
    "Info": "信息",
    "Great Expectations Version": "Great Expectations 版本",
    "Run Name": "运行名（接收日）",
    "Run Time": "运行时间",
    "Batch Markers": "批次标记",
    "Batch Parameters": "批次参数",
    "Batch Spec": "批次说明",
    "Batch Kwargs": "批次参数",
    "Status": "状态",
    "Expectation": "规则",
    "Observed Value": "观测值",
    "Expectation Suite:": "规则集：",
    "Data asset:": "数据资产：",
    "Status:": "状态：",
    "Succeeded": "通过",
    "Failed": "未通过",
    "Success": "通过",
    "Failure": "未通过",
    "Unexpected Value": "不符合的值（已脱敏）",
    "Count": "行数",
    "Sampled Unexpected Values": "不符合的值样本（已脱敏）",
    "Expectation Suite Structure": "规则集结构",
    "Expectation Suites": "校验规则集",
    "Validation Results": "校验结果",
    "Expectation Suite": "规则集",
    "Asset Name": "数据资产",
    "Batch ID": "批次",
    "Profiler": "分析器",
    "Data Docs": "数据校验文档",
    "Notes": "说明",
    "expectations": "条规则",
    "expectation": "条规则",
    "columns": "个字段",
    "column": "个字段",
}


ZH["\n\n$unexpected_count unexpected values found. $unexpected_percent of $element_count total rows."] = (
    "\n\n发现 $unexpected_count 个不符合的值，占全部 $element_count 行的 $unexpected_percent。")
# observed values GE formats as text: "≈3.1579% unexpected", "100% not null"
ZH_PATTERNS = [
    (re.compile(r"^(≈?[0-9.,]+%) unexpected$"), r"\1 不符合"),
    (re.compile(r"^(≈?[0-9.,]+%) not null$"), r"\1 非空"),
]


def translate(node: Any) -> Any:
    """Replace English UI phrases GE's renderers hard-code with Chinese: exact phrases and the
    two observed-value patterns only, so data values are never touched."""
    if isinstance(node, dict):
        return {k: translate(v) for k, v in node.items()}
    if isinstance(node, list):
        return [translate(v) for v in node]
    if isinstance(node, str):
        if node in ZH:
            return ZH[node]
        for pattern, repl in ZH_PATTERNS:
            if pattern.match(node):
                return pattern.sub(repl, node)
    return node


class _LocalTemplates:
    """Our templates first, then GE's (GE appends custom folders *after* its own, so a plugin
    folder cannot replace a template; a view class can)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.env.loader = ChoiceLoader([FileSystemLoader(str(TEMPLATES_DIR)), self.env.loader])

    def render(self, document, template=None, **kwargs):
        self._validate_document(document)
        page = self._get_template(template or self._template)
        return page.render(translate(document.to_json_dict()), **kwargs)


class CreditPageView(_LocalTemplates, DefaultJinjaPageView):
    """Suite and validation result pages: local assets, Chinese text."""


class CreditIndexPageView(_LocalTemplates, DefaultJinjaIndexPageView):
    """The index page: local assets (bootstrap-table fills its tables), Chinese text."""


# ---- rule id + Chinese message ------------------------------------------------------------------
def rule_label(meta: dict | None) -> RenderedStringTemplateContent | None:
    """``PEN-FINE  罚款金额应大于0 …`` for an expectation compiled from a contract rule."""
    meta = meta or {}
    if not meta.get("rule_id"):
        return None
    severity = "错误" if meta.get("severity") == "error" else "警告"
    return RenderedStringTemplateContent(
        content_block_type="string_template",
        string_template={
            "template": "$rule_id $message （$severity）",
            "tag": "div",  # a line of its own above GE's description
            "params": {"rule_id": str(meta["rule_id"]), "message": str(meta.get("message") or ""), "severity": severity},
            "styling": {"params": {
                "rule_id": {"classes": ["badge", "badge-info", "credit-rule-id"]},
                "message": {"classes": ["credit-rule-message"]},
            }},
        },
        styling={"classes": ["credit-rule"]},
    )


def _prepend(label, cell) -> list:
    return [label, *cell] if isinstance(cell, list) else [label, cell]


class CreditResultsTableRenderer(ValidationResultsTableContentBlockRenderer):
    """GE's validation results table with the rule id and Chinese message above each description."""

    @classmethod
    def _get_content_block_fn(cls, expectation_type, expectation_config=None):
        row_fn = super()._get_content_block_fn(expectation_type=expectation_type, expectation_config=expectation_config)
        if row_fn is None:
            return None

        def labelled(configuration=None, result=None, runtime_configuration=None, **kwargs):
            rows = row_fn(configuration=configuration, result=result, runtime_configuration=runtime_configuration, **kwargs)
            cfg = getattr(result, "expectation_config", None) or configuration
            label = rule_label(getattr(cfg, "meta", None))
            if label is not None and rows and len(rows[0]) > 1:
                rows[0][1] = _prepend(label, rows[0][1])
            return rows

        return labelled


class CreditSuiteBulletListRenderer(ExpectationSuiteBulletListContentBlockRenderer):
    """GE's suite page bullet list with the rule id and Chinese message in front of each item."""

    @classmethod
    def _get_content_block_fn(cls, expectation_type, expectation_config=None):
        fn = super()._get_content_block_fn(expectation_type=expectation_type, expectation_config=expectation_config)
        fn = fn or cls._missing_content_block_fn

        def labelled(configuration=None, runtime_configuration=None, **kwargs):
            items = fn(configuration=configuration, runtime_configuration=runtime_configuration, **kwargs)
            label = rule_label(getattr(configuration, "meta", None))
            if label is not None and items:
                items = [_prepend(label, items[0]), *items[1:]]
            return items

        return labelled


# ---- masking ------------------------------------------------------------------------------------
_VALUE_KEYS = ("partial_unexpected_list", "unexpected_list", "observed_value", "details", "unexpected_rows")


def _field_masker(contract, column: str | None):
    field = None
    if contract is not None and column:
        field = next((f for f in contract.fields if f.name == column), None)
    if field is not None and field.privacy == "personal":
        kind = kind_for_field(field)
        return lambda v: v if v is None or (isinstance(v, float) and v != v) else mask(v, kind)
    if field is not None and not is_free_text(field):  # a code as received (warehouse.masking)
        return lambda v: _scrub(v, cards=False)
    return _scrub


def _scrub(value: Any, cards: bool = True) -> Any:
    """Every string inside ``value`` scrubbed of ID, phone and card numbers; structure kept."""
    if isinstance(value, str):
        return scrub_text(value, cards)
    if isinstance(value, dict):
        return {k: _scrub(v, cards) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub(v, cards) for v in value)
    return value


def _mask_item(item: Any, columns: list[str], maskers: dict) -> Any:
    if isinstance(item, dict):
        return {k: maskers.get(k, _scrub)(v) for k, v in item.items()}
    if isinstance(item, (list, tuple)) and len(columns) > 1 and len(item) == len(columns):
        return type(item)(maskers[c](v) for c, v in zip(columns, item))
    if len(columns) == 1:
        return maskers[columns[0]](item)
    return _scrub(item)


def _round(value: Any) -> Any:
    """Percentages to 6 decimals: 3.1578947368421053 carries a 16-digit run that privacy
    scanners (``find_unmasked``) cannot tell from a bank card number."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def mask_validation_result(result: ExpectationSuiteValidationResult, contract=None) -> ExpectationSuiteValidationResult:
    """Mask, in place, every data value a validation result keeps (row indexes stay).

    Values of the contract's personal fields are masked by their kind (``warehouse.masking.mask``),
    any other string is scrubbed of ID, phone and card numbers (``scrub_text``); percentages are
    rounded to 6 decimals. Idempotent."""
    if isinstance(result.statistics, dict):
        result.statistics = _round(result.statistics)
    for er in result.results or []:
        res = er.result
        if not isinstance(res, dict) or not res:
            continue
        for key in ("unexpected_percent", "unexpected_percent_total", "unexpected_percent_nonmissing",
                    "missing_percent"):
            if isinstance(res.get(key), float):
                res[key] = round(res[key], 6)
        kwargs = er.expectation_config.kwargs if er.expectation_config else {}
        columns = list(kwargs.get("column_list") or ([kwargs["column"]] if kwargs.get("column") else []))
        maskers = {c: _field_masker(contract, c) for c in columns}
        for key in _VALUE_KEYS:
            if key in res and res[key] is not None:
                value = res[key]
                if key in ("partial_unexpected_list", "unexpected_list") and isinstance(value, list):
                    res[key] = [_mask_item(v, columns, maskers) for v in value]
                elif key == "unexpected_rows":
                    res[key] = None  # whole rows: never kept (quarantine is by index)
                else:
                    res[key] = _scrub(value)
        counts = res.get("partial_unexpected_counts")
        if isinstance(counts, list):
            res["partial_unexpected_counts"] = [
                dict(c, value=_mask_item(c["value"], columns, maskers)) if isinstance(c, dict) and "value" in c else c
                for c in counts
            ]
    return result


def _contract_for_suite(suite_name: str | None):
    from assets.validate import expectations as cx

    feed = (suite_name or "").removeprefix("credit_")
    try:
        return cx.contract_for(feed)
    except KeyError:
        return None


def guard_store(context) -> None:
    """Mask every validation result on its way into the context's results store (whichever GE
    path stores it: ``ValidationDefinition.run``, checkpoints, or ours). Per context instance."""
    store = context.validation_results_store
    if getattr(store, "_credit_masked", False):
        return
    original = store.set

    def masked_set(self, key, value, **kwargs):
        if isinstance(value, ExpectationSuiteValidationResult):
            mask_validation_result(value, _contract_for_suite(value.suite_name))
        return original(key, value, **kwargs)

    store.set = types.MethodType(masked_set, store)
    store._credit_masked = True
