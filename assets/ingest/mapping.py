"""Map a raw table onto a contract: staged rows with lineage (ARCHITECTURE.md, "Staged rows").

Headers are matched by label, snake_case name, code, alias or v1 label, compared with
``normalise_header`` (half-width, no whitespace or line breaks, case-folded; a BOM is ignored).
A second column mapping to a field already taken is kept in ``_extra`` under its own header.
Columns with no header and no data are dropped; other unknown columns go to ``_extra`` as a JSON
object (trimmed text, empty cells left out; null when a row has nothing extra).

Exceptions, all declared in the contract:
- a second column of a *multi-value* field (the 2016 layout's 处罚类别1 + 处罚类别2) is joined to
  the first with ``;`` instead of going to ``_extra``;
- a field with ``infer_when_missing`` whose column the delivery lacks entirely is inferred per
  row (e.g. 行政相对人类别 from which identifier is filled) instead of refusing the file;
- a decimal field with a ``unit`` converts cells marked with another unit ("5000元" → 0.5 万元).
The last two leave a note per cell in ``_notes`` (JSON object ``{"<field>.<check>": original
text}``), which validation turns into the warnings ``<field>.unit`` / ``<field>.inferred``.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from contracts.model import Contract
from assets.ingest.errors import IngestError
from assets.ingest.normalise import clean_text, converted_units, normalise_column
from assets.ingest import readers
from assets.ingest.readers import RawTable, _header_key, missing_header_error

LINEAGE = ["_file_id", "_row_no", "_dept", "_feed", "_received_date", "_source_name", "_extra", "_notes"]

PARALLEL_MIN_ROWS = 50_000  # below this, threads cost more than they save


def _pmap(fn, items: list, rows: int) -> list:
    """``[fn(x) for x in items]``, column by column on a few threads for large files: the
    pyarrow kernels release the GIL, so cleaning and normalising 30 columns of a million rows
    use every core instead of one (bench/: about half of ingest's compute time on 2 cores)."""
    items = list(items)
    workers = min(len(items), os.cpu_count() or 1, 8)
    if rows < PARALLEL_MIN_ROWS or workers < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest-map") as pool:
        return list(pool.map(fn, items))


def staged_schema(contract: Contract) -> pa.Schema:
    fields = [pa.field(f.name, pa.string()) for f in contract.fields]
    fields += [
        pa.field("_file_id", pa.string()),
        pa.field("_row_no", pa.int64()),
        pa.field("_dept", pa.string()),
        pa.field("_feed", pa.string()),
        pa.field("_received_date", pa.date32()),
        pa.field("_source_name", pa.string()),
        pa.field("_extra", pa.string()),
        pa.field("_notes", pa.string()),
    ]
    return pa.schema(fields)


def empty_staged(contract: Contract) -> pa.Table:
    return staged_schema(contract).empty_table()


def _check_cell_sizes(raw: RawTable) -> None:
    for header, col in zip(raw.headers, raw.columns):
        if len(col) == 0 or col.null_count == len(col):
            continue
        # a cell has at most as many characters as bytes: the byte lengths (read from the
        # offsets, no decoding) settle almost every column
        if (pc.max(pc.binary_length(col)).as_py() or 0) <= readers.MAX_CELL_CHARS:
            continue
        lengths = pc.utf8_length(col)
        longest = pc.max(lengths).as_py() or 0
        if longest > readers.MAX_CELL_CHARS:
            pos = pc.index(lengths, longest).as_py()
            row = raw.row_no[pos].as_py()
            raise IngestError(
                f"第{row}行“{header}”单元格过长（{longest}个字符，上限{readers.MAX_CELL_CHARS}），"
                "可能是引号未闭合或导出错误；整个文件未接收，请检查后重新报送",
                code="cell_size",
            )


_JSON_ESC = [("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")]
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _extra_json(extras: list[tuple[str, pa.Array]], n: int) -> pa.Array:
    if not extras:
        return pa.nulls(n, pa.string())
    if any(pc.any(pc.match_substring_regex(col, r"[\x00-\x08\x0b\x0c\x0e-\x1f]")).as_py() for _, col in extras):
        pylists = [(k, col.to_pylist()) for k, col in extras]
        out = []
        for i in range(n):
            obj = {k: vals[i] for k, vals in pylists if vals[i] is not None}
            out.append(json.dumps(obj, ensure_ascii=False) if obj else None)
        return pa.array(out, type=pa.string())
    parts = []
    for key, col in extras:
        esc = col
        for a, b in _JSON_ESC:
            esc = pc.replace_substring(esc, a, b)
        prefix = "," + json.dumps(key, ensure_ascii=False) + ':"'
        parts.append(pc.fill_null(pc.binary_join_element_wise(prefix, esc, '"', ""), ""))
    # (null_handling="skip" of binary_join_element_wise drops rows in pyarrow 26: avoid it)
    body = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "")
    obj = pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(body, 1), "}", "")
    return pc.if_else(pc.equal(body, ""), pa.scalar(None, pa.string()), obj)


