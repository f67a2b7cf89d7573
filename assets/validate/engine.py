"""Row-level validation: compiled rule masks → passed / quarantined rows and one failure per finding.

Design (measured, see the package docstring in ``assets/validate/__init__.py``): the row-level
quarantine decision is taken from the compiled masks of ``rules.py`` directly. Great Expectations
runs the generated suite over the same frame for results and Data Docs (``suites.py``); its
custom expectations call the very same mask functions, and a test asserts both flag the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from contracts import Contract
from warehouse.files import atomic_path
from warehouse.layout import DataDir
from warehouse.masking import kind_for_field, mask

from assets.validate.rules import CompiledRule, compile_rules, evaluate, note_values

FAILURE_COLUMNS = ["_file_id", "_row_no", "_dept", "feed", "rule_id", "field", "severity", "message", "value"]
FAILURE_SCHEMA = pa.schema(
    [
        ("_file_id", pa.string()),
        ("_row_no", pa.int64()),
        ("_dept", pa.string()),
        ("feed", pa.string()),
        ("rule_id", pa.string()),
        ("field", pa.string()),
        ("severity", pa.string()),
        ("message", pa.string()),
        ("value", pa.string()),
    ]
)


def mask_value(value: str | None, kind: str = "id") -> str | None:
    """A personal value as it may be shown (the one policy in ``warehouse.masking``)."""
    return mask(value, kind)


@dataclass
class ValidationResult:
    passed: pd.DataFrame  # staged columns + _warnings
    quarantined: pd.DataFrame  # staged columns
    failures: pd.DataFrame  # FAILURE_COLUMNS
    error_mask: np.ndarray = field(repr=False, default=None)  # per input row
    warning_ids: np.ndarray = field(repr=False, default=None)  # per input row, str or None

    @property
    def received(self) -> int:
        return len(self.passed) + len(self.quarantined)


def _lineage(df: pd.DataFrame, name: str, idx: np.ndarray, default=None) -> np.ndarray:
    """``df[name]`` at rows ``idx`` as objects (only those rows are converted)."""
    if name in df.columns:
        return df[name].iloc[idx].to_numpy(dtype=object)
    return np.full(len(idx), default, dtype=object)


def _failures(contract: Contract, df: pd.DataFrame, rules: list[CompiledRule], masks: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """One row per (row, failing rule), ordered by row then rule order."""
    personal = {f.name: kind_for_field(f) for f in contract.fields if f.privacy == "personal"}
    positions: list[np.ndarray] = []
    orders: list[np.ndarray] = []
    values: list[pd.Series] = []
    row_messages: dict[int, list[str]] = {}  # rule order -> per-row messages (rules that vary by row)
    for order, r in enumerate(rules):
        idx = np.flatnonzero(masks[r.id])
        if not len(idx):
            continue
        if "messages" in r.params:
            row_messages[order] = r.params["messages"](df, idx)
        if r.params.get("note_key"):  # a converted or inferred cell: show what the file said
            vals = note_values(df, r.params["note_key"], idx)
            if r.field in personal:
                vals = [mask(v, personal[r.field]) for v in vals]
        elif r.field and r.field in df.columns:
            raw = df[r.field].iloc[idx].to_numpy(dtype=object)  # failing rows only
            vals = [None if (v is None or v != v) else str(v) for v in raw]
            if r.field in personal:
                vals = [mask(v, personal[r.field]) for v in vals]
        else:
            vals = [None] * len(idx)
        positions.append(idx)
        orders.append(np.full(len(idx), order, dtype=np.int64))
        values.append(pd.Series(vals))  # per-rule dtype inference, as one frame per rule did
    if not positions:
        return pd.DataFrame({c: pd.Series([], dtype="object") for c in FAILURE_COLUMNS}).astype({"_row_no": "Int64"})
    pos = np.concatenate(positions)
    ords = np.concatenate(orders)
    perm = np.lexsort((ords, pos))  # by row, then rule order ((row, rule) pairs are unique)
    pos, ords = pos[perm], ords[perm]
    value_col = pd.concat(values, ignore_index=True).iloc[perm].reset_index(drop=True)
    n = len(pos)

    def per_rule(attr: str) -> np.ndarray:
        table = np.empty(len(rules), dtype=object)
        table[:] = [getattr(r, attr) for r in rules]
        return table[ords]

    messages = per_rule("message")
    if row_messages:
        # rows of one rule keep their order through the (row, rule) sort: hand them out in turn
        cursor = {o: iter(m) for o, m in row_messages.items()}
        for i, o in enumerate(ords):
            if o in cursor:
                messages[i] = next(cursor[o])
    out = pd.DataFrame(
        {
            "_file_id": _lineage(df, "_file_id", pos),
            "_row_no": _lineage(df, "_row_no", pos),
            "_dept": _lineage(df, "_dept", pos),
            "feed": np.full(n, contract.feed, dtype=object),
            "rule_id": per_rule("id"),
            "field": per_rule("field"),
            "severity": per_rule("severity"),
            "message": messages,
            "value": value_col,
        }
    )
    out["_row_no"] = pd.array(pd.to_numeric(out["_row_no"], errors="coerce"), dtype="Int64")
    return out


def classify(contract: Contract, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(error mask, warning ids per row, failures) for a staged frame."""
    df = df.reset_index(drop=True)
    rules = compile_rules(contract)
    masks = evaluate(contract, df)
    n = len(df)
    error = np.zeros(n, dtype=bool)
    warn = np.full(n, None, dtype=object)
    for r in rules:
        m = masks[r.id]
        if r.severity == "error":
            error |= m
        elif m.any():
            idx = np.flatnonzero(m)
            cur = warn[idx]
            warn[idx] = [r.id if c is None else f"{c};{r.id}" for c in cur]
    return error, warn, _failures(contract, df, rules, masks)


