"""Peak memory of reading one large input, each in a fresh process (``ru_maxrss`` of the child).

    .venv/bin/python -m bench.memory [--csv-rows 141000] [--xlsx-rows 100000] [--json-mb 47] [--out FILE]
    .venv/bin/python -m bench.memory --tree [csv http xlsx]   # then: process tree of ingest and a night

Each input is written first (a plausible permits row repeated with distinct keys), then a child
process imports the pipeline, reads the bytes and maps them to the contract exactly as ingest
does (``parse_bytes`` for files; ``records_table`` + mapping for an HTTP JSON page), and reports
its peak resident set size. The import alone is measured too, so the table can show what the
input adds. Results go to ``bench/results/memory.json``; README.md quotes them.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
kind, path = sys.argv[1], sys.argv[2]
from contracts import load_contracts
from assets.ingest.core import parse_bytes
from assets.ingest.mapping import map_to_contract
c = load_contracts()["permits"]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
rows = 0
if kind == "http":
    # the real HTTP path: a local server sends the page, pull() streams and checks it
    import threading
    from datetime import date
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from assets.ingest.http import HttpSettings, pull
    from contracts.model import Delivery
    body_path = path

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            import os
            self.send_response(200)
            self.send_header("Content-Length", str(os.path.getsize(body_path)))
            self.end_headers()
            with open(body_path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    self.wfile.write(chunk)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/api/permits"
    d = Delivery(kind="http", format="json", url=url, page_size=200000)
    import tempfile as _t
    got = pull("zfcxjw", "permits", d, date(2026, 10, 5), HttpSettings(max_page_bytes=1 << 30), {},
               spool_dir=_t.mkdtemp())
    raw = got.columns.finish(c)
    got.discard()
    table, _, _ = map_to_contract(raw, c, file_id=got.file_id, dept="zfcxjw", received=None, source_name="page.json")
    rows = table.num_rows
elif kind != "import":
    if kind == "json":  # a page as HTTP ingest parses it: streamed from the spooled file (ijson)
        import os
        from assets.ingest.http import _parse_page_file
        from assets.ingest.readers import RecordColumns
        cols = RecordColumns()
        _parse_page_file(__import__("pathlib").Path(path), os.path.getsize(path), 1, cols)
        raw = cols.finish(c)
        del cols
        table, _, _ = map_to_contract(raw, c, file_id="x" * 64, dept="scjgj", received=None, source_name="page.json")
        rows = table.num_rows
    else:
        data = open(path, "rb").read()
        rows = parse_bytes(data, path, c, file_id="x" * 64, dept="scjgj", received=None).rows
print(json.dumps({"rows": rows, "seconds": round(time.perf_counter() - t, 2),
                  "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  "import_peak_mib": round(base / 1024, 1)}))
"""


def _row(i: int) -> dict[str, str]:
    """A valid permit (every 50th with a wrong USCC check digit: a realistic share of quarantined rows)."""
    return {
        "行政相对人名称": f"巫山县测试商贸有限公司{i}", "行政相对人类别": "法人及非法人组织",
        "统一社会信用代码": "91500237MA5U1234X0" if i % 50 else "91500237MA5U1234X7", "法定代表人": "张三", "行政许可决定文书名称": "食品经营许可决定书",
        "行政许可决定文书号": f"巫市监许〔2026〕{i:07d}号", "许可类别": "普通", "许可内容": "食品销售" * 5,
        "许可决定日期": "2026-03-02", "有效期自": "2026-03-02", "有效期至": "2031-03-01", "许可机关": "巫山县市场监督管理局",
        "许可机关统一社会信用代码": "11500237743131669T", "当前状态": "1", "数据来源单位": "巫山县市场监督管理局",
        "数据来源单位统一社会信用代码": "11500237743131669T",
    }


def write_csv(path: Path, rows: int) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(_row(0)))
        for i in range(rows):
            w.writerow(list(_row(i).values()))


def write_xlsx(path: Path, rows: int) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("行政许可")
    ws.append(list(_row(0)))
    for i in range(rows):
        ws.append(list(_row(i).values()))
    wb.save(path)


def write_json(path: Path, mb: int) -> int:
    one = len(json.dumps(_row(0), ensure_ascii=False).encode()) + 2
    n = mb * 1024 * 1024 // one
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('{"page": 1, "total_pages": 1, "total": %d, "data": [' % n)
        for i in range(n):
            fh.write(("," if i else "") + json.dumps(_row(i), ensure_ascii=False))
        fh.write("]}")
    return n