RAW_SCHEMA = pa.schema([("_row_no", pa.int64()), ("field", pa.string()), ("raw", pa.string())])


def raw_changes(fields: list[str], cleaned: list[pa.Array], normalised: list[pa.Array], row_no: pa.Array) -> pa.Table:
    """Cells whose staged value differs from the text received (after trimming), in long form.

    Feedback shows a rejected value as the clerk typed it (full-width ＧＤ５００…, 2026/3/5); the
    staged rows carry the normalised value. Keeping only the changed cells costs one vectorised
    comparison per normalised column and stores next to nothing for clean files, instead of
    re-reading the landed file for every rejected row.
    """
    parts = []
    for name, before, after in zip(fields, cleaned, normalised):
        if before is None or before is after:
            continue
        changed = pc.and_(pc.is_valid(before), pc.fill_null(pc.not_equal(before, after), True))
        if not pc.any(changed).as_py():
            continue
        rows = pc.filter(row_no, changed)
        parts.append(pa.table([rows.cast(pa.int64()), pa.repeat(pa.scalar(name), len(rows)), pc.filter(before, changed)],
                              schema=RAW_SCHEMA))
    return pa.concat_tables(parts) if parts else RAW_SCHEMA.empty_table()


def _const(value, typ: pa.DataType, n: int) -> pa.Array:
    if value is None:
        return pa.nulls(n, typ)
    return pa.repeat(pa.scalar(value, typ), n)


