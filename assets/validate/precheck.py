"""``credit-etl check FILE --feed F``: validate one department file offline, before submitting it.

The file is read through the ingest stage's public ``assets.ingest.read_file(path, contract)``
(same parsing, header mapping and normalisation as the nightly run) and validated with
``validate_frame``, so a file that passes here passes at night (except per-day effects such as a
``not_future`` date judged against another received day).

``--feed`` takes the feed's id (``penalties``), its Chinese name (``行政处罚``) or the label the
command lists (``行政处罚（penalties）``). When the file's header names more fields of another feed
than of the one given, the output says so: ``这像是「行政许可」文件，请使用 --feed permits``.

Exit codes: 0 no row has an error (warnings allowed); 1 some row has an error; 2 the file cannot
be read or does not match the contract's columns, or the feed is unknown.

Every finding shows the value *as received* (before normalisation, from the ingest sidecar of
changed cells), passed through the one masking policy (``mask_field_value``: personal fields
masked, free text scrubbed).

JSON output (``--format json``) is always one JSON object on stdout, also when the file cannot be
read: ``{"file", "feed", "status" ("checked" | "unreadable" | "unknown_feed"), "message", "hint",
"suggested_feed", "rows", "valid", "invalid", "warnings", "errors": [{"row", "field", "label",
"rule", "severity", "message", "value"}]}``: ``valid``/``invalid`` count rows without/with an
error, ``warnings`` counts rows carrying at least one warning; ``errors`` lists every finding
(errors and warnings), ``row`` being the row number the clerk sees in the original file.
"""

from __future__ import annotations

import inspect
import json
import sys
from datetime import date
from pathlib import Path

import pandas as pd

from contracts import Contract, feed_labels, find_feed, load_contracts
from warehouse.masking import mask_field_value, scrub_text

from assets.validate.engine import validate_frame


def _as_frame(rows) -> pd.DataFrame:
    """read_file returns a ParsedFile (``.table``: staged pyarrow table); accept frames and tables too."""
    if isinstance(rows, pd.DataFrame):
        return rows
    if hasattr(rows, "table"):
        rows = rows.table
    if hasattr(rows, "to_pandas"):
        return rows.to_pandas()
    return pd.DataFrame(rows)


def check_file(path: str | Path, feed: str, received: date | None = None):
    """(contract, staged frame, ValidationResult, raw changes); raises ``assets.ingest.IngestError``,
    ``KeyError`` for an unknown feed."""
    from assets.ingest import read_file  # public API of the ingest stage

    contracts = load_contracts()
    contract = find_feed(contracts, feed)
    if contract is None:
        raise KeyError(feed)
    received = received or date.today()
    kwargs = {"received": received} if "received" in inspect.signature(read_file).parameters else {}
    parsed = read_file(Path(path), contract, **kwargs)
    raw = getattr(parsed, "raw_changes", None)
    df = _as_frame(parsed).copy()
    if "_received_date" not in df.columns or df["_received_date"].isna().all():
        df["_received_date"] = received
    else:
        df["_received_date"] = df["_received_date"].fillna(received)
    if "_source_name" not in df.columns:
        df["_source_name"] = Path(path).name
    return contract, df, validate_frame(contract, df), raw


def suggest_feed(path: Path, contract: Contract | None, contracts: dict[str, Contract]) -> Contract | None:
    """The feed whose fields the file's header names best, when that is not ``contract``."""
    from assets.ingest import IngestError, header_scores

    try:
        scores = header_scores(path, contracts)
    except (IngestError, OSError):
        return None
    best = max(scores, key=lambda f: (scores[f], f == (contract.feed if contract else None)), default=None)
    if best is None or scores[best] == 0:
        return None
    if contract is not None and scores[best] <= scores.get(contract.feed, 0):
        return None
    return contracts[best]


def _hint(other: Contract | None) -> str | None:
    return f"这像是「{other.title}」文件，请使用 --feed {other.feed}" if other else None