def validate_frame(contract: Contract, df: pd.DataFrame) -> ValidationResult:
    """Validate one staged frame; see ARCHITECTURE.md "Validated rows"."""
    df = df.reset_index(drop=True)
    error, warn, failures = classify(contract, df)
    passed = df.loc[~error].copy()
    passed["_warnings"] = pd.Series(warn[~error], index=passed.index, dtype="object")
    quarantined = df.loc[error].copy()
    result = ValidationResult(passed.reset_index(drop=True), quarantined.reset_index(drop=True), failures, error, warn)
    assert len(result.passed) + len(result.quarantined) == len(df)
    return result


# ---------------------------------------------------------------------------------------------
# a day of staged files
# ---------------------------------------------------------------------------------------------
@dataclass
class FeedSummary:
    feed: str
    received: int
    passed: int
    quarantined: int
    warning_rows: int  # passed rows carrying at least one warning
    errors_by_rule: dict[str, int]
    warnings_by_rule: dict[str, int]
    files: int = 0

    @property
    def compliance_rate(self) -> float | None:
        """合规率 = passed / received (None when nothing was received)."""
        return self.passed / self.received if self.received else None

    @property
    def conserved(self) -> bool:
        return self.received == self.passed + self.quarantined

    # kept for callers that read "warnings"
    @property
    def warnings(self) -> int:
        return self.warning_rows


@dataclass
class ValidateSummary:
    received_date: date
    feeds: dict[str, FeedSummary]

    @property
    def conserved(self) -> bool:
        return all(f.conserved for f in self.feeds.values())

    @property
    def received(self) -> int:
        return sum(f.received for f in self.feeds.values())

    @property
    def passed(self) -> int:
        return sum(f.passed for f in self.feeds.values())

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.feeds.values())

    def describe(self) -> str:
        lines = [f"校验 {self.received_date}：接收 {self.received} 行，通过 {self.passed} 行，隔离 {self.quarantined} 行"]
        for f in self.feeds.values():
            rate = "—" if f.compliance_rate is None else f"{f.compliance_rate:.2%}"
            lines.append(f"  {f.feed}: 接收 {f.received}，通过 {f.passed}，隔离 {f.quarantined}，提示 {f.warning_rows}，合规率 {rate}")
        return "\n".join(lines)