def measure(kind: str, path: Path | None) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(path or "")], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr[-500:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv-rows", type=int, default=141_000)  # ~48 MiB: MAX_CSV_BYTES
    ap.add_argument("--xlsx-rows", type=int, default=100_000)
    ap.add_argument("--json-mb", type=int, default=47)  # max_page_bytes is 48 MiB
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "memory.json")
    ap.add_argument("--tree", nargs="*", metavar="KIND",
                    help="instead: whole process tree (psutil) of ingest and of a whole night for one input "
                         "at its limit: csv, http (a JSON page), xlsx (a 199 MB sheet); results merged into --out")
    ap.add_argument("--xlsx-sheet-mb", type=int, default=199)
    args = ap.parse_args(argv)
    if args.tree is not None:
        return tree_main(args)
    results = {"import": measure("import", None)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.csv_rows:
            p = tmp / "permits.csv"
            write_csv(p, args.csv_rows)
            results[f"csv {args.csv_rows} rows ({p.stat().st_size // 2**20} MiB)"] = measure("csv", p)
        if args.xlsx_rows:
            p = tmp / "permits.xlsx"
            write_xlsx(p, args.xlsx_rows)
            results[f"xlsx {args.xlsx_rows} rows ({p.stat().st_size // 2**20} MiB)"] = measure("xlsx", p)
        if args.json_mb:
            p = tmp / "page.json"
            n = write_json(p, args.json_mb)
            results[f"json page {args.json_mb} MiB ({n} records), parse only"] = measure("json", p)
            results[f"json page {args.json_mb} MiB ({n} records) over HTTP (pull + map)"] = measure("http", p)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(results, ensure_ascii=False, indent=1))
    return 0



# ---------------------------------------------------------------------------------------------
# whole process tree: one input at its format's limit through ingest or a whole night

DAY = "2026-10-05"

INGEST_CHILD = r"""
import os, sys
from datetime import date
from assets.ingest import HttpSettings, ingest_day
from contracts.loader import catalog, load_registry
from warehouse.layout import DataDir
contracts = catalog()
base = os.environ.get("CREDIT_ETL_HTTP_BASE")
s = ingest_day(DataDir(sys.argv[1]), date.fromisoformat(sys.argv[2]), contracts, load_registry(contracts=contracts),
               http=HttpSettings(base_url=base, enabled=bool(base)), env=os.environ)
print("ROWS", sum(s.rows_by_feed.values()), "REJECTED", len(s.rejected), [str(r) for r in s.rejected][:3])
"""


class PageServer:
    """127.0.0.1 department server: ``/api/permits`` answers the page file (sent in 1 MiB chunks),
    every other path an empty day. Runs in the measuring process, outside the measured tree."""

    def __init__(self, page: Path):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        empty = b'{"data": [], "page": 1, "total_pages": 1, "total": 0}'

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                own = self.path.startswith("/api/permits")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(page.stat().st_size if own else len(empty)))
                self.end_headers()
                if not own:
                    self.wfile.write(empty)
                    return
                with open(page, "rb") as fh:
                    while chunk := fh.read(1 << 20):
                        self.wfile.write(chunk)

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base_url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


