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

import hashlib
import json
import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from datetime import date, datetime, timedelta, timezone  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Mapping  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import great_expectations as gx  # noqa: E402
from great_expectations.core import ExpectationSuite  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context.types.resource_identifiers import (  # noqa: E402
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder, _resolve_asset_name  # noqa: E402

from contracts import Condition, Contract  # noqa: E402
from warehouse.layout import DataDir  # noqa: E402
from warehouse.gx_atomic import install as _gx_atomic_writes  # noqa: E402

_gx_atomic_writes()  # GE's store files written atomically (no 0-byte suites after a full disk)

from assets.validate import gx_chunks, gx_fast  # noqa: E402

gx_fast.install()  # metrics filter only the columns they read; see gx_fast's docstring

from assets.validate import docs_site, docs_state  # noqa: E402
from assets.validate import expectations as cx  # noqa: E402
from assets.validate.rules import CompiledRule, compile_rules  # noqa: E402

LINEAGE = ["_file_id", "_row_no", "_dept", "_feed", "_received_date", "_source_name", "_extra", "_notes"]
SITE_NAME = "credit_docs"
# What a Data Docs result keeps: counts plus a bounded sample of failing values (masked) and their
# row positions. The row-level outcome is in validated/ (quarantine is by index), so no full
# unexpected lists, no whole rows and no index queries are computed or stored.
DOCS_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 10,
                      "include_unexpected_rows": False, "return_unexpected_index_query": False}
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


def _dedup_key(e: Any) -> str:
    """What GE's ``ExpectationSuite.add_expectation`` compares to call two expectations the same
    (type and attributes without id / rendered_content / notes / meta), computed once each."""
    attrs = e.dict(exclude={"id", "rendered_content", "notes", "meta"})
    return e.expectation_type + json.dumps(attrs, sort_keys=True, default=str, ensure_ascii=False)


def build_suite(contract: Contract) -> ExpectationSuite:
    """The contract's suite, compiled in memory.

    The expectations go in through the constructor: ``ExpectationSuite.add_expectation`` writes the
    whole suite to the current context's store on every call once a suite of that name is stored
    (quadratic, and it was most of the nightly Data Docs time); duplicates are dropped the way
    ``add_expectation`` drops them.
    """
    cx.register_contract(contract)
    seen: set[str] = set()
    expectations = []
    for r in compile_rules(contract):
        e = expectation_for(contract, r)
        key = _dedup_key(e)
        if key not in seen:
            seen.add(key)
            expectations.append(e)
    return ExpectationSuite(name=suite_name(contract.feed), expectations=expectations,
                            meta={"feed": contract.feed, "title": contract.title, "legal_basis": contract.legal_basis})


_DIGESTS: dict[str, str] = {}  # contract JSON -> digest of its compiled suite (this process's compilers)


def contract_suite_digest(contract: Contract, suite: ExpectationSuite) -> str:
    """:func:`suite_digest` of ``suite`` compiled from ``contract``, computed once per process and
    contract text (serialising a suite costs ~80 ms; the compilers cannot change in a process)."""
    key = contract.model_dump_json()
    digest = _DIGESTS.get(key)
    if digest is None:
        digest = _DIGESTS[key] = suite_digest(suite)
    return digest


def suite_digest(suite: ExpectationSuite) -> str:
    """SHA-256 of the compiled suite JSON without GE's ids (stable across nights)."""
    doc = suite.to_json_dict()

    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in ("id", "rendered_content")}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    text = json.dumps(strip(doc), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---- context ------------------------------------------------------------------------------------
def _site_config(layout: DataDir) -> dict[str, Any]:
    return {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(layout.data_docs)},
        "site_index_builder": {"class_name": "CreditSiteIndexBuilder", "module_name": __name__,
                               "view": docs_site.index_view()},
        # offline assets, Chinese text, rule ids + messages; no profiling section (we never profile)
        "site_section_builders": docs_site.section_builders(),
    }


_CONTEXTS: dict[str, tuple[tuple, Any]] = {}  # GE root -> (its config file's stat, context)


