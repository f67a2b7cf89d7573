"""Great Expectations 1.24's validation, made cheaper without changing a single result.

Two costs the Data Docs step paid on every night, found with cProfile (``bench/`` data, 200,000
rows and a 300-row night):

**1. Whole-frame filters.**

GE 1.24's ``PandasExecutionEngine.get_domain_records`` returns the *whole* batch frame (every
contract and lineage column) for a column or multicolumn domain, and its map-metric partials then
filter that whole frame by a boolean mask (``df[df[column].notnull()]``, the unexpected index
list, the unexpected values) before they read the one column they need. With Arrow-backed string
columns that is one ``take`` per column per filter: at 200,000 rows it was 27,000 takes and a
fifth of the Data Docs step, growing with rows × columns × expectations.

:func:`install` wraps ``get_domain_records`` so that, after GE has applied the domain's own
``row_condition`` and ``ignore_row_if`` on the full frame as before, a column domain gets the
frame of that column and a multicolumn domain the frame of its ``column_list`` (``column_A`` /
``column_B`` for pairs). The rows and their index are GE's own, so every count, unexpected value
and unexpected index is the same; only columns no metric of that domain reads are left out. A
domain naming a column the batch lacks gets the full frame, so GE reports it as before. Table
domains are untouched.

**2. Expectation configurations rebuilt ~140 times per expectation.** GE's
``Expectation.configuration`` is a property that serialises the pydantic model
(``self.dict()``) into a new ``ExpectationConfiguration`` on every read, and the validator reads
it for every domain, success and runtime keyword of every metric it plans: 54,000 rebuilds for
390 expectations, a third of a small night's Data Docs step, paid regardless of rows.
:func:`memoised_configurations` (a context manager around our ``ValidationDefinition.run``)
computes it once per expectation instance while it is active. GE builds fresh expectation objects
from the suite for every run (``to_domain_obj``) and does not change them while validating, so
each read gets what a rebuild would give; outside the context the property is GE's own.

**4. Whole columns filtered to sample ten values.** GE's ``unexpected_values`` and
``unexpected_index_list`` metrics (SUMMARY: the first ten; COMPLETE: up to 200 values / every
index) copy the domain's non-null rows (``df[df[col].notnull()]``) and then the flagged rows, two
``take``s of the whole column per expectation, only to keep a few. :func:`_column_values` and
:func:`_map_index` find the flagged rows' positions (GE's mask, checked to be aligned with GE's
filtered index) and take only those; any other case (a named index, ``unexpected_index_column_names``,
a mask that is not plain bool) runs GE's own function. They replace GE's in its metric registry
(:func:`_swap_metric_functions`); :func:`ge_metric_functions` puts GE's back (the tests compare).

While :func:`memoised_configurations` is active the narrowing happens *before* GE's filters: the
unfiltered batch frame is cut to the domain's columns plus every column named in its row
condition, and GE's own filtering steps (:func:`_filtered`, the same calls as GE's) run on that
narrow frame, so the filtered frames kept for reuse hold a few columns, not the whole batch.

**3. The same row condition parsed and applied once per expectation.** Conditional rules of one
feed share a handful of conditions (``subject_kind in [...]``); GE runs ``DataFrame.query`` for
each expectation (~9 ms of parsing each, 130 times a small night). While
:func:`memoised_configurations` is active the filtered frame is kept per (batch frame, condition)
and handed out again; pandas' copy-on-write keeps any later change from reaching the shared frame.

Two costs of planning a suite, paid per feed on every night however few its rows (each is
documented at its function):

**5. Metric ids hashed through GE's generic converter.** :func:`_install_plain_ids`: plain
keyword dicts get the same md5 of the same JSON, computed directly.

**6. An expectation object rebuilt for every metric's keywords.**
:func:`_install_shared_domain_objects`: built once per configuration while
:func:`memoised_configurations` is active.

:func:`ge_metric_kwargs_and_ids` undoes 5 and 6 while active (the tests compare).
"""

from __future__ import annotations