def map_to_contract(
    raw: RawTable,
    contract: Contract,
    *,
    file_id: str,
    dept: str | None,
    received: date | None,
    source_name: str,
) -> tuple[pa.Table, list[str], pa.Table]:
    """RawTable → (staged table in contract order with lineage, unknown column headers, cells as
    received where normalisation changed them (:func:`raw_changes`))."""
    hmap = contract.header_map()
    by_field: dict[str, pa.Array] = {}
    extras: list[tuple[str, pa.Array]] = []
    unknown: list[str] = []
    _check_cell_sizes(raw)
    cleaned = _pmap(clean_text, raw.columns, raw.num_rows)
    for header, col in zip(raw.headers, cleaned):
        name = hmap.get(_header_key(header))
        if name is not None and name not in by_field:
            by_field[name] = col
            continue
        if name is not None and raw.format == "json":  # records keyed by label in one place, code in another
            by_field[name] = pc.coalesce(by_field[name], col)
            continue
        if name is not None and contract.field(name).multi_value_separator:
            # 2016 layout: 处罚类别1 / 处罚类别2 — one multi-value field over two columns
            by_field[name] = _join_values(by_field[name], col)
            continue
        if col.null_count == len(col) and (not str(header).strip() or str(header).startswith("第")):
            continue  # an empty unnamed column (trailing delimiters, formatted spreadsheet columns)
        key = str(header).strip() or f"第{len(extras) + 1}列"
        extras.append((key, col))
        unknown.append(key)
    # JSON records may leave out keys whose value is empty: a missing key is a null, reported per
    # row by validation; records_table already refused deliveries with no recognisable key at all.
    inferable = {f.name for f in contract.fields if f.infer_when_missing}
    missing = [n for n in contract.required_columns() if n not in by_field and n not in inferable]
    if missing and raw.format != "json":
        raise missing_header_error(contract, set(by_field))

    n = raw.num_rows
    # rows with no content at all are dropped (spreadsheet padding, lines of delimiters)
    if n and cleaned:
        any_value = pc.is_valid(cleaned[0])
        for col in cleaned[1:]:
            any_value = pc.or_(any_value, pc.is_valid(col))
        if not pc.all(any_value).as_py():
            keep = any_value
            by_field = {k: pc.filter(v, keep) for k, v in by_field.items()}
            extras = [(k, pc.filter(v, keep)) for k, v in extras]
            row_no = pc.filter(raw.row_no, keep)
        else:
            row_no = raw.row_no
    else:
        row_no = raw.row_no
    n = len(row_no)

    notes: list[tuple[str, pa.Array]] = []

    def normalised(f):
        col = by_field.get(f.name)
        if col is None:
            return pa.nulls(n, pa.string())
        orig = converted_units(col, f)
        if orig is not None:
            notes.append((f"{f.name}.unit", orig))
        return normalise_column(col, f)

    arrays = _pmap(normalised, contract.fields, n)
    for i, f in enumerate(contract.fields):
        if f.infer_when_missing and f.name not in by_field:
            values, note = _infer(f, contract, dict(zip(contract.field_names, arrays)), n)
            arrays[i] = values
            if note is not None:
                notes.append((f"{f.name}.inferred", note))
    notes.sort(key=lambda kv: kv[0])  # threads append in any order
    changes = raw_changes([f.name for f in contract.fields], [by_field.get(f.name) for f in contract.fields],
                          arrays, row_no)
    arrays += [
        _const(file_id, pa.string(), n),
        row_no.cast(pa.int64()),
        _const(dept, pa.string(), n),
        _const(contract.feed, pa.string(), n),
        _const(received, pa.date32(), n),
        _const(source_name, pa.string(), n),
        _extra_json(extras, n),
        _extra_json(notes, n),
    ]
    return pa.Table.from_arrays(arrays, schema=staged_schema(contract)), unknown, changes


def _join_values(a: pa.Array, b: pa.Array) -> pa.Array:
    """Row-wise ``a;b`` of two cleaned text columns, either side may be null."""
    both = pc.binary_join_element_wise(a, b, ";")
    return pc.coalesce(both, a, b)


def _infer(f, contract: Contract, cols: dict[str, pa.Array], n: int) -> tuple[pa.Array, pa.Array | None]:
    """Values of a missing column from the contract's ``infer_when_missing`` rules (first match
    wins; null where none applies, so the required rule still reports the row) and a note per
    inferred cell naming the field it was inferred from."""
    inf = f.infer_when_missing
    value = pa.nulls(n, pa.string())
    note = pa.nulls(n, pa.string())
    done = pa.repeat(pa.scalar(False), n) if n else pa.array([], pa.bool_())
    for r in inf.rules:
        src = cols[r.field]
        hit = pc.is_valid(src)
        if r.prefix:
            hit = pc.and_(hit, pc.fill_null(pc.starts_with(src, r.prefix), False))
        hit = pc.and_(hit, pc.invert(done))
        label = contract.field(r.field).label
        text = f"文件无“{f.label}”列，按“{label}”已填写推定为“{r.value}”"
        value = pc.if_else(hit, pa.scalar(r.value), value)
        note = pc.if_else(hit, pa.scalar(text), note)
        done = pc.or_(done, hit)
    if n == 0 or not pc.any(done).as_py():
        return value, None
    return value, note