def rows_for(kind: str, size: int) -> int:
    """Rows of the bench permit that make a file of about ``size`` bytes."""
    one = len(",".join(_row(10**6).values()).encode()) + 2 if kind == "csv" else \
        len(json.dumps(_row(10**6), ensure_ascii=False).encode()) + 2
    return max(1, int(size * 0.98) // one)


def limit_input(kind: str, root: Path, size: int | None = None, rows: int | None = None) -> dict:
    """Write one input into a fresh data directory ``root``: ``kind`` csv / xlsx (the inbox of
    scjgj/permits) or http (a JSON page for zfcxjw/permits, served by :class:`PageServer`).
    ``size`` defaults to the format's limit (the file is kept just under it)."""
    from assets.ingest import readers
    from assets.ingest.http import HttpSettings

    inbox = root / "inbox" / "scjgj" / "permits" / DAY
    inbox.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        size = size or readers.MAX_CSV_BYTES
        path = inbox / "permits.csv"
        write_csv(path, rows or rows_for("csv", size))
        limit = readers.MAX_CSV_BYTES
    elif kind == "xlsx":
        path = inbox / "permits.xlsx"
        write_xlsx(path, rows or 100_000)
        limit = readers.MAX_XLSX_BYTES
    else:
        size = size or HttpSettings().max_page_bytes
        path = root / "page.json"
        n = rows or rows_for("json", size)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write('{"page": 1, "total_pages": 1, "total": %d, "data": [' % n)
            for i in range(n):
                fh.write(("," if i else "") + json.dumps(_row(i), ensure_ascii=False))
            fh.write("]}")
        limit = HttpSettings().max_page_bytes
    info = {"kind": kind, "path": path, "bytes": path.stat().st_size, "limit": limit}
    if kind == "xlsx":
        import zipfile

        with zipfile.ZipFile(path) as z:
            info["uncompressed"] = sum(i.file_size for i in z.infolist())
            info["sheet"] = max(i.file_size for i in z.infolist() if i.filename.startswith("xl/worksheets/"))
    return info


def measure_tree(kind: str, root: Path, *, night: bool, timeout: float | None = None) -> dict:
    """Peak RSS of the whole process tree of ``credit-etl run`` (``night``) or of an ingest of
    the day (ingest only), for the input :func:`limit_input` wrote into ``root``."""
    import os

    from bench.rss import night_steps, peak_by_step, run_tree_peak

    env = dict(os.environ)
    env.pop("DAGSTER_HOME", None)  # the night's instance lives in its data directory
    server = PageServer(root / "page.json") if kind == "http" else None
    try:
        if server:
            env.update(CREDIT_ETL_HTTP_BASE=server.base_url, CREDIT_ETL_TOKEN_ZFCXJW="bench")
        else:
            env.pop("CREDIT_ETL_TOKEN_ZFCXJW", None)
        if night:
            cmd = [str(Path(sys.executable).with_name("credit-etl")), "run", "--data-dir", str(root), "--date", DAY]
        else:
            cmd = [sys.executable, "-c", INGEST_CHILD, str(root), DAY]
        res = run_tree_peak(cmd, cwd=ROOT, env=env, timeout=timeout)
    finally:
        if server:
            server.close()
    out = {"peak_tree_mib": res.peak_tree_mib, "seconds": res.seconds, "returncode": res.returncode,
           "processes_at_peak": res.peak_processes}
    if night:
        steps = night_steps(root, res.started)
        out["peak_step"] = next((n for a, b, n in steps if a <= res.peak_at <= b), "outside steps")
        out["peak_by_step_mib"] = peak_by_step(res, steps)
    out["stdout_tail"] = res.stdout[-700:]
    if res.returncode:
        out["stderr_tail"] = res.stderr[-1500:]
    return out


def readers_limit(kind: str) -> int:
    from assets.ingest import readers

    return {"csv": readers.MAX_CSV_BYTES, "xlsx": readers.MAX_XLSX_BYTES, "json": readers.MAX_JSON_BYTES}[kind]


def tree_main(args) -> int:
    """Ingest and whole-night peaks per format at its limit (merged into the results file)."""
    import shutil

    kinds = args.tree or ["csv", "http", "xlsx"]
    results = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    tree = results.setdefault("process tree at the limit", {})
    for kind in kinds:
        with tempfile.TemporaryDirectory(dir=ROOT / "tmp" if (ROOT / "tmp").is_dir() else None) as tmp:
            root = Path(tmp) / "data"
            from assets.ingest.readers import MAX_ROWS

            entry = {}
            for night in (False, True):
                if root.exists():
                    shutil.rmtree(root)
                rows = None
                if kind == "xlsx":  # inline strings as written by openpyxl: ~1,100 bytes of sheet XML a row
                    # ingest: the 199 MB sheet (more rows than MAX_ROWS: read, then rejected);
                    # the night: a sheet of MAX_ROWS rows
                    rows = MAX_ROWS if night else args.xlsx_sheet_mb * 1_000_000 // 1_100
                elif kind == "csv":
                    rows = min(rows_for("csv", readers_limit("csv")), MAX_ROWS)
                else:
                    from assets.ingest.http import HttpSettings

                    rows = min(rows_for("json", HttpSettings().max_page_bytes), MAX_ROWS)
                info = limit_input(kind, root, rows=rows)
                key = "night" if night else "ingest"
                entry[key] = {k: v for k, v in info.items() if k != "path"} | {"rows": rows}
                entry[key] |= measure_tree(kind, root, night=night)
                print(kind, key, entry[key]["peak_tree_mib"], flush=True)
            tree[kind] = entry
            args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(tree, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