import contextlib
import json

_installed = False
_memo: dict | None = None  # while active: configurations, narrowed frames, row-condition results


def _columns(domain_kwargs: dict) -> list[str] | None:
    if "column" in domain_kwargs:
        return [domain_kwargs["column"]]
    if "column_A" in domain_kwargs and "column_B" in domain_kwargs:
        return [domain_kwargs["column_A"], domain_kwargs["column_B"]]
    if domain_kwargs.get("column_list"):
        return list(dict.fromkeys(domain_kwargs["column_list"]))
    return None


def _filtered(engine, data, domain_kwargs: dict):
    """GE 1.24's ``PandasExecutionEngine.get_domain_records`` after it has found the batch frame:
    the row condition, then ``ignore_row_if`` of a column pair or list (the same calls)."""
    row_condition = domain_kwargs.get("row_condition", None)
    if row_condition:
        data = engine._apply_row_condition_filter(data, row_condition, domain_kwargs)
    if "column" in domain_kwargs:
        return data
    if "column_A" in domain_kwargs and "column_B" in domain_kwargs and "ignore_row_if" in domain_kwargs:
        subset = [domain_kwargs["column_A"], domain_kwargs["column_B"]]
        ignore = domain_kwargs["ignore_row_if"]
        if ignore == "both_values_are_missing":
            return data.dropna(axis=0, how="all", subset=subset)
        if ignore == "either_value_is_missing":
            return data.dropna(axis=0, how="any", subset=subset)
        if ignore != "neither":
            raise ValueError(f'Unrecognized value of ignore_row_if ("{ignore}").')
        return data
    if "column_list" in domain_kwargs and "ignore_row_if" in domain_kwargs:
        subset = domain_kwargs["column_list"]
        ignore = domain_kwargs["ignore_row_if"]
        if ignore == "all_values_are_missing":
            return data.dropna(axis=0, how="all", subset=subset)
        if ignore == "any_value_is_missing":
            return data.dropna(axis=0, how="any", subset=subset)
        if ignore != "never":
            raise ValueError(f'Unrecognized value of ignore_row_if ("{ignore}").')
    return data


def install() -> None:
    global _installed
    if _installed:
        return
    from great_expectations.execution_engine import PandasExecutionEngine

    original = PandasExecutionEngine.get_domain_records

    def get_domain_records(self, domain_kwargs: dict):
        cols = _columns(domain_kwargs)
        memo = _memo
        if cols is None or memo is None:
            data = original(self, domain_kwargs)
            if cols is None or len(cols) >= len(data.columns) or not set(cols).issubset(data.columns):
                return data
            return data[cols]
        # the batch frame, unfiltered (a table domain of the same batch), narrowed to the domain's
        # columns and those its row condition names before GE's filters run on it
        base = original(self, {k: domain_kwargs[k] for k in ("batch_id",) if k in domain_kwargs})
        if not set(cols).issubset(base.columns):
            return original(self, domain_kwargs)  # GE reports the missing column itself
        condition = domain_kwargs.get("row_condition")
        text = json.dumps(condition, ensure_ascii=False, default=str) if condition else ""
        needed = tuple(dict.fromkeys([*cols, *(c for c in base.columns if text and str(c) in text)]))
        key = ("columns", id(base), needed)
        hit = memo.get(key)
        if hit is None or hit[0] is not base:
            hit = memo[key] = (base, base[list(needed)] if len(needed) < len(base.columns) else base)
        return _filtered(self, hit[1], domain_kwargs)[cols]
    get_domain_records.__wrapped__ = original  # type: ignore[attr-defined]
    PandasExecutionEngine.get_domain_records = get_domain_records

    apply_condition = PandasExecutionEngine._apply_row_condition_filter

    def _apply_row_condition_filter(self, data, row_condition, domain_kwargs):
        memo = _memo
        if memo is None:
            return apply_condition(self, data, row_condition, domain_kwargs)
        key = ("row_condition", id(data), json.dumps(row_condition, sort_keys=True, default=str),
               domain_kwargs.get("condition_parser"))
        hit = memo.get(key)
        if hit is None or hit[0] is not data:
            hit = memo[key] = (data, apply_condition(self, data, row_condition, domain_kwargs))
        return hit[1]

    _apply_row_condition_filter.__wrapped__ = apply_condition  # type: ignore[attr-defined]
    PandasExecutionEngine._apply_row_condition_filter = _apply_row_condition_filter

    from great_expectations.expectations.expectation import Expectation

    build = Expectation.configuration.fget

    def configuration(self):
        memo = _memo
        if memo is None:
            return build(self)
        hit = memo.get(id(self))
        if hit is None or hit[0] is not self:
            hit = memo[id(self)] = (self, build(self))  # the instance is held: its id is not reused
        return hit[1]

    configuration.__wrapped__ = build  # type: ignore[attr-defined]
    Expectation.configuration = property(configuration)
    _swap_metric_functions(fast=True)
    _install_plain_ids()
    _install_shared_domain_objects()
    _installed = True