def _config_stamp(layout: DataDir) -> tuple | None:
    try:
        st = (layout.reports / "gx" / "great_expectations.yml").stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def get_context(data_dir: str | Path):
    """The file-backed GE context under DATA_DIR/reports/gx/, with our Data Docs site, analytics off.

    Kept per process and reused while GE's configuration file is the same file with the same size
    and modification time (a night in the same process as the last one — the demo, a backfill, the
    Dagster UI's runs — skips reading and instantiating the project again, ~0.5 s); stores,
    suites and results are read from disk by GE on every use either way."""
    layout = DataDir(data_dir)
    layout.reports.mkdir(parents=True, exist_ok=True)
    key = str(layout.reports.resolve())
    stamp = _config_stamp(layout)
    cached = _CONTEXTS.get(key)
    if stamp is not None and cached is not None and cached[0] == stamp:
        return cached[1]
    context = _open_context(layout)
    stamp = _config_stamp(layout)
    if stamp is not None:
        _CONTEXTS[key] = (stamp, context)
    return context


def _open_context(layout: DataDir):
    context = gx.get_context(mode="file", project_root_dir=str(layout.reports))
    cfg = context.variables.config
    changed = False
    if cfg.analytics_enabled is not False:
        context.variables.analytics_enabled = False
        changed = True
    sites = context.get_config().data_docs_sites or {}
    want = _site_config(layout)
    if SITE_NAME not in sites:
        context.add_data_docs_site(site_name=SITE_NAME, site_config=want)
    elif json.loads(json.dumps(sites[SITE_NAME], default=str)) != want:
        context.update_data_docs_site(site_name=SITE_NAME, site_config=want)
    if "local_site" in sites:
        context.delete_data_docs_site("local_site")
    if (cfg.progress_bars or {}).get("globally") is not False:
        context.variables.progress_bars = {"globally": False, "metric_calculations": False}
        changed = True
    if changed:
        context.variables.save()
    docs_site.guard_store(context)  # nothing unmasked reaches reports/gx or a page
    return context


def _ephemeral():
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults

    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(),
                               analytics_enabled=False,
                               progress_bars={"globally": False, "metric_calculations": False})
    return gx.get_context(project_config=config, mode="ephemeral")


def _suite_path(context, name: str) -> Path:
    return Path(context.root_directory) / "expectations" / f"{name}.json"


def _sync_suites(context, contracts: Mapping[str, Contract], state: dict,
                 fingerprint: str | None = None) -> tuple[dict[str, ExpectationSuite], list[str]]:
    """Compile every suite in memory; store only those whose compiled JSON changed (or whose file is
    missing). Returns (feed -> compiled suite, names of the suites stored now).

    With ``fingerprint`` (``docs_state.fingerprint`` of ``contracts``) equal to the one of the
    last build, the stored digests are those of the suites compiled now (same contracts, same
    compilers and GE): the suites are not serialised again to digest them (~0.1 s a suite, paid
    by every ``credit-etl run``, a fresh process)."""
    compiled: dict[str, ExpectationSuite] = {}
    stored: list[str] = []
    digests = state["suites"]
    same_inputs = fingerprint is not None and state.get("fingerprint") == fingerprint
    for feed, contract in contracts.items():
        suite = build_suite(contract)
        if same_inputs and digests.get(suite.name) and _suite_path(context, suite.name).exists():
            compiled[feed] = suite
            continue
        digest = contract_suite_digest(contract, suite)
        if digests.get(suite.name) != digest or not _suite_path(context, suite.name).exists():
            context.suites.add_or_update(suite)
            digests[suite.name] = digest
            stored.append(suite.name)
        compiled[feed] = suite
    return compiled, stored


def save_suites(data_dir: str | Path, contracts: Mapping[str, Contract], context=None) -> dict[str, Path]:
    """Compile every contract's suite and store those whose compiled JSON changed; returns feed -> suite JSON path."""
    context = context or get_context(data_dir)
    root = Path(context.root_directory)
    state = docs_state.load(root)
    compiled, _ = _sync_suites(context, contracts, state)
    docs_state.save(root, state)
    return {feed: _suite_path(context, suite.name) for feed, suite in compiled.items()}


