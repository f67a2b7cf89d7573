"""Contract → Great Expectations suite compiler, the file-backed GE context, GE runs and Data Docs.

One expectation per compiled rule (``rules.compile_rules``), carrying ``meta.rule_id``,
``meta.severity`` and the Chinese ``meta.message``. Built-in expectations where their semantics are
the rule's exactly: ``required`` → not_null; ``required_when`` (equals / in) → not_null with a pandas
``row_condition``; plain ``enum`` → in_set; ``pattern`` → match_regex (anchored: GE searches);
``length`` → value_lengths_between. Identifier, date and number checks use the custom column map
expectations of ``expectations.py``; every other rule uses ``expect_rows_to_pass_credit_rule``.

The context lives in ``DATA_DIR/reports/gx/`` (suites as JSON under ``gx/expectations/``); the
Data Docs site is written to ``DATA_DIR/reports/data_docs/``. Analytics are off.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Mapping  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import great_expectations as gx  # noqa: E402
from great_expectations.core import ExpectationSuite  # noqa: E402

from contracts import Condition, Contract  # noqa: E402
from warehouse.layout import DataDir  # noqa: E402

from assets.validate import expectations as cx  # noqa: E402
from assets.validate.rules import CompiledRule, compile_rules  # noqa: E402

LINEAGE = ["_file_id", "_row_no", "_dept", "_feed", "_received_date", "_source_name", "_extra"]
SITE_NAME = "credit_docs"
DATASOURCE = "credit_frames"


def suite_name(feed: str) -> str:
    return f"credit_{feed}"


def _query(cond: Condition) -> str | None:
    """pandas query text for simple conditions (null satisfies none of them, as in rules.py)."""
    lit = lambda v: json.dumps(v, ensure_ascii=False)  # noqa: E731
    if cond.equals is not None:
        return f"`{cond.field}` == {lit(cond.equals)}"
    if cond.in_ is not None:
        return f"`{cond.field}` in [{', '.join(lit(v) for v in cond.in_)}]"
    return None


def _meta(r: CompiledRule) -> dict[str, Any]:
    return {"rule_id": r.id, "severity": r.severity, "message": r.message, "field": r.field}


def _generic(contract: Contract, r: CompiledRule, meta: dict, severity: str) -> Any:
    cols = list(dict.fromkeys([*r.columns, "_row_no"]))
    return cx.ExpectRowsToPassCreditRule(column_list=cols, feed=contract.feed, rule_id=r.id, meta=meta,
                                         severity=severity, ignore_row_if="never")


def expectation_for(contract: Contract, r: CompiledRule) -> Any:
    meta = _meta(r)
    severity = "critical" if r.severity == "error" else "warning"
    common = dict(meta=meta, severity=severity)
    params = r.params
    check = r.check
    if check == "required":
        return gx.expectations.ExpectColumnValuesToNotBeNull(column=r.field, **common)
    if check == "required_when":
        q = _query(params["condition"])
        if q:
            return gx.expectations.ExpectColumnValuesToNotBeNull(column=r.field, row_condition=q,
                                                                 condition_parser="pandas", **common)
    if check == "enum" and not params.get("multi") and not params.get("prefixes"):
        return gx.expectations.ExpectColumnValuesToBeInSet(column=r.field, value_set=params["values"], **common)
    if check == "pattern":
        return gx.expectations.ExpectColumnValuesToMatchRegex(column=r.field, regex=f"^(?:{params['regex']})\\Z", **common)
    if check == "length":
        return gx.expectations.ExpectColumnValueLengthsToBeBetween(
            column=r.field, min_value=params.get("min_length"), max_value=params.get("max_length"), **common)
    if check == "type":
        f = contract.field(r.field)
        if f.type == "date":
            return cx.ExpectColumnValuesToBeIsoDates(column=r.field, **common)
        return cx.ExpectColumnValuesToBeDecimalText(column=r.field, integer=f.type == "integer", **common)
    classes = {"uscc": cx.ExpectColumnValuesToBeValidUscc, "ric": cx.ExpectColumnValuesToBeValidRic,
               "org_code": cx.ExpectColumnValuesToBeValidOrgCode,
               "uscc_division": cx.ExpectColumnValuesToHaveKnownUsccDivision}
    if check in classes:
        ident = contract.field(r.field).identifier
        when = ident.when if ident else None
        if when is None:
            return classes[check](column=r.field, **common)
        q = _query(when)
        if q:
            return classes[check](column=r.field, row_condition=q, condition_parser="pandas", **common)
    return _generic(contract, r, meta, severity)


def build_suite(contract: Contract) -> ExpectationSuite:
    cx.register_contract(contract)
    suite = ExpectationSuite(name=suite_name(contract.feed),
                             meta={"feed": contract.feed, "title": contract.title, "legal_basis": contract.legal_basis})
    for r in compile_rules(contract):
        suite.add_expectation(expectation_for(contract, r))
    return suite


# ---- context ------------------------------------------------------------------------------------
def get_context(data_dir: str | Path):
    """The file-backed GE context under DATA_DIR/reports/gx/, with our Data Docs site, analytics off."""
    layout = DataDir(data_dir)
    layout.reports.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(layout.reports))
    cfg = context.variables.config
    changed = False
    if cfg.analytics_enabled is not False:
        context.variables.analytics_enabled = False
        changed = True
    sites = context.get_config().data_docs_sites or {}
    if SITE_NAME not in sites:
        context.add_data_docs_site(
            site_name=SITE_NAME,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                  "base_directory": str(layout.data_docs)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    if "local_site" in sites:
        context.delete_data_docs_site("local_site")
    if (cfg.progress_bars or {}).get("globally") is not False:
        context.variables.progress_bars = {"globally": False, "metric_calculations": False}
        changed = True
    if changed:
        context.variables.save()
    return context


def _ephemeral():
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults

    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(),
                               analytics_enabled=False,
                               progress_bars={"globally": False, "metric_calculations": False})
    return gx.get_context(project_config=config, mode="ephemeral")


def save_suites(data_dir: str | Path, contracts: Mapping[str, Contract], context=None) -> dict[str, Path]:
    """Compile and store every contract's suite; returns feed -> suite JSON path."""
    context = context or get_context(data_dir)
    out = {}
    for feed, contract in contracts.items():
        suite = build_suite(contract)
        context.suites.add_or_update(suite)
        out[feed] = Path(context.root_directory) / "expectations" / f"{suite.name}.json"
    return out


