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
from warehouse.files import write_parquet
from warehouse.layout import DataDir

from assets.validate.rules import CompiledRule, compile_rules, evaluate

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


def mask_value(value: str | None) -> str | None:
    """Privacy mask for personal values: first 6 and last 4 characters of long values
    (``500237********1234``); shorter values keep a quarter at each end (``13*******34``)."""
    if value is None:
        return None
    text = str(value)
    n = len(text)
    if n >= 15:
        keep_head, keep_tail = 6, 4
    else:
        keep_head = keep_tail = n // 4
    return text[:keep_head] + "*" * (n - keep_head - keep_tail) + (text[n - keep_tail:] if keep_tail else "")


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
    if name in df.columns:
        return df[name].to_numpy(dtype=object)[idx]
    return np.full(len(idx), default, dtype=object)


def _failures(contract: Contract, df: pd.DataFrame, rules: list[CompiledRule], masks: Mapping[str, np.ndarray]) -> pd.DataFrame:
    personal = set(contract.personal_fields)
    parts: list[pd.DataFrame] = []
    for order, r in enumerate(rules):
        idx = np.flatnonzero(masks[r.id])
        if not len(idx):
            continue
        if r.field and r.field in df.columns:
            raw = df[r.field].to_numpy(dtype=object)[idx]
            values = [None if (v is None or v != v) else str(v) for v in raw]
            if r.field in personal:
                values = [mask_value(v) for v in values]
        else:
            values = [None] * len(idx)
        parts.append(
            pd.DataFrame(
                {
                    "_pos": idx,
                    "_order": order,
                    "_file_id": _lineage(df, "_file_id", idx),
                    "_row_no": _lineage(df, "_row_no", idx),
                    "_dept": _lineage(df, "_dept", idx),
                    "feed": contract.feed,
                    "rule_id": r.id,
                    "field": r.field,
                    "severity": r.severity,
                    "message": r.message,
                    "value": values,
                }
            )
        )
    if not parts:
        return pd.DataFrame({c: pd.Series([], dtype="object") for c in FAILURE_COLUMNS}).astype({"_row_no": "Int64"})
    out = pd.concat(parts, ignore_index=True).sort_values(["_pos", "_order"], kind="stable")
    out = out.drop(columns=["_pos", "_order"]).reset_index(drop=True)
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


def validate_day(data_dir: str | Path, received: date | str, contracts: Mapping[str, Contract]) -> ValidateSummary:
    """Validate every feed staged for ``received``; write validated/<feed>/received_date=<d>/."""
    layout = DataDir(data_dir)
    day = _day(received)
    feeds: dict[str, FeedSummary] = {}
    for feed, contract in contracts.items():
        table = read_staged(data_dir, feed, day)
        if table is None:
            continue
        df = table.to_pandas()
        error, warn, failures = classify(contract, df)
        passed_idx = np.flatnonzero(~error)
        quarantined_idx = np.flatnonzero(error)
        passed = table.take(pa.array(passed_idx, pa.int64())).append_column(
            "_warnings", pa.array(list(warn[passed_idx]), pa.string())
        )
        quarantined = table.take(pa.array(quarantined_idx, pa.int64()))
        out = layout.validated_dir(feed, day)
        write_parquet(passed, out / "passed.parquet")
        write_parquet(quarantined, out / "quarantined.parquet")
        write_parquet(pa.Table.from_pandas(failures[FAILURE_COLUMNS], schema=FAILURE_SCHEMA, preserve_index=False),
                      out / "failures.parquet")
        err = failures[failures["severity"] == "error"]["rule_id"].value_counts()
        wrn = failures[failures["severity"] == "warning"]["rule_id"].value_counts()
        summary = FeedSummary(
            feed=feed,
            received=table.num_rows,
            passed=passed.num_rows,
            quarantined=quarantined.num_rows,
            warning_rows=int(sum(1 for w in warn[passed_idx] if w is not None)),
            errors_by_rule={k: int(v) for k, v in sorted(err.items())},
            warnings_by_rule={k: int(v) for k, v in sorted(wrn.items())},
            files=len(set(df["_file_id"])) if "_file_id" in df.columns else 0,
        )
        assert summary.conserved, f"{feed} {day}: conservation broken"
        feeds[feed] = summary
    return ValidateSummary(day, feeds)