def _batch_frame(contract: Contract, df: pd.DataFrame) -> pd.DataFrame:
    """The frame GE sees: positional index, every contract and lineage column present."""
    frame = df.reset_index(drop=True)
    missing = [c for c in contract.field_names + LINEAGE if c not in frame.columns]
    if missing:
        frame = frame.assign(**{c: pd.Series([None] * len(frame), dtype="object") for c in missing})
    return frame


class StagedFrames:
    """A feed's staged rows of one day as the frames GE validates: :meth:`chunks` yields
    consecutive rows (file-name order, as ``engine.read_staged``) of at most
    ``gx_chunks.CHUNK_ROWS`` rows, each indexed by its rows' positions in the day; :meth:`empty`
    has the same columns and dtypes and no rows; :meth:`narrow` is every row of a few columns.
    Every frame is conformed to the files' unified schema and completed like :func:`_batch_frame`,
    so its dtypes are those of the whole day's frame."""

    def __init__(self, layout: DataDir, contract: Contract, day: date, chunk_rows: int | None = None):
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder = layout.staging_dir(contract.feed, day)
        self.contract = contract
        self.files = sorted(folder.glob("*.parquet")) if folder.exists() else []
        self.chunk_rows = chunk_rows or gx_chunks.CHUNK_ROWS
        schemas = [pq.read_schema(f) for f in self.files]
        self.schema = (pa.unify_schemas(schemas, promote_options="default") if len(schemas) > 1
                       else schemas[0] if schemas else None)

    def _frame(self, table, offset: int) -> pd.DataFrame:
        frame = _batch_frame(self.contract, table.to_pandas())
        frame.index = pd.RangeIndex(offset, offset + len(frame))
        return frame

    def empty(self) -> pd.DataFrame:
        return self._frame(self.schema.empty_table(), 0)

    def chunks(self):
        import pyarrow as pa
        import pyarrow.parquet as pq

        from assets.validate.engine import _conform

        buf, held, offset = [], 0, 0
        for f in self.files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=self.chunk_rows):
                buf.append(_conform(pa.Table.from_batches([batch]), self.schema))
                held += batch.num_rows
                while held >= self.chunk_rows:
                    table = pa.concat_tables(buf)
                    yield self._frame(table.slice(0, self.chunk_rows), offset)
                    offset += self.chunk_rows
                    rest = table.slice(self.chunk_rows)
                    buf, held = ([rest] if rest.num_rows else []), rest.num_rows
                    del table
        if held or not offset:
            yield self._frame(pa.concat_tables(buf) if buf else self.schema.empty_table(), offset)

    def narrow(self, columns: list[str]) -> pd.DataFrame:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from assets.validate.engine import _conform

        names = [c for c in dict.fromkeys(columns) if self.schema.get_field_index(c) >= 0]
        schema = pa.schema([self.schema.field(c) for c in names], metadata=self.schema.metadata)
        tables = [_conform(pq.read_table(f, columns=[c for c in names if c in pq.read_schema(f).names]), schema)
                  for f in self.files]
        frame = pa.concat_tables(tables).to_pandas() if tables else schema.empty_table().to_pandas()
        frame = frame.reset_index(drop=True)
        missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
        if missing:
            frame = frame.assign(**{c: pd.Series([None] * len(frame), dtype="object") for c in missing})
        return frame


def _datasource(context):
    try:
        return context.data_sources.get(DATASOURCE)
    except KeyError:
        return context.data_sources.add_pandas(DATASOURCE)