def read_staged(data_dir: str | Path, feed: str, received: date | str) -> pa.Table | None:
    """All staged files of a feed and day, in file-name order; None when nothing was staged."""
    folder = DataDir(data_dir).staging_dir(feed, received)
    files = sorted(folder.glob("*.parquet")) if folder.exists() else []
    if not files:
        return None
    tables = [pq.read_table(f) for f in files]
    return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]


def _day(received: date | str) -> date:
    return received if isinstance(received, date) else date.fromisoformat(received)


def _staged_files(data_dir: str | Path, feed: str, day: date) -> list[Path]:
    folder = DataDir(data_dir).staging_dir(feed, day)
    return sorted(folder.glob("*.parquet")) if folder.exists() else []


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the columns of ``schema`` in its order (missing ones null), as
    ``pa.concat_tables(..., promote_options="default")`` would give it."""
    cols = []
    for f in schema:
        i = table.schema.get_field_index(f.name)
        col = table.column(i) if i >= 0 else pa.nulls(table.num_rows, f.type)
        cols.append(col if col.type == f.type else col.cast(f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def _per_file_ok(files: list[Path], schema: pa.Schema) -> bool:
    """Files can be validated one at a time when every row carries a ``_file_id`` and no id spans
    two files (``unique_key``, the one rule that is not row-local, groups by ``_file_id``)."""
    if len(files) < 2:
        return True
    if schema.get_field_index("_file_id") < 0:
        return False
    seen: set = set()
    for f in files:
        col = pq.read_table(f, columns=["_file_id"]).column(0) if "_file_id" in pq.read_schema(f).names else None
        if col is None or col.null_count:
            return False
        ids = set(col.unique().to_pylist())
        if ids & seen:
            return False
        seen |= ids
    return True


BATCH_ROWS = 200_000  # small staged files are validated together up to this many rows


def _batches(files: list[Path]) -> list[list[Path]]:
    """Consecutive staged files grouped up to ``BATCH_ROWS`` rows (a larger file stays alone).

    Same rows, same order, same results as one file at a time (``_per_file_ok``: rules are
    row-local or per ``_file_id``); a night of many small deliveries then pays each rule's fixed
    cost (factorising, masks, failure frames) once per batch instead of once per file, while the
    memory still follows the largest file or batch."""
    groups: list[list[Path]] = []
    rows = 0
    for f in files:
        n = pq.ParquetFile(f).metadata.num_rows
        if groups and rows + n <= BATCH_ROWS:
            groups[-1].append(f)
            rows += n
        else:
            groups.append([f])
            rows = n
    return groups


def _failure_file_schema() -> pa.Schema:
    """FAILURE_SCHEMA with the pandas metadata ``Table.from_pandas`` gives a failures frame (so a
    reader's ``to_pandas`` gets ``_row_no`` back as ``Int64``); fixed, so reruns give equal bytes."""
    template = pd.DataFrame({c: pd.Series(["x"], dtype="str") for c in FAILURE_COLUMNS})
    template["_row_no"] = pd.array([1], dtype="Int64")
    template["value"] = pd.Series(["x"], dtype="object")
    return pa.Table.from_pandas(template[FAILURE_COLUMNS], schema=FAILURE_SCHEMA, preserve_index=False).schema


class _PartWriter:
    """Appends tables to one Parquet file (atomically renamed on success); same settings as
    ``warehouse.files.write_parquet``, so reruns give equal bytes."""

    def __init__(self, target: Path, schema: pa.Schema):
        self._ctx = atomic_path(target, private=True)  # rows and values as received
        self._tmp = self._ctx.__enter__()
        self._schema = schema
        self._writer = pq.ParquetWriter(self._tmp, schema, compression="zstd", write_statistics=True)
        self._rows = 0
        self._parts = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows or not self._parts:
            self._writer.write_table(table)  # an empty table only when nothing else was written
            self._parts += 1

    def close(self, ok: bool = True) -> None:
        if ok and not self._parts:
            self._writer.write_table(self._schema.empty_table())
        self._writer.close()
        if ok:
            self._ctx.__exit__(None, None, None)
        else:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)


