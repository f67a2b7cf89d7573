"""Peak memory of reading one large input, each in a fresh process (``ru_maxrss`` of the child).

    .venv/bin/python -m bench.memory [--csv-rows 200000] [--xlsx-rows 100000] [--json-mb 150] [--out FILE]

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
from assets.ingest.readers import records_table
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
    data = open(path, "rb").read()
    if kind == "json":
        payload = json.loads(data)
        del data
        raw = records_table(payload["data"], c)
        del payload
        table, _, _ = map_to_contract(raw, c, file_id="x" * 64, dept="scjgj", received=None, source_name="page.json")
        rows = table.num_rows
    else:
        rows = parse_bytes(data, path, c, file_id="x" * 64, dept="scjgj", received=None).rows
print(json.dumps({"rows": rows, "seconds": round(time.perf_counter() - t, 2),
                  "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  "import_peak_mib": round(base / 1024, 1)}))
"""


def _row(i: int) -> dict[str, str]:
    return {
        "行政相对人名称": f"巫山县测试商贸有限公司{i}", "行政相对人类别": "法人及非法人组织",
        "统一社会信用代码": "91500237MA5U1234X7", "法定代表人": "张三", "行政许可决定文书名称": "食品经营许可决定书",
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
    ap.add_argument("--csv-rows", type=int, default=200_000)
    ap.add_argument("--xlsx-rows", type=int, default=100_000)
    ap.add_argument("--json-mb", type=int, default=150)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "memory.json")
    args = ap.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