def _definition(context, contract: Contract, suite: ExpectationSuite):
    """The stored ValidationDefinition of a feed (created once; it refers to the suite by name
    and id, so a re-stored suite needs no new definition)."""
    name = f"validate_{contract.feed}"
    exists = False
    try:
        vd = context.validation_definitions.get(name)
        exists = True
        if vd.suite.name == suite.name and (suite.id is None or vd.suite.id == suite.id):
            return vd
    except Exception:  # noqa: BLE001 - GE raises several DataContextError kinds for "missing"
        pass
    ds = _datasource(context)
    try:
        asset = ds.get_asset(contract.feed)
    except LookupError:
        asset = ds.add_dataframe_asset(name=contract.feed)
    try:
        bd = asset.get_batch_definition("whole")
    except (KeyError, LookupError, ValueError):
        bd = asset.add_batch_definition_whole_dataframe("whole")
    if suite.id is None:
        suite = context.suites.get(suite.name)
    vd = gx.ValidationDefinition(data=bd, suite=suite, name=name)
    if exists:
        return context.validation_definitions.add_or_update(vd)
    # a new definition of a suite just taken from the store: ``add`` (``add_or_update`` would store
    # the suite once more, matching every expectation against every stored one: ~1 s a suite);
    # a stored definition that could not be read (e.g. its suite file was repaired away) is
    # replaced as before
    try:
        return context.validation_definitions.add(vd)
    except Exception:  # noqa: BLE001 - GE's DataContextError "already exists"
        return context.validation_definitions.add_or_update(vd)


def run_suite(contract: Contract, df: pd.DataFrame, data_dir: str | Path | None = None, context=None,
              result_format: str = "COMPLETE", chunk_rows: int | None = None):
    """Validate ``df`` with the contract's suite. Returns (GE result, {rule_id: failing row positions}).

    Row positions come from ``unexpected_index_list`` (never from value lists, which stop at 200).
    Without ``data_dir`` an ephemeral context is used (nothing written). With ``chunk_rows`` the
    frame is validated as the nightly Data Docs do, in row chunks of that size merged into one
    result (``gx_chunks``); without, in one GE run (``ValidationDefinition.run``).
    """
    if context is None:
        context = get_context(data_dir) if data_dir is not None else _ephemeral()
    suite = build_suite(contract)
    suite = context.suites.add_or_update(suite)
    vd = _definition(context, contract, suite)
    frame = _batch_frame(contract, df)
    fmt = {"result_format": result_format, "return_unexpected_index_query": False}
    with gx_fast.memoised_configurations():
        if chunk_rows:
            def chunks():
                for start in range(0, max(len(frame), 1), chunk_rows):
                    yield frame.iloc[start:start + chunk_rows]

            result = gx_chunks.validate(vd, None, contract, frame.iloc[:0], chunks,
                                        lambda cols: frame[[c for c in dict.fromkeys(cols)]],
                                        run_id=RunIdentifier(run_time=datetime.now(timezone.utc)), result_format=fmt)
        else:
            result = vd.run(batch_parameters={"dataframe": frame}, result_format=fmt)
    failing: dict[str, np.ndarray] = {}
    for er in result.results:
        rule_id = er.expectation_config.meta["rule_id"]
        idx = (er.result or {}).get("unexpected_index_list") or []
        failing[rule_id] = np.array(sorted(int(i) for i in idx), dtype=np.int64)
        if er.exception_info and er.exception_info.get("raised_exception"):
            raise RuntimeError(f"GE expectation for {rule_id} failed to run: {er.exception_info.get('exception_message')}")
    return result, failing


# ---- Data Docs ----------------------------------------------------------------------------------
def _key_text(key: ValidationResultIdentifier) -> str:
    return "|".join(str(part) for part in key.to_tuple())


def _index_info(result) -> dict[str, Any]:
    """What the index page shows for one validation result (cached in the docs state)."""
    from great_expectations.util import convert_to_json_serializable

    return {
        "success": bool(result.success),
        "asset_name": _resolve_asset_name(result),
        "batch_kwargs": convert_to_json_serializable(result.meta.get("batch_kwargs", {}) or {}),
        "batch_spec": convert_to_json_serializable(result.meta.get("batch_spec", {}) or {}),
    }


