"""One Great Expectations validation result per feed and night, computed over row chunks.

Why: GE 1.24 resolves the metrics of every expectation of a suite in one bundle over the whole
batch frame. For the night's largest feed (penalties: 418,000 rows at a 1M-row night) that bundle
held ≈ 1.4 GiB of Arrow temporaries on top of the frame and was the nightly job's memory peak.

How (:func:`validate`): GE plans the suite once, exactly as ``ValidationDefinition.run`` does
(the batch is an empty frame with the feed's columns and dtypes), and its metric graph is then
resolved once per chunk of at most :data:`CHUNK_ROWS` rows, each chunk loaded as that batch's data
with its rows' positions in the whole feed as index. The metrics of all chunks are merged before
GE's own ``_validate`` of each expectation formats its result, so every count, percentage,
success flag, sampled unexpected value and row position is what one run over the whole frame
gives:

- ``table.row_count``, ``*.unexpected_count``, ``*.filtered_row_count`` (and the null counts,
  ``column_values.nonnull.unexpected_count``) are sums;
- ``*.unexpected_values`` / ``*.unexpected_index_list`` / ``*.unexpected_rows`` are the chunks'
  lists in row order, cut where GE cuts them (``partial_unexpected_count``, at most 200 values;
  the index list is whole in the COMPLETE format) — each chunk's list is the first n of its rows,
  so the first n of the concatenation are the first n of the feed;
- ``table.columns`` / ``table.column_types`` are the same for every chunk, and so is
  ``*.unexpected_index_query`` when it is not asked for (None); when chunks differ the metric
  is dropped and GE reports the expectation as failed to run, never a wrong value;
- every other metric is an intermediate (the per-row condition series) and is dropped.

Only map expectations whose outcome for a row depends on that row alone are chunked
(:func:`row_local`). Anything else — the contracts' ``unique_key`` rules (duplicates within a
delivery), or any aggregate expectation (uniqueness, row counts, column min/max/mean) a suite may
get — is validated in one further GE run over **all** rows of a narrow frame holding only the
columns those expectations name (and their row conditions'); when such an expectation needs the
whole table, the feed is validated unchunked. Results keep the suite's order; the batch markers'
``pandas_data_fingerprint`` is GE's own (md5 of ``hash_pandas_object`` of the whole frame, row by
row), fed chunk by chunk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any, Callable, Iterable, Iterator

import pandas as pd

from great_expectations.constants import MAX_RESULT_RECORDS
from great_expectations.core import ExpectationSuiteValidationResult
from great_expectations.execution_engine.pandas_batch_data import PandasBatchData
from great_expectations.execution_engine.pandas_execution_engine import HASH_THRESHOLD
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.registry import get_expectation_impl
from great_expectations.validator.metrics_calculator import MetricsCalculator
from great_expectations.validator.v1_validator import Validator
from great_expectations.validator.validator import calc_validation_statistics

from assets.validate import gx_fast

CHUNK_ROWS = 100_000  # rows per GE metric resolution: the step's memory follows this, not the feed

_SUMS = (".unexpected_count", ".filtered_row_count")
_LISTS = (".unexpected_values", ".unexpected_index_list", ".unexpected_rows")
_SAME = ("table.columns", "table.column_types")
_MAP_TYPES = (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)


# ---- which expectations may be chunked --------------------------------------------------------
def row_local(config, contract) -> bool:
    """True for a map expectation whose verdict on a row reads that row only."""
    try:
        impl = get_expectation_impl(config.type)
    except Exception:  # noqa: BLE001 - an unknown type: validate it whole
        return False
    if not issubclass(impl, _MAP_TYPES):
        return False
    if config.type == "expect_rows_to_pass_credit_rule":
        from assets.validate import rules

        return rules.rule_by_id(contract, config.kwargs["rule_id"]).row_local
    return True


def columns_named(config) -> list[str] | None:
    """Columns an expectation reads (its domain and row condition); None when it needs the table."""
    kw = config.kwargs
    cols = [kw["column"]] if "column" in kw else []
    cols += [kw[k] for k in ("column_A", "column_B") if k in kw]
    cols += list(kw.get("column_list") or [])
    if not cols:
        return None
    return cols


# ---- merging the metrics of chunks ------------------------------------------------------------
def _limits(result_format: dict) -> dict[str, int | None]:
    complete = result_format.get("result_format") == "COMPLETE"
    puc = result_format.get("partial_unexpected_count", 20)
    return {
        ".unexpected_values": MAX_RESULT_RECORDS if complete else min(puc, MAX_RESULT_RECORDS),
        ".unexpected_rows": MAX_RESULT_RECORDS if complete else min(puc, MAX_RESULT_RECORDS),
        ".unexpected_index_list": None if complete else puc,
    }


def _kind(name: str) -> str | None:
    if name == "table.row_count" or name.endswith(_SUMS):
        return "sum"
    for suffix in _LISTS:
        if name.endswith(suffix):
            return suffix
    if name in _SAME or name.endswith(".unexpected_index_query"):
        return "same"  # the query is None when not asked for (``return_unexpected_index_query``)
    return None


def _concat(a: Any, b: Any, limit: int | None) -> Any:
    if isinstance(a, pd.DataFrame):
        out = pd.concat([a, b])
        return out if limit is None else out.head(limit)
    out = list(a) + list(b)
    return out if limit is None else out[:limit]


def merge_metrics(merged: dict | None, chunk: dict, limits: dict) -> dict:
    """Fold one chunk's resolved metrics into ``merged`` (see the module doc for the rules)."""
    if merged is None:
        return {key: value for key, value in chunk.items() if _kind(key[0]) is not None}
    for key in list(merged):
        if key not in chunk:
            del merged[key]  # aborted in this chunk: GE reports the expectation's error
            continue
        kind, value = _kind(key[0]), chunk[key]
        if kind == "sum":
            merged[key] = merged[key] + value
        elif kind == "same":
            if json.dumps(merged[key], default=str) != json.dumps(value, default=str):
                del merged[key]
        else:
            merged[key] = _concat(merged[key], value, limits[kind])
    return merged