def _batch_frame(contract: Contract, df: pd.DataFrame) -> pd.DataFrame:
    """The frame GE sees: positional index, every contract and lineage column present."""
    frame = df.reset_index(drop=True)
    missing = [c for c in contract.field_names + LINEAGE if c not in frame.columns]
    if missing:
        frame = frame.assign(**{c: pd.Series([None] * len(frame), dtype="object") for c in missing})
    return frame


def _definition(context, contract: Contract, suite: ExpectationSuite):
    ds = context.data_sources.add_or_update_pandas(DATASOURCE)
    try:
        asset = ds.get_asset(contract.feed)
    except LookupError:
        asset = ds.add_dataframe_asset(name=contract.feed)
    try:
        bd = asset.get_batch_definition("whole")
    except (KeyError, LookupError, ValueError):
        bd = asset.add_batch_definition_whole_dataframe("whole")
    vd = gx.ValidationDefinition(data=bd, suite=suite, name=f"validate_{contract.feed}")
    return context.validation_definitions.add_or_update(vd)


def run_suite(contract: Contract, df: pd.DataFrame, data_dir: str | Path | None = None, context=None,
              result_format: str = "COMPLETE"):
    """Validate ``df`` with the contract's suite. Returns (GE result, {rule_id: failing row positions}).

    Row positions come from ``unexpected_index_list`` (never from value lists, which stop at 200).
    Without ``data_dir`` an ephemeral context is used (nothing written).
    """
    if context is None:
        context = get_context(data_dir) if data_dir is not None else _ephemeral()
    suite = build_suite(contract)
    suite = context.suites.add_or_update(suite)
    vd = _definition(context, contract, suite)
    frame = _batch_frame(contract, df)
    result = vd.run(batch_parameters={"dataframe": frame},
                    result_format={"result_format": result_format, "return_unexpected_index_query": False})
    failing: dict[str, np.ndarray] = {}
    for er in result.results:
        rule_id = er.expectation_config.meta["rule_id"]
        idx = (er.result or {}).get("unexpected_index_list") or []
        failing[rule_id] = np.array(sorted(int(i) for i in idx), dtype=np.int64)
        if er.exception_info and er.exception_info.get("raised_exception"):
            raise RuntimeError(f"GE expectation for {rule_id} failed to run: {er.exception_info.get('exception_message')}")
    return result, failing


def build_data_docs(data_dir: str | Path, contracts: Mapping[str, Contract], *results: Any,
                    received: date | str | None = None) -> Path:
    """Build the Data Docs site under DATA_DIR/reports/data_docs/ and return its index.html.

    Suites of every contract are (re)compiled and stored. ``results`` are GE validation results
    (from ``run_suite``) to store and show; with ``received``, the day's staged frames are validated
    through GE (SUMMARY format: counts and samples for the page; the row-level outcome is in
    validated/) and shown as well.
    """
    from assets.validate.engine import read_staged

    context = get_context(data_dir)
    save_suites(data_dir, contracts, context)
    for res in results:
        _store(context, res)
    if received is not None:
        for feed, contract in contracts.items():
            table = read_staged(data_dir, feed, received)
            if table is None:
                continue
            suite = context.suites.get(suite_name(feed))
            vd = _definition(context, contract, suite)
            cp = gx.Checkpoint(name=f"nightly_{feed}", validation_definitions=[vd],
                               actions=[gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=[SITE_NAME])],
                               result_format={"result_format": "SUMMARY"})
            cp = context.checkpoints.add_or_update(cp)
            cp.run(batch_parameters={"dataframe": _batch_frame(contract, table.to_pandas())})
    context.build_data_docs(site_names=[SITE_NAME])
    index = DataDir(data_dir).data_docs / "index.html"
    assert index.exists(), index
    return index


def _store(context, result) -> None:
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    run_id = result.meta.get("run_id")
    batch_id = (result.meta.get("active_batch_definition") or {}).get("batch_identifiers") or "batch"
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
        run_id=run_id,
        batch_identifier=str(result.meta.get("batch_spec", {}).get("data_asset_name", batch_id)),
    )
    context.validation_results_store.set(key, result)