class CreditSiteIndexBuilder(DefaultSiteIndexBuilder):
    """GE's index builder, except that each validation result's row comes from the docs state
    (``docs_state``) instead of loading and parsing every stored result on every build. A result
    missing from the state (built by an older version) is loaded once and remembered."""

    def _add_validations_to_index_links(self, index_links_dict, validation_and_profiling_result_site_keys) -> None:
        from great_expectations.core import ExpectationSuiteValidationResult
        from great_expectations.render.renderer.site_builder import resource_key_passes_run_name_filter

        section = self.site_section_builders_config.get("validations")
        if not isinstance(section, dict):
            return
        root = Path(self.data_context.root_directory)
        state = docs_state.load(root)
        cache = state["results"]
        dirty = False
        keys = [k for k in validation_and_profiling_result_site_keys
                if resource_key_passes_run_name_filter(k, section["run_name_filter"])]
        keys = sorted(keys, key=lambda k: k.run_id.run_time, reverse=True)
        if self.validation_results_limit:
            keys = keys[: self.validation_results_limit]
        for key in keys:
            info = cache.get(_key_text(key))
            if info is None:
                result = self.data_context.get_validation_result(
                    batch_identifier=key.batch_identifier,
                    expectation_suite_name=key.expectation_suite_identifier.name,
                    run_id=key.run_id,
                    validation_results_store_name=self.source_stores.get("validations"),
                )
                if not isinstance(result, ExpectationSuiteValidationResult):
                    continue
                info = cache[_key_text(key)] = _index_info(result)
                dirty = True
            self.add_resource_info_to_index_links_dict(
                index_links_dict=index_links_dict,
                expectation_suite_name=key.expectation_suite_identifier.name,
                section_name="validations",
                batch_identifier=key.batch_identifier,
                run_id=key.run_id,
                validation_success=info["success"],
                run_time=key.run_id.run_time,
                run_name=key.run_id.run_name,
                asset_name=info["asset_name"],
                batch_kwargs=info["batch_kwargs"],
                batch_spec=info["batch_spec"],
            )
        if dirty:
            docs_state.save(root, state)


def _remask_stored(context) -> int:
    """Store every kept result again so the masking store guard (``docs_site.guard_store``)
    masks results written by a version without it; runs with a full rebuild only (bounded by
    the retention of ``docs_state.RETENTION_DAYS`` days)."""
    store = context.validation_results_store
    keys = store.list_keys()
    for key in keys:
        store.set(key, store.get(key))
    return len(keys)


def _result_day(key: ValidationResultIdentifier) -> date:
    """The received day a stored result belongs to: its run name (ISO date) when it has one,
    otherwise the day it ran (results written before run names were set)."""
    try:
        return date.fromisoformat(str(key.run_id.run_name))
    except (TypeError, ValueError):
        return key.run_id.run_time.date()


def _remove_results(context, state: dict, keys: list[ValidationResultIdentifier]) -> None:
    """Drop stored results; their pages go at the next index build (GE removes pages without source)."""
    store = context.validation_results_store
    for key in keys:
        store.remove_key(key)
        state["results"].pop(_key_text(key), None)


def _store(context, result, state: dict) -> ValidationResultIdentifier:
    run_id = result.meta.get("run_id")
    if not isinstance(run_id, RunIdentifier):
        run_id = RunIdentifier(**run_id) if isinstance(run_id, dict) else RunIdentifier(run_time=datetime.now(timezone.utc))
    batch_id = (result.meta.get("active_batch_definition") or {}).get("batch_identifiers") or "batch"
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
        run_id=run_id,
        batch_identifier=str(result.meta.get("batch_spec", {}).get("data_asset_name", batch_id)),
    )
    context.validation_results_store.set(key, result)
    state["results"][_key_text(key)] = _index_info(result)
    return key


