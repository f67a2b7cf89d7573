"""Helpers for the ingest tests (imported by conftest and the test modules)."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import date
from pathlib import Path

import duckdb

from warehouse.layout import DataDir

DAY = date(2026, 3, 5)


def permit_row(i: int = 1, **over) -> dict[str, str]:
    """A plausible permits record keyed by field name."""
    row = {
        "subject_name": f"巫山县测试商贸有限公司{i}",
        "subject_kind": "法人及非法人组织",
        "subject_uscc": "91500237MA5U1234X7",
        "legal_rep": "张三",
        "decision_doc_name": "食品经营许可决定书",
        "decision_no": f"巫市监许〔2026〕{i:04d}号",
        "permit_category": "普通",
        "permit_content": "食品销售",
        "decision_date": "2026/03/02",
        "valid_from": "2026-03-02",
        "valid_to": "2031-03-01",
        "authority": "巫山县市场监督管理局",
        "authority_uscc": "11500237743131669T",
        "status": "1",
        "source_unit": "巫山县市场监督管理局",
        "source_unit_uscc": "11500237743131669T",
    }
    row.update(over)
    return row


def header_for(contract, name: str, style: str = "label") -> str:
    f = contract.field(name)
    if style == "code":
        return f.code or f.label
    if style == "v1":
        return f.v1_label or f.label
    return f.label


def permits_csv_text(contract, rows: list[dict], *, style="label", delimiter=",", title_rows=(), extra_cols=()) -> str:
    names = [f.name for f in contract.fields]
    buf = io.StringIO()
    for t in title_rows:
        buf.write(t + "\r\n")
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    w.writerow([header_for(contract, n, style) for n in names] + [h for h, _ in extra_cols])
    for r in rows:
        w.writerow([r.get(n, "") for n in names] + [v for _, v in extra_cols])
    return buf.getvalue()


def drop(data_dir: DataDir, dept: str, feed: str, name: str, content: bytes, day: date | None = DAY) -> Path:
    folder = data_dir.inbox / dept / feed
    if day is not None:
        folder = folder / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


def manifest(data_dir: DataDir) -> list[dict]:
    if not data_dir.db_path.exists():
        return []
    con = duckdb.connect(str(data_dir.db_path), read_only=True)
    try:
        cur = con.execute("SELECT * FROM ingest_manifest ORDER BY first_seen_at")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()


def landing_files(data_dir: DataDir) -> list[Path]:
    return sorted(p for p in data_dir.landing.rglob("*") if p.is_file()) if data_dir.landing.exists() else []


# --------------------------------------------------------------------------------------------
# a scripted HTTP server: each request to a path takes the next scripted answer


class Scripted:
    """Answers per path, in order; the last answer repeats. An answer is (status, headers, body),
    a callable(query) returning one, or ("sleep", seconds[, answer]). Unscripted paths answer
    with an empty day."""

    def __init__(self):
        self.script: dict[str, list] = {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.base_url = ""

    def on(self, path: str, *answers) -> "Scripted":
        self.script[path] = list(answers)
        return self

    def next(self, path: str):
        with self.lock:
            answers = self.script.get(path)
            if not answers:
                return 200, {"Content-Type": "application/json"}, page_body([], 1, 0)
            return answers.pop(0) if len(answers) > 1 else answers[0]


def page_body(records: list, page: int, total_pages: int, total: int | None = None) -> bytes:
    return json.dumps(
        {"data": records, "page": page, "total_pages": total_pages, "total": len(records) if total is None else total},
        ensure_ascii=False,
    ).encode("utf-8")


def paged_answer(records: list, size: int):
    """A callable answer that serves ``records`` with the pagination protocol."""

    def answer(query: dict):
        import math

        page = int(query.get("page", 1))
        tp = math.ceil(len(records) / size)
        chunk = records[(page - 1) * size : page * size]
        return 200, {"Content-Type": "application/json"}, page_body(chunk, page, tp, len(records))

    return answer