# ---- 5. metric ids of plain keyword dicts without GE's generic converter ------------------------
_DICT_TYPES: tuple = (dict,)  # and GE's IDDict, once installed

def _plain(value) -> bool:
    """True when GE's ``convert_to_json_serializable`` returns ``value`` unchanged for
    ``json.dumps``: exact str, int, bool, None, finite-or-infinite (not NaN) float, and lists,
    tuples and str-keyed dicts of those. Subclasses (enums, numpy scalars, models) are not plain."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return True
    if t is float:
        return value == value  # NaN becomes None in GE's converter
    if t is list or t is tuple:
        return all(type(v) is str for v in value) or all(_plain(v) for v in value)
    if t in _DICT_TYPES:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    return False


def _install_plain_ids() -> None:
    """GE builds ~60 ``MetricConfiguration`` per expectation while planning a validation, each
    hashing its domain and value keywords with ``IDDict.to_id``: GE's generic converter walks
    every value (enumerations of a few hundred codes included) through a chain of type checks.
    For plain data that converter is the identity, so the id is the same md5 of the same JSON
    without it (any other value takes GE's path). A third of planning a small night's suites."""
    import hashlib

    from great_expectations.core.id_dict import IDDict

    global _DICT_TYPES
    _DICT_TYPES = (dict, IDDict)
    original = IDDict.to_id

    def to_id(self, id_keys=None, id_ignore_keys=None):
        if id_keys is None:
            id_keys = self.keys()
        if id_ignore_keys is None:
            id_ignore_keys = self._id_ignore_keys
        keys = set(id_keys) - set(id_ignore_keys)
        if len(keys) <= 1:
            return original(self, keys, ())
        data = {k: self[k] for k in keys}
        if not all(type(k) is str for k in keys) or not all(_plain(v) for v in data.values()):
            return original(self, keys, ())
        return hashlib.md5(json.dumps(data, sort_keys=True).encode("utf-8"), usedforsecurity=False).hexdigest()

    to_id.__wrapped__ = original  # type: ignore[attr-defined]
    IDDict.to_id = to_id


# ---- 4. sampled unexpected values and row positions without filtering whole columns -------------
def _positions(df, column, boolean, filter_column_isnull: bool):
    """Positions in ``df`` of the rows GE's filters would keep and flag, or None where the fast
    path does not apply (GE's own function then runs). GE filters ``df`` to the column's non-null
    rows (a copy of the whole column), then by the unexpected mask (aligned on the index)."""
    import numpy as np

    if getattr(boolean, "dtype", None) != bool or df.index.name is not None or df.index.names[0] is not None:
        return None
    if filter_column_isnull:
        kept = np.flatnonzero(df[column].notnull().to_numpy(dtype=bool))
        index = df.index[kept]
    else:
        kept, index = None, df.index
    if len(boolean) != len(index) or not boolean.index.equals(index):
        return None
    flagged = np.flatnonzero(boolean.to_numpy(dtype=bool))
    return flagged if kept is None else kept[flagged]


def _column_values(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, **kwargs):
    """GE 1.24's ``_pandas_column_map_condition_values`` (the first unexpected values of a column,
    in row order), taking only those rows instead of filtering the whole column twice."""
    from great_expectations.constants import MAX_RESULT_RECORDS
    from great_expectations.expectations.metrics.util import get_dbms_compatible_metric_domain_kwargs

    boolean, compute_domain_kwargs, accessor_domain_kwargs = metrics["unexpected_condition"]
    if "column" in accessor_domain_kwargs:
        accessor = get_dbms_compatible_metric_domain_kwargs(
            metric_domain_kwargs=accessor_domain_kwargs, batch_columns_list=metrics["table.columns"])
        column = accessor["column"]
        df = execution_engine.get_domain_records(domain_kwargs=compute_domain_kwargs)
        isnull_filter = kwargs.get("filter_column_isnull", getattr(cls, "filter_column_isnull", False))
        pos = _positions(df, column, boolean, isnull_filter)
        if pos is not None:
            result_format = metric_value_kwargs["result_format"]
            limit = MAX_RESULT_RECORDS if result_format["result_format"] == "COMPLETE" else \
                min(result_format["partial_unexpected_count"], MAX_RESULT_RECORDS)
            return list(df[column].iloc[pos[:limit]])
    return _ORIGINALS["_pandas_column_map_condition_values"](
        cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, **kwargs)


def _map_index(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, **kwargs):
    """GE 1.24's ``_pandas_map_condition_index`` for the default index (row positions of the
    unexpected rows), without filtering the domain's columns to get them."""
    from great_expectations.expectations.metrics.util import get_dbms_compatible_metric_domain_kwargs

    boolean, compute_domain_kwargs, accessor_domain_kwargs = metrics["unexpected_condition"]
    result_format = metric_value_kwargs["result_format"]
    if not result_format.get("unexpected_index_column_names"):
        accessor = get_dbms_compatible_metric_domain_kwargs(
            metric_domain_kwargs=accessor_domain_kwargs, batch_columns_list=metrics["table.columns"])
        df = execution_engine.get_domain_records(domain_kwargs=dict(**compute_domain_kwargs, **accessor))
        column = accessor.get("column")
        isnull_filter = column is not None and kwargs.get(
            "filter_column_isnull", getattr(cls, "filter_column_isnull", False))
        pos = _positions(df, column, boolean, bool(isnull_filter))
        if pos is not None:
            if result_format["result_format"] != "COMPLETE":
                pos = pos[: result_format["partial_unexpected_count"]]
            return list(df.index[pos])
    return _ORIGINALS["_pandas_map_condition_index"](
        cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, **kwargs)


