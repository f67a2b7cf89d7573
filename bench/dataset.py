"""Benchmark data sets: the sample generator's department files, scaled up cheaply.

The sample generator (``pipelines.samples.feeds.generate``) writes a few thousand rows per
second (Faker, per-row defects, an oracle re-check per row): 1,000,000 rows would take minutes
and 10,000,000 most of an hour. So a data set of N rows is built in two steps:

1. **Seed.** ``generate`` writes a small set of real department submissions for the same
   received days (``_seed/`` beside the data set): every department's own format, encoding,
   header style and title rows, ~8% defective rows, late rows, resubmitted files.
2. **Scale.** Every seed delivery of a ``records`` feed is read as ingest would read it (raw text
   cells, no normalisation: ``assets.ingest.readers.read_bytes``) and its data rows are repeated
   cyclically until the delivery holds its share of the day's N rows. DuckDB writes the repeated
   rows (``COPY ... TO ... (FORMAT csv)``) below the seed's own title rows and header, in the
   seed's encoding (GBK / GB18030 re-encoded in Python). Copy ``k`` of a row gets ``-k`` appended
   to its business-key field (``decision_no`` / ``claim_no`` / ``account_no``; empty cells stay
   empty), so copies are distinct records and the unique-key defects of a delivery stay
   duplicates within their copy. Every other cell (and so every defect and every late decision
   date) is repeated as written. XLSX and HTTP/JSON seed deliveries become CSV files (UTF-8) in
   the department's inbox folder: a 1M-row XLSX is not something a department sends, and the
   benchmark runs with HTTP off. Ledgers (``declarations``) and ``repairs`` are copied as
   generated (they are tiny and their keys are per month / per target record).

What replication does not reproduce: identifiers, names and dates repeat (about N ÷ seed rows
times each), so validation's per-distinct-value work is smaller than on N truly distinct rows;
``BENCHMARKS.md`` quantifies it. File-level quirks of the seed (blank lines, ragged rows) are
rewritten as regular CSV.

The data set is described in ``bench_dataset.json`` (files, rows, encodings, title rows), which
the floor reads to run DuckDB over exactly the same files.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from assets.ingest.readers import _head_records, decode, read_bytes
from contracts import load_contracts, load_registry
from contracts.model import Contract
from pipelines.samples.feeds import HTTP_OUTBOX, generate
from warehouse.layout import DataDir

MANIFEST = "bench_dataset.json"
SEED_DIR = "_seed"
FORMAT_VERSION = 2


@dataclass
class _Delivery:
    dept: str
    feed: str
    day: date
    name: str
    path: Path
    kind: str  # inbox | http


def _seed_deliveries(seed: DataDir, day: date) -> list[_Delivery]:
    out = []
    d = day.isoformat()
    if seed.inbox.exists():
        for p in sorted(seed.inbox.glob(f"*/*/{d}/*")):
            if p.is_file():
                out.append(_Delivery(p.parts[-4], p.parts[-3], day, p.name, p, "inbox"))
    outbox = seed.root / HTTP_OUTBOX
    if outbox.exists():
        for p in sorted(outbox.glob(f"*/*/{d}.json")):
            out.append(_Delivery(p.parts[-3], p.parts[-2], day, f"{d}.json", p, "http"))
    return out


def _key_positions(raw, contract: Contract) -> list[int]:
    from assets.ingest.readers import _header_key

    hmap = contract.header_map()
    keys = set(contract.business_key)
    pos, taken = [], set()
    for i, h in enumerate(raw.headers):
        name = hmap.get(_header_key(h))
        f = contract.field(name) if name in keys else None
        # the free-form number of the key (decision_no, claim_no, account_no): not an identifier
        # with a check digit (authority_uscc) and not a pattern- or enum-bound part
        if f is not None and name not in taken and f.type == "code" and not f.identifier and not f.pattern \
                and not f.enum:
            pos.append(i)
            taken.add(name)
    return pos[:1]


def _preamble(data: bytes, raw, encoding: str | None) -> tuple[str, int]:
    """(title rows + header as CSV text, number of title rows) of a seed delivery."""
    if raw.format == "csv":
        text, _ = decode(data)
        recs = _head_records(text, raw.delimiter or ",", raw.header_row)
        end = recs[raw.header_row - 1][1]
        pre = text[:end]
        if not pre.endswith("\n"):
            pre += "\r\n"
        return pre, raw.header_row - 1
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    titles = 0
    if raw.format == "xlsx" and raw.header_row and raw.header_row > 1:
        import openpyxl

        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        ws = wb[raw.sheet] if raw.sheet else wb.active
        for row in ws.iter_rows(min_row=1, max_row=raw.header_row - 1, values_only=True):
            cells = ["" if c is None else str(c) for c in row]
            while cells and cells[-1] == "":
                cells.pop()
            w.writerow(cells or [""])
            titles += 1
        wb.close()
    w.writerow(raw.headers)
    return buf.getvalue(), titles


def _largest_remainder(sizes: list[int], total: int) -> list[int]:
    s = sum(sizes)
    if s == 0 or total <= 0:
        return [0] * len(sizes)
    exact = [n * total / s for n in sizes]
    out = [int(math.floor(x)) for x in exact]
    for i in sorted(range(len(sizes)), key=lambda i: exact[i] - out[i], reverse=True)[: total - sum(out)]:
        out[i] += 1
    return out


def _write_scaled(con: duckdb.DuckDBPyConnection, raw, key_pos: list[int], target_rows: int, preamble: str,
                  encoding: str, delimiter: str, target: Path, key_tag: str = "") -> None:
    n = raw.num_rows
    names = [f"c{i}" for i in range(len(raw.columns))]
    tbl = pa.table({**{nm: col.cast(pa.string()) for nm, col in zip(names, raw.columns)},
                    "_rn": pa.array(range(n), pa.int64())})
    con.register("_seed_rows", tbl)
    reps = max(1, math.ceil(target_rows / n))
    cols = []
    for i, nm in enumerate(names):
        if i in key_pos:
            if key_tag:  # every copy, the first too, in the data set's own key space
                cols.append(f"CASE WHEN trim(s.{nm}) = '' THEN NULLIF(s.{nm}, '') "
                            f"ELSE s.{nm} || '-' || '{key_tag}' || r.k END AS {nm}")
            else:
                cols.append(f"CASE WHEN r.k = 0 OR trim(s.{nm}) = '' THEN NULLIF(s.{nm}, '') "
                            f"ELSE s.{nm} || '-' || r.k END AS {nm}")
        else:
            cols.append(f"NULLIF(s.{nm}, '') AS {nm}")  # an empty cell is written empty, not ""
    target.parent.mkdir(parents=True, exist_ok=True)
    body = target.with_name(target.name + ".body.tmp")
    sql = (f"COPY (SELECT {', '.join(cols)} FROM _seed_rows s, range({reps}) r(k) "
           f"WHERE r.k * {n} + s._rn < {target_rows} ORDER BY r.k, s._rn) "
           f"TO '{body.as_posix()}' (FORMAT csv, HEADER false, DELIMITER '{delimiter}', QUOTE '\"')")
    con.execute(sql)
    con.unregister("_seed_rows")
    enc = encoding or "utf-8"
    with open(target, "wb") as out:
        if enc == "utf-8-sig":
            out.write(b"\xef\xbb\xbf")
            enc = "utf-8"
        out.write(preamble.encode(enc))
        if enc == "utf-8":
            with open(body, "rb") as src:
                shutil.copyfileobj(src, out, 16 << 20)
        else:
            with open(body, "r", encoding="utf-8", newline="") as src:
                while True:
                    chunk = src.read(8 << 20)
                    if not chunk:
                        break
                    out.write(chunk.encode(enc))
    body.unlink()


def day_shares(rows: int, days: int) -> list[int]:
    base, extra = divmod(rows, days)
    return [base + (1 if i < extra else 0) for i in range(days)]


def build(root: str | Path, *, rows: int, start: date, days: int = 1, seed: int = 20261123,
          seed_rows_per_day: int | None = None, defect_rate: float = 0.08, key_tag: str = "", log=print) -> dict:
    """Build a data set of ``rows`` rows received over ``days`` days from ``start`` under ``root``
    (``root/inbox/...``) and return its description (also written to ``root/bench_dataset.json``).

    ``rows`` counts data rows of all feeds; each day gets ``rows // days`` (± 1).
    """
    root = Path(root)
    dd = DataDir(root)
    t0 = time.perf_counter()
    contracts = load_contracts()
    registry = load_registry(contracts=contracts)
    per_day = day_shares(rows, days)
    if seed_rows_per_day is None:
        # generator rows/day/feed: ~14 department-feed deliveries a day. Aim for a seed of about
        # a quarter of a day (so even a smoke run exercises the replication), at most ~28k rows a
        # day and ~30k rows in all (the generator writes a few thousand rows a second)
        seed_rows_per_day = max(5, min(2000, max(per_day) // 56, 30000 // (14 * days)))
    seed_dir = root / SEED_DIR
    shutil.rmtree(seed_dir, ignore_errors=True)
    summary = generate(seed_dir, start=start, days=days, rows_per_day=seed_rows_per_day, seed=seed,
                       defect_rate=defect_rate, contracts=contracts, registry=registry)
    t_seed = time.perf_counter() - t0
    log(f"[dataset] seed: {sum(summary.rows.values())} rows over {days} day(s) in {t_seed:.1f} s")
    shutil.rmtree(dd.inbox, ignore_errors=True)
    seed_dd = DataDir(seed_dir)
    files = []
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    for i in range(days):
        day = start + timedelta(days=i)
        deliveries = _seed_deliveries(seed_dd, day)
        parsed = []
        fixed = 0
        for dv in deliveries:
            contract = contracts.get(dv.feed)
            if contract is None:
                continue
            data = dv.path.read_bytes()
            raw = read_bytes(data, dv.name, contract)
            if contract.role == "records" and raw.num_rows > 0:
                parsed.append((dv, contract, data, raw))
            elif raw.num_rows > 0:
                target = dd.inbox / dv.dept / dv.feed / day.isoformat() / dv.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(dv.path, target)
                fixed += raw.num_rows
                files.append({"path": target.relative_to(root).as_posix(), "dept": dv.dept, "feed": dv.feed,
                              "day": day.isoformat(), "format": raw.format, "encoding": raw.encoding,
                              "delimiter": raw.delimiter, "skip": (raw.header_row or 1) - 1,
                              "rows": raw.num_rows, "bytes": target.stat().st_size, "scaled": False})
        targets = _largest_remainder([p[3].num_rows for p in parsed], per_day[i] - fixed)
        for (dv, contract, data, raw), t in zip(parsed, targets):
            if t <= 0:
                continue
            pre, titles = _preamble(data, raw, raw.encoding)
            pre = pre.replace("\r\n", "\n")  # DuckDB writes the body with \n: one line ending per file
            name = dv.name if raw.format == "csv" else f"{Path(dv.name).stem}.csv"
            if dv.kind == "http":
                name = f"{contract.title}_{dv.dept}_{day:%Y%m%d}_接口.csv"
            enc = raw.encoding if raw.format == "csv" else "utf-8"
            delim = raw.delimiter if raw.format == "csv" else ","
            target = dd.inbox / dv.dept / dv.feed / day.isoformat() / name
            _write_scaled(con, raw, _key_positions(raw, contract), t, pre, enc, delim, target, key_tag)
            files.append({"path": target.relative_to(root).as_posix(), "dept": dv.dept, "feed": dv.feed,
                          "day": day.isoformat(), "format": "csv", "encoding": enc, "delimiter": delim,
                          "skip": titles, "rows": t, "bytes": target.stat().st_size, "scaled": True,
                          "seed_rows": raw.num_rows, "seed_format": raw.format})
        log(f"[dataset] {day}: {per_day[i]} rows in {sum(1 for f in files if f['day'] == day.isoformat())} files")
    con.close()
    desc = {
        "format_version": FORMAT_VERSION,
        "key_tag": key_tag,
        "rows": rows,
        "days": days,
        "start": start.isoformat(),
        "seed": seed,
        "seed_rows_per_day": seed_rows_per_day,
        "seed_rows": sum(summary.rows.values()),
        "seed_defective_share": round(sum(summary.defective.values()) / max(1, sum(summary.rows.values())), 4),
        "seed_late_rows": summary.late,
        "defect_rate": defect_rate,
        "files": files,
        "total_rows": sum(f["rows"] for f in files),
        "total_bytes": sum(f["bytes"] for f in files),
        "build_seconds": round(time.perf_counter() - t0, 2),
    }
    (root / MANIFEST).write_text(json.dumps(desc, ensure_ascii=False, indent=1), encoding="utf-8")
    shutil.rmtree(seed_dir, ignore_errors=True)
    log(f"[dataset] {desc['total_rows']} rows, {desc['total_bytes'] / 1e6:.0f} MB in {len(files)} files, "
        f"{desc['build_seconds']:.1f} s")
    return desc


def load(root: str | Path) -> dict | None:
    p = Path(root) / MANIFEST
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except ValueError:
        return None


def matches(desc: dict | None, *, rows: int, start: date, days: int, seed: int, key_tag: str = "") -> bool:
    return bool(desc) and desc.get("format_version") == FORMAT_VERSION and desc.get("rows") == rows \
        and desc.get("start") == start.isoformat() and desc.get("days") == days and desc.get("seed") == seed \
        and desc.get("key_tag", "") == key_tag \
        and all((Path(desc["_root"]) / f["path"]).exists() for f in desc["files"]) if desc and "_root" in desc else False


def ensure(root: str | Path, *, rows: int, start: date, days: int, seed: int, reuse: bool = True,
           key_tag: str = "", log=print) -> dict:
    """The data set under ``root``: reused when one with the same parameters is there, else built.

    ``key_tag``: every copy of a row gets ``-<key_tag><k>`` on its business-key number, the first
    copy too, so the data set's records are its own. Without it the numbers come from the same
    small space as any other data set's (the generator's 文书号), and a night built on top of a
    backfill turns out to correct a record the backfill holds for nearly every row."""
    root = Path(root)
    desc = load(root)
    if desc is not None:
        desc["_root"] = str(root)
    if reuse and matches(desc, rows=rows, start=start, days=days, seed=seed, key_tag=key_tag):
        log(f"[dataset] reusing {root} ({desc['total_rows']} rows)")
        return desc
    desc = build(root, rows=rows, start=start, days=days, seed=seed, key_tag=key_tag, log=log)
    desc["_root"] = str(root)
    return desc
