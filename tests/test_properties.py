"""Property-based tests (Hypothesis): whatever bytes a department sends, the readers, the header
mapper and the normalisers either give rows or raise the one recorded rejection (IngestError with
a Chinese message); never any other exception, never a lost row in a well-formed file."""

from __future__ import annotations

import csv
import io
import re

import openpyxl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets.ingest import IngestError
from assets.ingest.core import parse_bytes
from assets.ingest.normalise import normalise_column, normalise_date, normalise_number
from contracts import load_contracts

CONTRACTS = load_contracts()
PERMITS = CONTRACTS["permits"]
LABELS = [f.label for f in PERMITS.fields]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CJK = re.compile(r"[\u4e00-\u9fff]")


def parse(data: bytes, name: str):
    try:
        return parse_bytes(data, name, PERMITS, file_id="x" * 64, dept="scjgj", received=None)
    except IngestError as exc:
        assert exc.message_zh and CJK.search(exc.message_zh), exc.message_zh  # a reason a clerk can read
        return None


@SETTINGS
@given(st.binary(max_size=4096), st.sampled_from(["a.csv", "a.xlsx", "a.json", "a.txt"]))
def test_any_bytes_are_read_or_rejected_with_a_reason(data, name):
    parse(data, name)


@SETTINGS
@given(st.lists(st.sampled_from(LABELS + ["备注", "", "序号", "\ufeff行政相对人名称"]), min_size=1, max_size=20),
       st.lists(st.lists(st.text(max_size=12), min_size=0, max_size=22), max_size=15),
       st.sampled_from([",", "\t", ";"]), st.sampled_from(["utf-8", "gb18030", "utf-8-sig"]),
       st.sampled_from(["\r\n", "\n", "\r"]))
def test_csv_with_any_header_and_cells(headers, rows, delim, encoding, newline):
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delim, lineterminator=newline)
    w.writerow(headers)
    for r in rows:
        w.writerow(r)
    try:
        data = buf.getvalue().encode(encoding)
    except UnicodeEncodeError:
        return
    parsed = parse(data, "a.csv")
    if parsed is not None:
        # rows are never invented; all-empty records may be dropped, nothing else
        assert parsed.rows <= len(rows) + 1


@SETTINGS
@given(st.lists(st.lists(st.one_of(st.none(), st.text(max_size=10), st.integers(-10**6, 10**6),
                                   st.floats(allow_nan=False, allow_infinity=False)), max_size=18), max_size=12),
       st.booleans())
def test_xlsx_with_any_cells(rows, with_header):
    wb = openpyxl.Workbook()
    ws = wb.active
    if with_header:
        ws.append(LABELS)
    for r in rows:
        try:
            ws.append(r)
        except Exception:  # openpyxl refuses control characters: not a file a department could send
            return
    out = io.BytesIO()
    wb.save(out)
    parse(out.getvalue(), "a.xlsx")


@SETTINGS
@given(st.lists(st.one_of(st.none(), st.text(max_size=30)), max_size=30))
def test_normalisers_never_raise(values):
    for v in values:
        normalise_date(v)
        normalise_number(v)
    arr = pa.array(values, type=pa.string())
    for f in PERMITS.fields:
        out = normalise_column(arr, f)
        assert len(out) == len(values)


@SETTINGS
@given(st.lists(st.text(min_size=0, max_size=8), min_size=1, max_size=12))
def test_header_mapper_with_any_headers(extra):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(LABELS[:3] + extra)
    w.writerow(["x"] * (3 + len(extra)))
    parse(buf.getvalue().encode(), "a.csv")