def validate_day(data_dir: str | Path, received: date | str, contracts: Mapping[str, Contract]) -> ValidateSummary:
    """Validate every feed staged for ``received``; write validated/<feed>/received_date=<d>/.

    Each staged file is validated on its own and its rows appended to the day's outputs in file
    order (same rows, same order as validating the whole day at once: every rule is row-local
    except ``unique_key``, which groups by ``_file_id``), so memory follows the largest file."""
    layout = DataDir(data_dir)
    day = _day(received)
    feeds: dict[str, FeedSummary] = {}
    for feed, contract in contracts.items():
        files = _staged_files(data_dir, feed, day)
        if not files:
            continue
        schemas = [pq.read_schema(f) for f in files]
        schema = pa.unify_schemas(schemas, promote_options="default") if len(schemas) > 1 else schemas[0]
        if _per_file_ok(files, schema):
            groups = _batches(files)
        else:
            groups = [files]
        out = layout.validated_dir(feed, day)
        passed_schema = schema.append(pa.field("_warnings", pa.string()))
        writers = {
            "passed": _PartWriter(out / "passed.parquet", passed_schema),
            "quarantined": _PartWriter(out / "quarantined.parquet", schema),
            "failures": _PartWriter(out / "failures.parquet", _failure_file_schema()),
        }
        received_rows = passed_rows = quarantined_rows = warning_rows = 0
        err_counts: dict[str, int] = {}
        wrn_counts: dict[str, int] = {}
        file_ids: set = set()
        has_file_id = schema.get_field_index("_file_id") >= 0
        ok = False
        try:
            for group in groups:
                tables = [_conform(pq.read_table(f), schema) for f in group]
                table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
                del tables
                df = table.to_pandas()
                error, warn, failures = classify(contract, df)
                if has_file_id:
                    file_ids.update(table.column("_file_id").unique().to_pylist())
                del df
                passed_idx = np.flatnonzero(~error)
                quarantined_idx = np.flatnonzero(error)
                passed_warn = warn[passed_idx]
                writers["passed"].write(table.take(pa.array(passed_idx, pa.int64())).append_column(
                    "_warnings", pa.array(list(passed_warn), pa.string())))
                writers["quarantined"].write(table.take(pa.array(quarantined_idx, pa.int64())))
                writers["failures"].write(
                    pa.Table.from_pandas(failures[FAILURE_COLUMNS], schema=FAILURE_SCHEMA, preserve_index=False))
                for counts, severity in ((err_counts, "error"), (wrn_counts, "warning")):
                    for k, v in failures[failures["severity"] == severity]["rule_id"].value_counts().items():
                        counts[k] = counts.get(k, 0) + int(v)
                received_rows += table.num_rows
                passed_rows += len(passed_idx)
                quarantined_rows += len(quarantined_idx)
                warning_rows += int(sum(1 for w in passed_warn if w is not None))
                del table, failures, error, warn
            ok = True
        finally:
            for w in writers.values():
                w.close(ok)
        summary = FeedSummary(
            feed=feed,
            received=received_rows,
            passed=passed_rows,
            quarantined=quarantined_rows,
            warning_rows=warning_rows,
            errors_by_rule=dict(sorted(err_counts.items())),
            warnings_by_rule=dict(sorted(wrn_counts.items())),
            files=len(file_ids),
        )
        assert summary.conserved, f"{feed} {day}: conservation broken"
        feeds[feed] = summary
    return ValidateSummary(day, feeds)
