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


# Cell text a department's spreadsheet can hold: CJK, ASCII with the delimiters and quotes, and the
# whitespace the reader trims (a cell of only that is empty). No control characters: a file with
# those is rejected as binary, which test_any_bytes_are_read_or_rejected_with_a_reason covers.
CELL = st.text(st.one_of(st.characters(min_codepoint=0x4E00, max_codepoint=0x4E40),
                         st.sampled_from(list("aZ09-_.,;\t\"' （）\u3000"))), max_size=12)
TRIM = " \t\r\n\u3000\u00a0\ufeff\u200b\x0b\x0c"


@SETTINGS
@given(st.permutations(LABELS), st.integers(0, 3), st.data(),
       st.sampled_from([",", "\t", ";"]), st.sampled_from(["utf-8", "gb18030", "utf-8-sig"]),
       st.sampled_from(["\r\n", "\n"]))
def test_well_formed_csv_loses_no_row(headers, n_extra, data, delim, encoding, newline):
    """Every column of the contract (in any order) plus unknown ones, any cells: the file is read,
    every record with content is staged with its own record number, only empty records drop."""
    headers = list(headers) + [f"备注{i}" for i in range(n_extra)]
    rows = data.draw(st.lists(st.lists(CELL, min_size=len(headers), max_size=len(headers)), max_size=15))
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delim, lineterminator=newline)
    w.writerow(headers)
    for r in rows:
        w.writerow(r)
    parsed = parse(buf.getvalue().encode(encoding), "a.csv")
    assert parsed is not None, "a well-formed file was rejected"
    with_content = [i + 2 for i, r in enumerate(rows) if any(c.strip(TRIM) for c in r)]  # header is record 1
    assert parsed.table.column("_row_no").to_pylist() == with_content
    assert parsed.extra_columns == headers[len(LABELS):]


@SETTINGS
@given(st.lists(st.sampled_from(LABELS + ["备注", "", "序号", "\ufeff行政相对人名称"]), min_size=1, max_size=20),
       st.lists(st.lists(st.text(max_size=12), min_size=0, max_size=22), max_size=15),
       st.sampled_from([",", "\t", ";"]), st.sampled_from(["utf-8", "gb18030", "utf-8-sig"]),
       st.sampled_from(["\r\n", "\n", "\r"]))
def test_csv_with_any_header_and_cells(headers, rows, delim, encoding, newline):
    """Any header (mostly lacking required columns) and ragged rows: read or one recorded rejection."""
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
        assert parsed.rows <= len(rows)  # rows are never invented


@SETTINGS
@given(st.lists(st.lists(st.one_of(st.none(), CELL, st.integers(-10**6, 10**6),
                                   st.floats(allow_nan=False, allow_infinity=False)), max_size=18), max_size=12),
       st.booleans())
def test_xlsx_with_any_cells(rows, with_header):
    wb = openpyxl.Workbook()
    ws = wb.active
    if with_header:
        ws.append(LABELS)
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    parsed = parse(out.getvalue(), "a.xlsx")
    if with_header:  # every column of the contract: read, and every row with content staged
        assert parsed is not None, "a well-formed workbook was rejected"
        def content(v):
            return v is not None and (not isinstance(v, str) or v.strip(TRIM) != "")
        with_content = [i + 2 for i, r in enumerate(rows) if any(content(v) for v in r)]
        assert parsed.table.column("_row_no").to_pylist() == with_content


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
@given(st.lists(CELL, min_size=1, max_size=12))
def test_header_mapper_with_any_extra_headers(extra):
    """Any further headers beside the contract's (empty, repeated, a field's label again): the
    row is staged, and nothing raises."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(LABELS + extra)
    w.writerow(["x"] * (len(LABELS) + len(extra)))
    parsed = parse(buf.getvalue().encode(), "a.csv")
    assert parsed is not None and parsed.rows == 1
