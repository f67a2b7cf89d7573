"""Validation alone on N penalty rows with every rule on: ``python -m bench.validation --rows 200000``.

The acceptance figure of the validation issue ("200,000 penalty rows, all rules on"): the rows
come from sample penalty files (read exactly as ingest reads them, defects included), repeated
with distinct decision numbers until there are N. It times the row-level engine
(``validate_frame``: the masks that decide quarantine) and the same frame through the Great
Expectations suite compiled from the contract (COMPLETE result format, as Data Docs would use it),
and checks both flag the same rows. Prints a table and writes JSON; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"


def penalty_frame(rows: int, seed: int = 7) -> pd.DataFrame:
    from assets.ingest import read_file
    from contracts import load_contracts, load_registry
    from pipelines.samples.feeds import generate

    contracts = load_contracts()
    penalties = contracts["penalties"]
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, start=date(2026, 10, 12), days=3, rows_per_day=200, seed=seed,
                 contracts=contracts, registry=load_registry(contracts=contracts))
        files = sorted(p for p in Path(tmp, "inbox").glob("*/penalties/*/*") if p.is_file())
        seed_frame = pd.concat([read_file(p, penalties).frame for p in files], ignore_index=True)
    copies = -(-rows // len(seed_frame))
    parts = []
    for k in range(copies):
        part = seed_frame.copy()
        if k:
            part["decision_no"] = part["decision_no"].where(part["decision_no"].isna(), part["decision_no"] + f"-{k}")
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True).iloc[:rows].reset_index(drop=True)
    frame["_row_no"] = range(2, len(frame) + 2)
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="校验基准：N 行行政处罚、全部规则 / validation benchmark")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--skip-ge", action="store_true", help="只测行级引擎 / masks only")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from assets.validate import compile_rules, run_suite, validate_frame
    from contracts import load_contracts

    contract = load_contracts()["penalties"]
    frame = penalty_frame(args.rows)
    result: dict = {"rows": len(frame), "rules": len(compile_rules(contract))}

    t0 = time.perf_counter()
    vr = validate_frame(contract, frame)
    result["masks_seconds"] = round(time.perf_counter() - t0, 3)
    result["quarantined_rows"] = int(len(vr.quarantined))
    result["failures"] = int(len(vr.failures))
    error_rows = set(vr.quarantined["_row_no"].tolist())

    if not args.skip_ge:
        t0 = time.perf_counter()
        _, failing = run_suite(contract, frame)
        result["ge_seconds"] = round(time.perf_counter() - t0, 3)
        ge_rows = set()
        errors = {r.id for r in compile_rules(contract) if r.severity == "error"}
        for rule_id, positions in failing.items():
            if rule_id in errors:
                ge_rows.update(frame["_row_no"].iloc[positions].tolist())
        result["ge_agrees_with_masks"] = ge_rows == error_rows
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    out = args.out or RESULTS / f"validation-{args.rows}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for key, value in result.items():
        print(f"{key:>22}: {value}")
    print(f"{'json':>22}: {out}")
    return 0 if result.get("ge_agrees_with_masks", True) else 1


if __name__ == "__main__":
    sys.exit(main())