def build_data_docs(data_dir: str | Path, contracts: Mapping[str, Contract], *results: Any,
                    received: date | str | None = None) -> Path:
    """Update the Data Docs site under DATA_DIR/reports/data_docs/ and return its index.html.

    Incremental: the work depends on the night's new data, not on the stored history.

    - Suites are compiled in memory; a suite is stored and its page rendered only when its
      compiled JSON changed (``docs_state``).
    - ``results`` (GE validation results from ``run_suite``) are stored and rendered.
    - With ``received``, the day's staged frames of each feed are validated through GE (SUMMARY
      format: counts and samples for the page; the row-level outcome is in validated/) under the
      run name ``YYYY-MM-DD`` of the received day; a re-run of a day replaces that day's results.
    - Only the new pages are rendered; the index is rebuilt from the cached row of each result.
    - Results older than ``docs_state.RETENTION_DAYS`` received days (counted back from the newest
      day) are removed with their pages.
    - A night with nothing received and unchanged suites returns the index without starting GE
      (``assets.validate.build_data_docs`` checks that before importing this module).
    The first build of a site (or of a site written by an older version) renders everything once.
    """
    layout = DataDir(data_dir)
    index = layout.data_docs / "index.html"
    context = get_context(data_dir)
    root = Path(context.root_directory)
    state = docs_state.load(root)
    fingerprint = docs_state.fingerprint(contracts)
    # first build, or suites/templates/renderers changed: every page is rendered once again
    full = not index.exists() or not docs_state.state_path(root).exists() or state["fingerprint"] != fingerprint

    compiled, stored_suites = _sync_suites(context, contracts, state, fingerprint)
    if full:
        _remask_stored(context)
    new_keys = [_store(context, res, state) for res in results]

    day = None
    if received is not None:
        day = received if isinstance(received, date) else date.fromisoformat(received)
        # one feed at a time, read from its staged files in row chunks (gx_chunks): the step's
        # peak follows ``gx_chunks.CHUNK_ROWS``, not the night nor its largest feed
        fed = [feed for feed in contracts if docs_state.feed_staged(layout, feed, day)]
        if fed:
            names = {suite_name(f) for f in fed}
            existing = context.validation_results_store.list_keys()
            _remove_results(context, state, [k for k in existing
                                             if k.expectation_suite_identifier.name in names
                                             and str(k.run_id.run_name) == day.isoformat()])
            run_id = RunIdentifier(run_name=day.isoformat(), run_time=datetime.now(timezone.utc))
            for feed in fed:
                staged = StagedFrames(layout, contracts[feed], day)
                if not staged.files:
                    continue
                suite = compiled[feed]
                vd = _definition(context, contracts[feed], suite)
                with gx_fast.memoised_configurations():
                    res = gx_chunks.validate(vd, None, contracts[feed], staged.empty(), staged.chunks, staged.narrow,
                                             run_id=run_id, result_format=DOCS_RESULT_FORMAT)
                key = ValidationResultIdentifier(
                    expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
                    run_id=run_id,
                    batch_identifier=_batch_identifier(res, feed),
                )
                state["results"][_key_text(key)] = _index_info(res)
                new_keys.append(key)
                del staged, res

    # retention: keep RETENTION_DAYS received days of results
    pruned = False
    if new_keys:
        existing = context.validation_results_store.list_keys()
        newest = max([_result_day(k) for k in existing] + ([day] if day else []))
        cutoff = newest - timedelta(days=docs_state.RETENTION_DAYS - 1)
        old = [k for k in existing if _result_day(k) < cutoff]
        _remove_results(context, state, old)
        pruned = bool(old)
        new_keys = [k for k in new_keys if _result_day(k) >= cutoff]

    ids = [ExpectationSuiteIdentifier(name=n) for n in stored_suites] + new_keys
    if full:
        context.build_data_docs(site_names=[SITE_NAME])
    elif ids:
        context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=ids)
    elif pruned:
        # nothing new to render (an empty list would mean "everything"): rebuild the index only
        context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=[
            ExpectationSuiteIdentifier(name=next(iter(compiled.values())).name)])
    docs_site.install_static(layout.data_docs)
    state["fingerprint"] = fingerprint
    docs_state.save(root, state)
    assert index.exists(), index
    return index


def _batch_identifier(result, feed: str) -> str:
    """The batch id GE filed a ValidationDefinition result under (``<datasource>-<asset>``)."""
    meta = result.meta or {}
    abd = meta.get("active_batch_definition") or {}
    ds = abd.get("datasource_name") if isinstance(abd, dict) else getattr(abd, "datasource_name", None)
    asset = abd.get("data_asset_name") if isinstance(abd, dict) else getattr(abd, "data_asset_name", None)
    return f"{ds or DATASOURCE}-{asset or feed}"
