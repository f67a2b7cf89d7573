"""``credit-etl check FILE --feed F``: validate one department file offline, before submitting it.

The file is read through the ingest stage's public ``assets.ingest.read_file(path, contract)``
(same parsing, header mapping and normalisation as the nightly run) and validated with
``validate_frame``, so a file that passes here passes at night (except per-day effects such as a
``not_future`` date judged against another received day).

Exit codes: 0 no row has an error (warnings allowed); 1 some row has an error; 2 the file cannot
be read or does not match the contract's columns, or the feed is unknown (reason on stderr).

JSON output: ``{"rows", "valid", "invalid", "warnings", "errors": [{"row", "field", "rule",
"severity", "message"}]}``: ``valid``/``invalid`` count rows without/with an error, ``warnings``
counts rows carrying at least one warning; ``errors`` lists every finding (errors and warnings),
``row`` being the row number the clerk sees in the original file.
"""

from __future__ import annotations

import inspect
import json
import sys
from datetime import date
from pathlib import Path

import pandas as pd

from contracts import load_contracts

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
    """(contract, staged frame, ValidationResult); raises ``assets.ingest.IngestError``."""
    from assets.ingest import read_file  # public API of the ingest stage

    contracts = load_contracts()
    if feed not in contracts:
        raise KeyError(feed)
    contract = contracts[feed]
    received = received or date.today()
    kwargs = {"received": received} if "received" in inspect.signature(read_file).parameters else {}
    df = _as_frame(read_file(Path(path), contract, **kwargs))
    df = df.copy()
    if "_received_date" not in df.columns or df["_received_date"].isna().all():
        df["_received_date"] = received
    else:
        df["_received_date"] = df["_received_date"].fillna(received)
    if "_source_name" not in df.columns:
        df["_source_name"] = Path(path).name
    return contract, df, validate_frame(contract, df)


def run_check(path: str | Path, feed: str, fmt: str = "text", received: date | None = None) -> int:
    from assets.ingest import IngestError

    path = Path(path)
    try:
        contract, df, result = check_file(path, feed, received)
    except KeyError:
        known = "、".join(load_contracts())
        print(f"未知信息类别：{feed}（可选：{known}）", file=sys.stderr)
        return 2
    except IngestError as exc:
        print(getattr(exc, "message_zh", None) or f"无法读取文件 {path.name}：{exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"无法读取文件 {path.name}：{exc.strerror or exc}", file=sys.stderr)
        return 2

    failures = result.failures
    rows = len(df)
    invalid = len(result.quarantined)
    warn_rows = int(result.passed["_warnings"].notna().sum()) if len(result.passed) else 0
    findings = [
        {"row": int(r.row_no), "field": r.field, "rule": r.rule_id, "severity": r.severity, "message": r.message}
        for r in failures.rename(columns={"_row_no": "row_no"}).itertuples(index=False)
    ]
    if fmt == "json":
        print(json.dumps({"rows": rows, "valid": rows - invalid, "invalid": invalid, "warnings": warn_rows,
                          "errors": findings}, ensure_ascii=False, indent=2))
    else:
        print(f"文件：{path.name}　信息类别：{contract.title}（{contract.feed}）")
        print(f"共 {rows} 行：合格 {rows - invalid} 行，不合格 {invalid} 行，带提示 {warn_rows} 行")
        for f in findings:
            kind = "错误" if f["severity"] == "error" else "提示"
            print(f"  第 {f['row']} 行 [{kind}] {f['message']}（{f['rule']}）")
        if invalid:
            print("结论：有不合格记录，请修改后再报送。")
        else:
            print("结论：可以报送。" + ("（有提示项，请核对）" if warn_rows else ""))
    return 1 if invalid else 0