_ORIGINALS: dict = {}
_FAST = {"_pandas_column_map_condition_values": _column_values, "_pandas_map_condition_index": _map_index}


def _swap_metric_functions(fast: bool) -> None:
    """Register our functions for GE's metrics (``fast``) or GE's own again: in GE's metric
    registry (metrics registered already) and in the module that registers new ones."""
    from great_expectations.expectations import registry
    from great_expectations.expectations.metrics.map_metric_provider import map_metric_provider as mmp

    if not _ORIGINALS:
        _ORIGINALS.update({name: getattr(mmp, name) for name in _FAST})
    swap = {(_ORIGINALS[n] if fast else _FAST[n]): (_FAST[n] if fast else _ORIGINALS[n]) for n in _FAST}
    for name in _FAST:
        setattr(mmp, name, _FAST[name] if fast else _ORIGINALS[name])
    for definition in registry._registered_metrics.values():
        providers = definition.get("providers") or {}
        for engine, (metric_class, fn) in list(providers.items()):
            if fn in swap:
                new = swap[fn]
                if hasattr(fn, "metric_fn_type"):
                    new.metric_fn_type = fn.metric_fn_type
                providers[engine] = (metric_class, new)


@contextlib.contextmanager
def ge_metric_functions():
    """GE's own metric functions while active (tests compare them with ours)."""
    _swap_metric_functions(fast=False)
    try:
        yield
    finally:
        _swap_metric_functions(fast=True)


