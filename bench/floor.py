"""The floor: DuckDB turning the very same CSV files into Parquet, in its own process.

``python -m bench.floor DATASET_ROOT OUT.json [--day D ...]`` runs, for every data file of the
data set (``bench_dataset.json``), one

    COPY (SELECT * FROM read_csv(FILE, skip=<title rows>, header=true, all_varchar=true, ...))
      TO 'OUT/<n>.parquet' (FORMAT parquet)

with DuckDB's defaults otherwise (all threads, default compression), and reports the summed wall
time, rows and the process's peak RSS. Choices:

- ``all_varchar``: ingest keeps every cell as text too, and sniffed types fail on the defective
  rows far into a file (a 2026-13-45 in a DATE column), which would end the floor with an error.
- GBK / GB18030 files are read with ``encoding='latin-1'``: core DuckDB decodes only UTF-8,
  UTF-16 and Latin-1 (GBK needs the ``encodings`` extension, a download). Latin-1 parses the same
  bytes into the same records (GBK never uses bytes below 0x40 in a multi-byte character, so
  quotes, commas and line ends are where they are), without transcoding: for those files the floor
  is a little lower than a true GBK read, i.e. the ratio errs against the pipeline.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def run(root: str | Path, days: list[str] | None = None, keep: bool = False) -> dict:
    import duckdb

    root = Path(root)
    desc = json.loads((root / "bench_dataset.json").read_text(encoding="utf-8"))
    files = [f for f in desc["files"] if days is None or f["day"] in days]
    out = Path(tempfile.mkdtemp(prefix="floor-", dir=root))
    con = duckdb.connect()
    total = 0.0
    cpu = 0.0  # CPU seconds of all DuckDB threads: comparable across minutes of a loaded machine
    rows = 0
    nbytes = 0
    per_file = []
    try:
        for i, f in enumerate(files):
            if f.get("format", "csv") != "csv" or not str(f["path"]).endswith(".csv"):
                continue  # XLSX ledgers copied as generated (a few rows): no DuckDB floor for XLSX
            enc = f.get("encoding") or "utf-8"
            enc = "utf-8" if enc.startswith("utf-8") else ("utf-16" if enc == "utf-16" else "latin-1")
            src = (f"read_csv({_lit(str(root / f['path']))}, skip={int(f.get('skip') or 0)}, header=true, "
                   f"all_varchar=true, delim={_lit(f.get('delimiter') or ',')}, quote='\"', escape='\"', "
                   f"encoding={_lit(enc)})")
            t0, c0 = time.perf_counter(), time.process_time()
            con.execute(f"COPY (SELECT * FROM {src}) TO {_lit(str(out / f'{i}.parquet'))} (FORMAT parquet)")
            dt = time.perf_counter() - t0
            cpu += time.process_time() - c0
            n = con.execute(f"SELECT count(*) FROM read_parquet({_lit(str(out / f'{i}.parquet'))})").fetchall()[0][0]
            total += dt
            rows += n
            nbytes += f["bytes"]
            per_file.append({"path": f["path"], "rows": n, "seconds": round(dt, 4)})
    finally:
        con.close()
        if not keep:
            shutil.rmtree(out, ignore_errors=True)
    return {
        "seconds": round(total, 3),
        "cpu_seconds": round(cpu, 3),
        "rows": rows,
        "bytes": nbytes,
        "rows_per_second": round(rows / total, 1) if total else None,
        "peak_rss_bytes": _maxrss_bytes(),
        "duckdb_version": duckdb.__version__,
        "files": len(per_file),
        "per_file": per_file,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.floor")
    p.add_argument("root")
    p.add_argument("out")
    p.add_argument("--day", action="append", default=None)
    a = p.parse_args(argv)
    res = run(a.root, a.day)
    Path(a.out).write_text(json.dumps(res, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