class _Chunked:
    def __init__(self, engine, batch_id: str, chunks: Callable[[], Iterable[pd.DataFrame]], limits: dict):
        self.engine, self.batch_id, self.chunks, self.limits = engine, batch_id, chunks, limits
        self.fingerprint = None  # (md5, bytes of memory) of the frames resolved by the last call


_active: _Chunked | None = None
_installed = False


def _install() -> None:
    global _installed
    if _installed:
        return
    original = MetricsCalculator.resolve_validation_graph

    def resolve_validation_graph(self, graph, runtime_configuration=None, min_graph_edges_pbar_enable=0):
        state = _active
        if state is None or self._execution_engine is not state.engine:
            return original(self, graph, runtime_configuration, min_graph_edges_pbar_enable)
        merged, aborted = None, {}
        md5, size = hashlib.md5(usedforsecurity=False), 0
        for frame in state.chunks():
            state.engine.load_batch_data(state.batch_id, PandasBatchData(execution_engine=state.engine, dataframe=frame))
            size += int(frame.memory_usage().sum())
            if md5 is not None:
                try:
                    md5.update(pd.util.hash_pandas_object(frame, index=True).values)
                except TypeError:  # GE pickles such a frame instead: no comparable fingerprint
                    md5 = None
            with gx_fast.fresh_frames():
                resolved, failed = original(self, graph, runtime_configuration, min_graph_edges_pbar_enable)
            aborted.update(failed)
            merged = merge_metrics(merged, resolved, state.limits)
            del resolved, frame
        for key in aborted:
            (merged or {}).pop(key, None)
        state.fingerprint = (md5.hexdigest() if md5 is not None else None, size)
        return merged or {}, aborted

    resolve_validation_graph.__wrapped__ = original  # type: ignore[attr-defined]
    MetricsCalculator.resolve_validation_graph = resolve_validation_graph
    _installed = True


@contextlib.contextmanager
def _chunked(state: _Chunked):
    global _active
    _install()
    outer, _active = _active, state
    try:
        yield state
    finally:
        _active = outer


# ---- one validation over chunks ---------------------------------------------------------------
def _suite_result(validator: Validator, suite, results: list) -> ExpectationSuiteValidationResult:
    """What ``v1_validator.Validator.validate_expectation_suite`` builds from its results."""
    from great_expectations import __version__ as ge_version
    from great_expectations.util import convert_to_json_serializable

    statistics = calc_validation_statistics(results)
    wrapped = validator._wrapped_validator
    return ExpectationSuiteValidationResult(
        results=results,
        success=statistics.success,
        suite_name=suite.name,
        statistics={
            "evaluated_expectations": statistics.evaluated_expectations,
            "successful_expectations": statistics.successful_expectations,
            "unsuccessful_expectations": statistics.unsuccessful_expectations,
            "success_percent": statistics.success_percent,
        },
        meta={
            "great_expectations_version": ge_version,
            "batch_spec": convert_to_json_serializable(wrapped.active_batch_spec),
            "batch_markers": wrapped.active_batch_markers,
            "active_batch_definition": convert_to_json_serializable(wrapped.active_batch_definition),
        },
        batch_id=validator.active_batch_id,
    )