def _findings(contract: Contract, df: pd.DataFrame, failures: pd.DataFrame, raw) -> list[dict]:
    """Every failure with the value as received (masked when personal)."""
    fields = {f.name: f for f in contract.fields}
    position = {int(r): i for i, r in enumerate(df["_row_no"])} if "_row_no" in df.columns else {}
    received: dict[tuple[int, str], str] = {}
    if raw is not None and raw.num_rows:
        for row_no, name, value in zip(raw.column("_row_no").to_pylist(), raw.column("field").to_pylist(),
                                       raw.column("raw").to_pylist()):
            received[(int(row_no), name)] = value
    out = []
    cols = ["_row_no", "field", "rule_id", "severity", "message"]
    for row_no, field, rule_id, severity, message in failures[cols].itertuples(index=False, name=None):
        row_no = int(row_no)
        f = fields.get(field)
        value = None
        if f is not None:
            value = received.get((row_no, f.name))
            if value is None and row_no in position:
                v = df[f.name].iloc[position[row_no]]
                value = None if v is None or (isinstance(v, float) and v != v) else str(v)
            value = mask_field_value(value, f) if value not in (None, "") else None
        out.append({"row": row_no, "field": field, "label": f.label if f else None, "rule": rule_id,
                    "severity": severity, "message": message, "value": value})
    return out


def _fail(fmt: str, path: Path, feed: str, status: str, message: str, hint: str | None = None,
          suggested: str | None = None) -> int:
    message = scrub_text(message)  # it may name the file, whose name may carry an ID or phone
    if fmt == "json":
        print(json.dumps({"file": scrub_text(path.name), "feed": feed, "status": status, "message": message, "hint": hint,
                          "suggested_feed": suggested, "rows": 0, "valid": 0, "invalid": 0, "warnings": 0,
                          "errors": []}, ensure_ascii=False, indent=2))
    else:
        print(message, file=sys.stderr)
        if hint:
            print(hint, file=sys.stderr)
    return 2


def run_check(path: str | Path, feed: str, fmt: str = "text", received: date | None = None) -> int:
    from assets.ingest import IngestError

    path = Path(path)
    contracts = load_contracts()
    try:
        contract, df, result, raw = check_file(path, feed, received)
    except KeyError:
        return _fail(fmt, path, feed, "unknown_feed", f"未知信息类别：{feed}（可选：{feed_labels(contracts)}）")
    except IngestError as exc:
        message = getattr(exc, "message_zh", None) or f"无法读取文件 {scrub_text(path.name)}：{exc}"
        other = suggest_feed(path, find_feed(contracts, feed), contracts) if exc.code == "header" else None
        return _fail(fmt, path, feed, "unreadable", message, _hint(other), other.feed if other else None)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        return _fail(fmt, path, feed, "unreadable", f"无法读取文件 {scrub_text(path.name)}：{exc.strerror or exc}")

    failures = result.failures
    rows = len(df)
    invalid = len(result.quarantined)
    warn_rows = int(result.passed["_warnings"].notna().sum()) if len(result.passed) else 0
    findings = _findings(contract, df, failures, raw)
    # a file that reads but carries columns of another feed may still be the wrong feed
    other = None
    extra = df["_extra"].notna().any() if "_extra" in df.columns else False
    if extra or invalid:
        other = suggest_feed(path, contract, contracts)
    hint = _hint(other)
    if fmt == "json":
        print(json.dumps({"file": scrub_text(path.name), "feed": contract.feed, "status": "checked",
                          "message": "有不合格记录" if invalid else "可以报送", "hint": hint,
                          "suggested_feed": other.feed if other else None, "rows": rows, "valid": rows - invalid,
                          "invalid": invalid, "warnings": warn_rows, "errors": findings}, ensure_ascii=False, indent=2))
    else:
        print(f"文件：{scrub_text(path.name)}　信息类别：{contract.title}（{contract.feed}）")
        if hint:
            print(hint)
        print(f"共 {rows} 行：合格 {rows - invalid} 行，不合格 {invalid} 行，带提示 {warn_rows} 行")
        for f in findings:
            kind = "错误" if f["severity"] == "error" else "提示"
            shown = f"；收到的值：「{f['value']}」" if f["value"] is not None else ("；收到的值：（空）" if f["label"] else "")
            print(f"  第 {f['row']} 行 [{kind}] {f['message']}{shown}（{f['rule']}）")
        if invalid:
            print("结论：有不合格记录，请修改后再报送。")
        else:
            print("结论：可以报送。" + ("（有提示项，请核对）" if warn_rows else ""))
    return 1 if invalid else 0