@contextlib.contextmanager
def memoised_configurations():
    """While active, each expectation's ``configuration`` is built once (see the module doc)."""
    global _memo
    install()
    outer = _memo
    _memo = {} if outer is None else outer
    try:
        yield
    finally:
        if outer is None:
            _memo = None


@contextlib.contextmanager
def fresh_frames():
    """Forget the narrowed and row-condition frames kept for reuse, before and after the block:
    each row chunk of ``gx_chunks`` is a new batch frame, and the kept frames of the chunks
    before it would otherwise stay alive until the run ends."""
    _forget_frames()
    try:
        yield
    finally:
        _forget_frames()


def _forget_frames() -> None:
    memo = _memo
    if memo is not None:
        for key in [k for k in memo if isinstance(k, tuple) and k[:1] in (("columns",), ("row_condition",))]:
            del memo[key]


# ---- 6. one expectation object per configuration for the metric keywords -----------------------
_METRIC_KWARGS_USERS = (
    "great_expectations.expectations.registry",
    "great_expectations.expectations.expectation",
    "great_expectations.expectations.core.expect_column_values_to_be_in_type_list",
    "great_expectations.expectations.core.expect_column_values_to_be_of_type",
)


class _Prebuilt:
    """What GE's ``get_metric_kwargs`` reads of a configuration (``kwargs``, ``to_domain_obj()``),
    with the expectation object built already."""

    __slots__ = ("kwargs", "_expectation")

    def __init__(self, kwargs, expectation):
        self.kwargs, self._expectation = kwargs, expectation

    def to_domain_obj(self):
        return self._expectation


def _install_shared_domain_objects() -> None:
    """GE's ``registry.get_metric_kwargs`` builds a new pydantic expectation object from the
    configuration (``to_domain_obj``) on every call, only to read its runtime keywords, and the
    planner calls it ~12 times per expectation with the same configuration. While
    :func:`memoised_configurations` is active the object is built once per configuration (and
    again if the configuration's keywords changed); GE's function runs otherwise unchanged."""
    import importlib

    from great_expectations.expectations import registry

    original = registry.get_metric_kwargs

    def get_metric_kwargs(metric_name, configuration=None, runtime_configuration=None):
        memo = _memo
        if memo is None or configuration is None:
            return original(metric_name, configuration, runtime_configuration)
        key = ("domain_obj", id(configuration))
        hit = memo.get(key)
        if hit is None or hit[0] is not configuration or hit[1] != configuration.kwargs:
            # the configuration is held, so its id is not reused while the entry lives
            hit = memo[key] = (configuration, dict(configuration.kwargs), configuration.to_domain_obj())
        return original(metric_name, _Prebuilt(configuration.kwargs, hit[2]), runtime_configuration)

    get_metric_kwargs.__wrapped__ = original  # type: ignore[attr-defined]
    for name in _METRIC_KWARGS_USERS:
        module = importlib.import_module(name)
        if getattr(module, "get_metric_kwargs", None) is original:
            module.get_metric_kwargs = get_metric_kwargs


@contextlib.contextmanager
def ge_metric_kwargs_and_ids():
    """GE's own metric ids and ``get_metric_kwargs`` (5 and 6 undone) while active: tests compare
    GE's own planning with ours."""
    from great_expectations.core.id_dict import IDDict
    import importlib

    patched_ids = IDDict.to_id
    IDDict.to_id = patched_ids.__wrapped__
    patched, modules = None, []
    for name in _METRIC_KWARGS_USERS:
        module = importlib.import_module(name)
        fn = getattr(module, "get_metric_kwargs", None)
        if hasattr(fn, "__wrapped__"):
            patched = fn
            modules.append(module)
            module.get_metric_kwargs = fn.__wrapped__
    try:
        yield
    finally:
        IDDict.to_id = patched_ids
        for module in modules:
            module.get_metric_kwargs = patched