def _key(config) -> str:
    """An expectation configuration's identity in a suite (GE adds ``batch_id`` when it runs)."""
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    return json.dumps([config.type, kwargs, config.meta], sort_keys=True, default=str, ensure_ascii=False)


def _ge_order(configs: list) -> list:
    """The order GE 1.24 validates (and lists) a suite's expectations in: grouped by column in
    order of first appearance, expectations without one column as one group
    (``Validator.process_expectations_for_validation``)."""
    groups: dict[str, list] = {}
    for c in configs:
        col = c.kwargs.get("column")
        groups.setdefault(col if isinstance(col, str) else "\0nocolumn", []).append(c)
    return [c for group in groups.values() for c in group]


def validate(vd, suite, contract, empty: pd.DataFrame, chunks: Callable[[], Iterator[pd.DataFrame]],
             narrow: Callable[[list[str]], pd.DataFrame], *, run_id, result_format: dict):
    """``vd.run(...)`` over the frames ``chunks()`` yields (consecutive rows, index = position in
    the feed), with ``empty`` (the feed's columns and dtypes, no rows) as the planned batch;
    expectations that are not row-local run over ``narrow(columns)`` (all rows, those columns).
    Stores and returns the one result, as ``ValidationDefinition.run`` does."""
    suite = vd.suite if suite is None else suite
    configs = suite.expectation_configurations
    local = [c for c in configs if row_local(c, contract)]
    rest = [c for c in configs if not row_local(c, contract)]
    needed: list[str] = []
    for c in rest:
        cols = columns_named(c)
        if cols is None:
            raise ValueError("whole-table expectation")
        needed += cols
        cond = json.dumps(c.kwargs.get("row_condition") or "", ensure_ascii=False, default=str)
        needed += [col for col in empty.columns if cond and str(col) in cond]
    needed = list(dict.fromkeys(needed))

    diagnostics = vd.is_fresh()
    if not diagnostics.success:
        if not diagnostics.parent_added and diagnostics.children_added:
            vd._add_to_store()
        else:
            diagnostics.raise_for_error()

    validator = Validator(batch_definition=vd.batch_definition, batch_parameters={"dataframe": empty},
                          result_format=result_format)
    wrapped = validator._wrapped_validator
    state = _Chunked(wrapped.execution_engine, validator.active_batch_id, chunks, _limits(result_format))
    results = []
    if local:
        with _chunked(state):
            results += validator._validate_expectation_configs(local)
    if rest:
        frame = narrow(needed)
        other = Validator(batch_definition=vd.batch_definition, batch_parameters={"dataframe": frame},
                          result_format=result_format)
        results += other._validate_expectation_configs(rest)
        del frame, other
    order = {_key(c): i for i, c in enumerate(_ge_order(configs))}
    results.sort(key=lambda r: order.get(_key(r.expectation_config), len(order)))
    res = _suite_result(validator, suite, results)
    markers = res.meta.get("batch_markers")
    if isinstance(markers, dict) and state.fingerprint is not None:
        markers = dict(markers)
        digest, size = state.fingerprint
        if digest is not None and size < HASH_THRESHOLD:
            markers["pandas_data_fingerprint"] = digest
        else:
            markers.pop("pandas_data_fingerprint", None)
        res.meta["batch_markers"] = markers
    # as ValidationDefinition.run
    res.meta["validation_id"] = vd.id
    res.meta["checkpoint_id"] = None
    res.meta["run_id"] = run_id
    res.meta["validation_time"] = run_id.run_time
    res.meta["batch_parameters"] = {"dataframe": _dataframe_placeholder()}
    suite_id, result_id = vd._get_expectation_suite_and_validation_result_ids(validator=validator, run_id=run_id)
    vd._validation_results_store.store_validation_results(
        suite_validation_result=res, suite_validation_result_identifier=result_id,
        expectation_suite_identifier=suite_id)
    return res


def _dataframe_placeholder() -> str:
    from great_expectations.core.validation_definition import DATAFRAME_REPLACEMENT_STR

    return DATAFRAME_REPLACEMENT_STR
