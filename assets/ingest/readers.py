"""Readers: bytes of a department file (or HTTP pages) → a raw table of text cells.

A :class:`RawTable` is the header row as written, one pyarrow string array per column (raw
text, not yet trimmed) and the row number the clerk sees for each row. Mapping to contract
fields happens in :mod:`assets.ingest.mapping`.

Choices for awkward input (each tested in tests/ingest):
- Encoding: UTF-8 (with or without BOM), then GB18030 (a superset of GBK), then
  charset-normalizer. A file whose lines are partly UTF-8 and partly GBK (two exports appended)
  is decoded line by line: lines that are valid UTF-8 and carry Chinese text as UTF-8, the others
  as GB18030; the manifest records the encoding as ``mixed(utf-8+gb18030)``. Rejecting such a file
  would make a clerk fix a problem they cannot see in Excel, and per-line decoding is unambiguous
  in practice (GBK Chinese text is almost never valid UTF-8).
- Binary content (NUL bytes, or many control characters after decoding) is rejected.
- A ``.csv`` that is really an XLSX (zip) is read as XLSX; legacy ``.xls`` is rejected with a hint.
- Cells longer than :data:`MAX_CELL_CHARS` reject the whole file: such a cell is almost always an
  unclosed quote that swallowed the following rows, so keeping "the rest" would silently lose rows.
- Rows whose cells are all empty are dropped (spreadsheets carry formatted empty rows); row
  numbers of the others are unaffected.
- Row numbers count records (spreadsheet rows / CSV records), title rows and the header included;
  blank lines count too. A quoted cell spanning lines is one record.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contracts.model import Contract, normalise_header
from assets.ingest.errors import IngestError

MAX_FILE_BYTES = 1 << 30  # 1 GiB: the most of one delivered file kept (landed) as evidence
# Per-format limits of what is parsed (issue 12: one input at its limit keeps the whole night,
# every process of ``credit-etl run`` together, below 1 GiB resident; measured by bench/memory.py,
# asserted by tests/test_memory_bound.py). A larger file is rejected with its size and the limit,
# its bytes still landed (streamed, never read whole). A county department's daily delivery is a
# few MB; a year's backlog of one feed ~100,000 rows (~35 MB of CSV): it is sent in parts.
MAX_CSV_BYTES = 48 * 1024 * 1024
MAX_XLSX_BYTES = 24 * 1024 * 1024  # the workbook file (zip); MAX_XLSX_UNCOMPRESSED bounds its contents
MAX_JSON_BYTES = 48 * 1024 * 1024  # a JSON file in the inbox (parsed whole; HTTP pages are streamed)
# Bytes do not bound rows (a 3-column CSV of 48 MiB is 1.5 M rows) and the night's memory grows
# with rows (the load step): a file or HTTP page of more rows is rejected after reading.
MAX_ROWS = 150_000
MAX_CELL_CHARS = 1_000_000  # longest accepted cell; contracts allow at most a few thousand
MAX_XLSX_UNCOMPRESSED = 200 * 1024 * 1024  # total uncompressed size of an XLSX's members
MAX_XLSX_RATIO = 100  # compression ratio above which a large member is refused (zip bomb)
XLSX_RATIO_MIN_BYTES = 10 * 1024 * 1024  # the ratio test applies to members above this size
HEADER_SEARCH_ROWS = 30  # title rows above the header: look this far down
DELIMITERS = [",", "\t", ";", "|"]
_CSV_BLOCK = 4 << 20
_CSV_BLOCK_MAX = 256 << 20


@dataclass
class RawTable:
    headers: list[str]
    columns: list[pa.Array]  # raw text per header position
    row_no: pa.Array  # int64
    format: str  # csv | xlsx | json
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    header_row: int | None = None  # 1-based record number of the header (None for JSON)
    notes: list[str] = field(default_factory=list)

    @property
    def num_rows(self) -> int:
        return len(self.row_no)


# ---------------------------------------------------------------------------------------------
# content sniffing


def sniff_format(data: bytes, name: str) -> str:
    """'xlsx', 'csv' or 'json' from the content first and the file name second."""
    if data[:4] == b"PK\x03\x04":
        return "xlsx"
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        if "EncryptedPackage".encode("utf-16-le") in data[: 1 << 20] or "EncryptionInfo".encode("utf-16-le") in data[: 1 << 20]:
            raise IngestError("Excel 文件设有打开密码（已加密），无法读取；请取消密码后另存为 .xlsx 重新报送", code="encrypted")
        raise IngestError("文件是旧版 Excel（.xls）格式，请另存为 .xlsx 或 CSV（UTF-8）后重新报送", code="format")
    suffix = Path(name).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        raise IngestError("文件扩展名为 .xlsx，但内容不是有效的 Excel 文件（可能已损坏或被截断）", code="corrupt")
    if suffix == ".json":
        return "json"
    return "csv"


# ---------------------------------------------------------------------------------------------
# text decoding

_CJK = re.compile(r"[\u4e00-\u9fff]")


def _controls_ratio(text: str) -> float:
    sample = text[:20000]
    if not sample:
        return 0.0
    bad = sum(
        1
        for ch in sample
        if (ch < " " and ch not in "\t\r\n") or unicodedata.category(ch) in ("Co", "Cn", "Cs") or ch == "\ufffd"
    )
    return bad / len(sample)


def decode(data: bytes) -> tuple[str, str]:
    """Bytes → (text, encoding name). Raises IngestError for binary or undecodable content."""
    if data.startswith(b"\xef\xbb\xbf"):
        body = data[3:]
        try:
            return body.decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            text, enc = _decode_mixed(body)
            return text, enc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise IngestError("文件编码无法识别（UTF-16 内容损坏）", code="encoding") from None
    if b"\x00" in data[:65536]:
        raise IngestError("文件内容不是文本表格（含二进制数据，可能是扩展名错误或文件损坏）", code="binary")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    return _decode_mixed(data)


def _decode_mixed(data: bytes) -> tuple[str, str]:
    """Non-UTF-8 bytes: GB18030, per-line UTF-8/GB18030 for mixed files, else charset-normalizer."""
    lines = data.split(b"\n")
    utf8_cjk = 0
    other = 0
    for line in lines:
        if line.isascii():
            continue
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError:
            other += 1
            continue
        if _CJK.search(decoded):
            utf8_cjk += 1
        else:
            other += 1
    if utf8_cjk and other:
        parts = []
        for line in lines:
            try:
                parts.append(line.decode("utf-8"))
            except UnicodeDecodeError:
                try:
                    parts.append(line.decode("gb18030"))
                except UnicodeDecodeError:
                    raise IngestError("文件中混用了多种编码且部分内容无法识别，请统一另存为 UTF-8 后重新报送", code="encoding") from None
        text, enc = "\n".join(parts), "mixed(utf-8+gb18030)"
    else:
        # One decode when the file is GBK: every byte sequence GBK decodes, GB18030 (its superset)
        # decodes to the same text (checked over all 21,919 GBK code points), so the GBK text
        # is the GB18030 text and names the encoding; GB18030 is decoded only when GBK fails.
        try:
            try:
                text, enc = data.decode("gbk"), "gbk"
            except UnicodeDecodeError:
                text, enc = data.decode("gb18030"), "gb18030"
        except UnicodeDecodeError:
            from charset_normalizer import from_bytes

            best = from_bytes(data[: 4 << 20]).best()
            if best is None:
                raise IngestError("文件内容不是文本表格或编码无法识别（请另存为 UTF-8 编码的 CSV）", code="binary") from None
            try:
                text, enc = data.decode(best.encoding), str(best.encoding)
            except (UnicodeDecodeError, LookupError):
                raise IngestError("文件编码无法识别（请另存为 UTF-8 编码的 CSV）", code="encoding") from None
    if _controls_ratio(text) > 0.01:
        raise IngestError("文件内容不是文本表格（含大量不可见字符，可能是二进制文件或扩展名错误）", code="binary")
    return text, enc


# ---------------------------------------------------------------------------------------------
# header detection


def _header_key(cell: object) -> str:
    return normalise_header(str(cell).replace("\ufeff", "")) if cell is not None else ""


def header_score(cells: list, header_map: dict[str, str]) -> int:
    return len({header_map[k] for k in (_header_key(c) for c in cells) if k in header_map})


def missing_header_error(contract: Contract, found: set[str] | None = None) -> IngestError:
    found = found or set()
    labels = [contract.field(n).label for n in contract.required_columns() if n not in found]
    if found:
        return IngestError(f"缺少必填列：{'、'.join(labels)}（整个文件未接收，请按模板补齐列后重新报送）", code="header")
    return IngestError(
        f"未找到表头：前{HEADER_SEARCH_ROWS}行中没有可识别的列名；缺少必填列：{'、'.join(labels)}"
        "（请使用“" + contract.title + "”报送模板）",
        code="header",
    )


# ---------------------------------------------------------------------------------------------
# CSV


_HEAD_BYTES = 1 << 20  # decoded head of a UTF-8 file: >= 2**18 characters, all header detection reads


class _NeedText(Exception):
    """The UTF-8 fast path cannot decide on the head alone: decode the whole file."""


def _utf8_head(data: bytes) -> tuple[str, str] | None:
    """(decoded head, encoding) when the file looks like UTF-8; None otherwise.

    The head is cut on a character boundary, so it is exactly the prefix of the full decode.
    The rest of the file is checked by pyarrow's CSV reader (``check_utf8``); any doubt falls
    back to :func:`decode` of the whole file.
    """
    if len(data) <= _HEAD_BYTES or b"\x00" in data[:65536]:
        return None
    enc, body = ("utf-8-sig", data[3:]) if data.startswith(b"\xef\xbb\xbf") else ("utf-8", data)
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    head = body[:_HEAD_BYTES]
    for cut in range(4):  # a multi-byte character may straddle the cut
        try:
            return head[: len(head) - cut].decode("utf-8"), enc
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:
                return None  # invalid well before the cut: not UTF-8
    return None


def read_csv_bytes(data: bytes, contract: Contract) -> RawTable:
    # Large UTF-8 files: decode only the head (header detection) and let pyarrow parse and check
    # the bytes. Decoding the whole file into a str only to throw it away cost about a second
    # and twice the file's size in memory per 400 MB (bench/, BENCHMARKS.md).
    head = _utf8_head(data)
    if head is not None and head[0].strip():
        try:
            return read_csv_text(head[0], contract, encoding=head[1], raw=data, fast_only=True)
        except _NeedText:
            pass
    text, encoding = decode(data)
    if not text[:65536].strip() and not text.strip():
        raise IngestError("文件为空（没有表头和数据）", code="empty")
    return read_csv_text(text, contract, encoding=encoding, raw=data)


def _head_records(text: str, delim: str, limit: int) -> list[tuple[int, int, list[str]]]:
    """(start offset, end offset, cells) of the first ``limit`` CSV records (quotes respected)."""
    lines = re.findall(r"[^\n]*\n|[^\n]+$", text[: 1 << 18])
    pos = [0]

    def feed():
        for line in lines:
            pos[0] += len(line)
            yield line

    out = []
    reader = csv.reader(feed(), delimiter=delim)
    start = 0
    try:
        for cells in reader:
            out.append((start, pos[0], cells))
            start = pos[0]
            if len(out) >= limit:
                break
    except csv.Error:
        pass
    return out


def read_csv_text(text: str, contract: Contract, *, encoding: str = "utf-8", raw: bytes | None = None,
                  fast_only: bool = False) -> RawTable:
    """``fast_only``: ``text`` is only the decoded head of ``raw``; raise :class:`_NeedText`
    instead of taking any path that needs the whole text."""
    hmap = contract.header_map()
    best = (0, 0, ",", None)  # score, record index, delimiter, record
    for d in DELIMITERS:
        if d not in text[: 1 << 16] and len(contract.fields) > 1:
            continue
        for i, rec in enumerate(_head_records(text, d, HEADER_SEARCH_ROWS)):
            score = header_score(rec[2], hmap)
            if score > best[0]:
                best = (score, i, d, rec)
    score, idx, delim, rec = best
    if score == 0:
        if fast_only:
            raise _NeedText
        raise missing_header_error(contract)
    _, end, headers = rec
    header_row = idx + 1  # records before it are title rows
    table = None
    if raw is not None and encoding in ("utf-8", "utf-8-sig"):  # checks and parse on the bytes, no copy
        buf, start = raw, len(text[:end].encode("utf-8")) + (3 if encoding == "utf-8-sig" else 0)
    else:
        buf, start = text[end:].encode("utf-8"), 0
    stop = len(buf)
    _check_quotes(buf, start, text[:end].count("\n"), delim, len(headers))
    buf_has_quote = buf.find(b'"', start) >= 0
    if len(headers) > 1:
        # Blank lines count in row numbers. Instead of searching the whole file for them (two
        # passes over the bytes, then the slow tolerant path), pyarrow is told not to skip empty
        # lines: it reads a blank line as a record of empty cells, so every later row keeps its
        # number, and map_to_contract drops the all-empty record, as the tolerant path does.
        # Trailing line ends are cut off first (no record there).
        blank_lines = False
        while stop > start and buf[stop - 1] in (10, 13):
            stop -= 1
    else:  # one column: an empty line is a valid 1-cell record, so look for blank lines
        blank_lines = (buf.find(b"\n\n", start) >= 0 or buf.find(b"\n\r\n", start) >= 0) and re.compile(
            rb"\n\r?\n(?=[^\r\n])").search(buf, start)
    if buf.find(b"\x00", start) < 0 and not blank_lines and buf[start:start + 2] not in (b"\n", b"\r\n") \
            and buf[start:start + 1] != b"\n":
        table = _pyarrow_csv(pa.py_buffer(buf).slice(start, stop - start), headers, delim,
                             buf.find(b'"', start) >= 0, ignore_empty_lines=len(headers) <= 1)
    del buf
    if table is None and fast_only:
        raise _NeedText
    if table is None:
        columns, row_no = _python_csv(text[end:], headers, delim, header_row)
    else:
        columns, row_no = table
        row_no = pc.add(row_no, header_row).cast(pa.int64())
    if buf_has_quote:
        _check_swallowed(columns, row_no, delim, len(headers))
    headers = headers + [f"第{j + 1}列" for j in range(len(headers), len(columns))]
    return RawTable(headers, columns, row_no, "csv", encoding=encoding, delimiter=delim, header_row=header_row)


def _check_quotes(buf: bytes, start: int, lines_before: int, delim: str, width: int) -> None:
    """Refuse an unclosed quote, naming its line, instead of letting it swallow the rows after it.

    Quotes in a valid CSV come in pairs (an escaped quote is written twice), so an odd count
    after the header means one opened and never closed: the line where the running count last
    turned odd is where it opened. An even count can still hide a stray quote closed by another
    one further down; that case is caught after parsing (:func:`_check_swallowed`)."""
    if buf.count(b'"', start) % 2 == 0:
        return
    line_no, odd_since, parity, pos = lines_before, None, 0, start
    while pos < len(buf):
        nl = buf.find(b"\n", pos)
        end = len(buf) if nl < 0 else nl + 1
        line_no += 1
        n = buf.count(b'"', pos, end)
        if n % 2:
            parity ^= 1
            if parity:
                odd_since = line_no
        pos = end
    raise IngestError(f"CSV 第{odd_since}行的引号（\"）没有闭合，其后的行会被并入同一单元格，整个文件未接收；"
                      "请删除或补全该行多余的引号后重新报送", code="quote")


def _check_swallowed(columns: list[pa.Array], row_no: pa.Array, delim: str, width: int) -> None:
    """A cell holding a line break followed by what looks like a whole record (at least as many
    delimiters as the header has columns minus one) is rows swallowed by a stray quote."""
    if width < 3:
        return
    for col in columns:
        if col.null_count == len(col) or not pc.any(pc.match_substring(col, "\n")).as_py():
            continue
        for i, cell in enumerate(col.to_pylist()):
            if cell and "\n" in cell and any(line.count(delim) >= width - 1 for line in cell.split("\n")[1:]):
                raise IngestError(f"CSV 第{row_no[i].as_py()}行有引号未正确闭合，其后多行被并入一个单元格，整个文件未接收；"
                                  "请检查该行的引号（\"）后重新报送", code="quote")


def _pyarrow_csv(data: pa.Buffer, headers: list[str], delim: str, quoted: bool, ignore_empty_lines: bool = True):
    """Fast path: pyarrow's CSV reader, all columns as strings. None when the file is irregular."""
    import pyarrow.csv as pacsv

    names = [f"c{i}" for i in range(len(headers))]
    tbl = None
    for block in (_CSV_BLOCK, _CSV_BLOCK_MAX):
        try:
            tbl = pacsv.read_csv(
                pa.BufferReader(data),
                read_options=pacsv.ReadOptions(column_names=names, block_size=block, use_threads=True),
                parse_options=pacsv.ParseOptions(delimiter=delim, newlines_in_values=quoted,
                                                    ignore_empty_lines=ignore_empty_lines),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            break
        except (pa.ArrowInvalid, pa.ArrowException) as exc:
            if "straddl" not in str(exc) and "block" not in str(exc).lower():
                return None  # ragged rows, bad UTF-8, ...: the tolerant path decides
    if tbl is None:
        return None
    n = tbl.num_rows
    columns = [tbl.column(i).combine_chunks() for i in range(tbl.num_columns)]
    return columns, pa.array(np.arange(1, n + 1, dtype=np.int64))


def _python_csv(body: str, headers: list[str], delim: str, header_row: int):
    """Tolerant path: the csv module; ragged rows padded or extended, blank lines counted."""
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, MAX_FILE_BYTES))
    try:
        reader = csv.reader(io.StringIO(body, newline=""), delimiter=delim)
        width = len(headers)
        cols: list[list[str | None]] = [[] for _ in range(width)]
        row_no: list[int] = []
        rec = header_row
        for record in reader:
            rec += 1
            if not record:
                continue
            if len(record) > width:
                for _ in range(len(record) - width):
                    cols.append([None] * len(row_no))
                width = len(record)
            for j in range(width):
                cols[j].append(record[j] if j < len(record) else None)
            row_no.append(rec)
    except csv.Error as exc:
        raise IngestError(f"CSV 格式错误，无法解析（{exc}）", code="corrupt") from None
    finally:
        csv.field_size_limit(limit)
    return [pa.array(c, type=pa.string()) for c in cols], pa.array(row_no, type=pa.int64())


# ---------------------------------------------------------------------------------------------
# XLSX


def check_zip(data: bytes) -> None:
    """Refuse zip bombs before openpyxl inflates anything."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise IngestError("Excel 文件已损坏或不完整（可能传输中断），无法打开，请重新导出后报送", code="corrupt") from None
    total = sum(i.file_size for i in infos)
    if total > MAX_XLSX_UNCOMPRESSED:
        raise IngestError(
            f"Excel 文件解压后过大（约 {total // (1024 * 1024)} MB，上限 {MAX_XLSX_UNCOMPRESSED // (1024 * 1024)} MB），"
            "出于安全原因拒收；请拆分文件或改用 CSV 报送",
            code="zipbomb",
        )
    for i in infos:
        if i.file_size > XLSX_RATIO_MIN_BYTES and i.file_size > MAX_XLSX_RATIO * max(i.compress_size, 1):
            raise IngestError(
                f"Excel 文件压缩比异常（{i.file_size // max(i.compress_size, 1)} 倍），疑似压缩炸弹，出于安全原因拒收",
                code="zipbomb",
            )


def _cell_text(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e16:
            return str(int(v))
        return repr(v)
    if isinstance(v, datetime):
        if v.time() == time(0):
            return v.date().isoformat()
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, time):
        return v.isoformat()
    return str(v)


def read_xlsx_bytes(data: bytes, contract: Contract) -> RawTable:
    check_zip(data)
    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many kinds for a broken package
        raise IngestError(f"Excel 文件已损坏或格式不正确，无法读取（{type(exc).__name__}）", code="corrupt") from None
    try:
        return _read_workbook(wb, contract)
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(f"Excel 文件已损坏或格式不正确，无法读取（{type(exc).__name__}）", code="corrupt") from None
    finally:
        wb.close()


def _sheet_order(wb, contract: Contract) -> list:
    sheets = list(wb.worksheets)
    wanted = {normalise_header(contract.title), contract.feed}
    named = [ws for ws in sheets if any(w in normalise_header(ws.title) for w in wanted)]
    return named + [ws for ws in sheets if ws not in named]


def _probe(ws, hmap: dict[str, str]) -> tuple[int, int, list[tuple], bool, bool]:
    """(header score, header index, head rows, any cell at all, any data row after the header)."""
    try:
        ws.reset_dimensions()
    except AttributeError:
        pass
    head: list[tuple] = []
    best = (0, -1)
    any_cell = has_rows = False
    for i, row in enumerate(ws.iter_rows(min_row=1, values_only=True)):
        filled = any(c is not None and str(c).strip() for c in row)
        any_cell = any_cell or filled
        if i < HEADER_SEARCH_ROWS:
            head.append(row)
            sc = header_score(list(row), hmap)
            if sc > best[0]:
                best = (sc, i)
        elif best[0] == 0 or filled or i > HEADER_SEARCH_ROWS + 1000:
            has_rows = has_rows or filled
            break
        if best[0] and i > best[1] and filled:
            has_rows = True
            if i + 1 >= HEADER_SEARCH_ROWS:
                break
    return best[0], best[1], head, any_cell, has_rows


def _read_workbook(wb, contract: Contract) -> RawTable:
    """The one visible sheet with a recognisable header. Hidden sheets are never read (a hidden
    sheet is how clerks park voided or draft rows); two visible sheets with data rows reject the
    workbook naming them (reading one would silently drop the other); visible sheets with
    content but no header, and hidden sheets with data, are named in the manifest notes."""
    hmap = contract.header_map()
    data_sheets, header_only, other, hidden = [], [], [], []
    for ws in _sheet_order(wb, contract):
        score, hidx, head, any_cell, has_rows = _probe(ws, hmap)
        if getattr(ws, "sheet_state", "visible") != "visible":
            if score and has_rows:
                hidden.append(ws.title)
            continue
        if score and has_rows:
            data_sheets.append((ws, hidx, head))
        elif score:
            header_only.append((ws, hidx, head))
        elif any_cell:
            other.append(ws.title)
    if len(data_sheets) > 1:
        names = "、".join(f"“{ws.title}”" for ws, _, _ in data_sheets)
        raise IngestError(f"工作簿中有 {len(data_sheets)} 个工作表含有数据（{names}），无法确定报送哪一个，整个文件未接收；"
                          "请每个文件只保留一个数据工作表（或分成多个文件）后重新报送", code="sheets")
    chosen = data_sheets or header_only[:1]
    if not chosen:
        if hidden:
            raise IngestError(f"数据只在隐藏的工作表（{'、'.join(hidden)}）中；隐藏的工作表不予读取，整个文件未接收。"
                              "请取消隐藏或把数据放到可见工作表后重新报送", code="sheets")
        raise missing_header_error(contract)
    ws, hidx, head = chosen[0]
    table = _read_sheet(ws, hidx, head)
    if hidden:
        table.notes.append(f"隐藏的工作表未读取：{'、'.join(hidden)}")
    if other:
        table.notes.append(f"无可识别表头的工作表未读取：{'、'.join(other)}")
    return table


_XLSX_FLUSH_ROWS = 20_000


def _read_sheet(ws, hidx: int, head: list[tuple]) -> RawTable:
    """Stream the sheet's rows into Arrow string arrays, flushing every ``_XLSX_FLUSH_ROWS`` rows:
    Python strings cost ~60 bytes each on top of their text, so a large sheet kept as lists of
    str would peak at several times the Arrow size (bench/memory.py)."""
    rows = ws.iter_rows(min_row=len(head) + 1, values_only=True)
    headers = [_cell_text(c) or "" for c in head[hidx]]
    width = len(headers)
    done: list[list[pa.Array]] = [[] for _ in range(width)]  # flushed chunks per column
    cols: list[list[str | None]] = [[] for _ in range(width)]  # rows since the last flush
    flushed = 0
    row_no: list[int] = []

    def flush() -> None:
        nonlocal flushed
        for j in range(width):
            done[j].append(pa.array(cols[j], type=pa.string()))
            cols[j] = []
        flushed = len(row_no)

    def add(rno: int, row: tuple) -> None:
        nonlocal width
        if len(row) > width:
            for _ in range(len(row) - width):
                done.append([pa.nulls(flushed, pa.string())] if flushed else [])
                cols.append([None] * (len(row_no) - flushed))
            width = len(row)
        for j in range(width):
            cols[j].append(_cell_text(row[j]) if j < len(row) else None)
        row_no.append(rno)
        if len(row_no) - flushed >= _XLSX_FLUSH_ROWS:
            flush()

    for i in range(hidx + 1, len(head)):
        add(i + 1, head[i])
    r = len(head)
    for row in rows:
        r += 1
        add(r, row)
    flush()
    while len(headers) < width:
        headers.append("")
    headers = [h if h else f"第{j + 1}列" for j, h in enumerate(headers)]
    return RawTable(
        headers,
        [pa.concat_arrays(chunks) if len(chunks) > 1 else chunks[0] for chunks in done],
        pa.array(row_no, type=pa.int64()),
        "xlsx",
        sheet=ws.title,
        header_row=hidx + 1,
    )


# ---------------------------------------------------------------------------------------------
# JSON records (HTTP)


def _json_text(v: object) -> str | None:
    import json

    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)
    return json.dumps(v, ensure_ascii=False)


class RecordColumns:
    """JSON records → columns of raw text, built in batches so a delivery of any size is held as
    Arrow strings (its text plus a few bytes per cell) instead of Python dicts and str objects
    (~10× the text): HTTP pages are fed record by record from the streaming parser.

    Columns are the keys in order of first appearance (a key first met later is null in earlier
    rows); rows are numbered 1..n across the delivery. The first record that is not an object is
    remembered and reported by :meth:`finish` (the delivery's pages are landed before it is judged).
    """

    BATCH = 20_000

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}
        self.done: list[list[pa.Array]] = []  # flushed chunks per column
        self.cols: list[list[str | None]] = []  # rows since the last flush
        self.rows = 0
        self.flushed = 0
        self.error: IngestError | None = None

    def add(self, rec: object) -> None:
        if self.error is not None:
            return
        self.rows += 1
        if not isinstance(rec, dict):
            self.error = IngestError(f"接口返回的第{self.rows}条记录不是对象（JSON object），整批未接收", code="json")
            return
        pending = self.rows - 1 - self.flushed
        for k in rec:
            k = str(k)
            if k not in self.keys:
                self.keys[k] = len(self.cols)
                self.done.append([pa.nulls(self.flushed, pa.string())] if self.flushed else [])
                self.cols.append([None] * pending)
        got = {str(k): v for k, v in rec.items()} if any(not isinstance(k, str) for k in rec) else rec
        for k, j in self.keys.items():
            self.cols[j].append(_json_text(got.get(k)))
        if self.rows - self.flushed >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        for j in range(len(self.cols)):
            self.done[j].append(pa.array(self.cols[j], type=pa.string()))
            self.cols[j] = []
        self.flushed = self.rows

    def finish(self, contract: Contract) -> RawTable:
        if self.error is not None:
            raise self.error
        self._flush()
        headers = list(self.keys)
        columns = [pa.concat_arrays(c) if len(c) > 1 else (c[0] if c else pa.array([], pa.string()))
                   for c in self.done]
        if self.rows and header_score(headers, contract.header_map()) == 0:
            raise missing_header_error(contract)
        return RawTable(headers, columns, pa.array(np.arange(1, self.rows + 1, dtype=np.int64)), "json", encoding="utf-8")


def records_table(records: list, contract: Contract) -> RawTable:
    """JSON records (objects keyed by Chinese label or code) → RawTable; rows numbered 1..n."""
    cols = RecordColumns()
    for rec in records:
        cols.add(rec)
        if cols.error is not None:
            break
    return cols.finish(contract)


def _check_text_bytes(data: bytes) -> bytes:
    """A text delivery (CSV / JSON): NUL bytes anywhere are refused with their line (a NUL is never
    text, and would otherwise end up inside a cell); old-Mac CR-only line ends become LF."""
    if not data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text is full of NUL bytes
        pos = data.find(b"\x00")
        if pos >= 0:
            line = data.count(b"\n", 0, pos) + 1 if b"\n" in data else data.count(b"\r", 0, pos) + 1
            raise IngestError(f"文件第{line}行含有空字符（NUL），内容不是文本表格（可能是文件损坏或扩展名错误），整个文件未接收；"
                              "请重新导出为 CSV（UTF-8）后报送", code="binary")
        if b"\n" not in data and b"\r" in data:
            data = data.replace(b"\r", b"\n")
    return data


def format_limit(head: bytes, name: str) -> tuple[str, str, int]:
    """(format, its Chinese label, its size limit) from a file's first bytes and its name."""
    if head[:4] == b"PK\x03\x04" or head[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" \
            or Path(name).suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        fmt = "xlsx"
    else:
        fmt = "json" if Path(name).suffix.lower() == ".json" else "csv"
    limits = {"csv": ("CSV", MAX_CSV_BYTES), "xlsx": ("Excel", MAX_XLSX_BYTES), "json": ("JSON", MAX_JSON_BYTES)}
    return (fmt, *limits[fmt])


def check_size(head: bytes, name: str, size: int) -> None:
    """Refuse a file over its format's limit, saying both sizes (MB) and what to do."""
    fmt, label, limit = format_limit(head, name)
    if size > limit:
        mb = 1024 * 1024
        raise IngestError(f"文件过大（{size / mb:.1f} MB，{label} 文件上限 {limit // mb} MB），整个文件未接收；"
                          "请按日期或区域拆分成多个文件后重新报送", code="size")


def check_rows(rows: int, where: str = "文件", whole: str = "整个文件",
               advice: str = "请按日期或区域拆分成多个文件后重新报送") -> None:
    """Refuse more than :data:`MAX_ROWS` data rows in one file (or one HTTP page)."""
    if rows > MAX_ROWS:
        raise IngestError(f"{where}行数过多（{rows} 行，上限 {MAX_ROWS} 行），{whole}未接收；{advice}", code="size")


def read_bytes(data: bytes, name: str, contract: Contract) -> RawTable:
    """Any delivered file (CSV / XLSX / JSON list) → RawTable."""
    check_size(data[:8], name, len(data))
    blank = b" \t\r\n\xef\xbb\xbf"
    if not data[:65536].strip(blank) and not data.strip(blank):
        raise IngestError("文件为空（没有表头和数据）", code="empty")
    fmt = sniff_format(data, name)
    if fmt == "xlsx":
        return read_xlsx_bytes(data, contract)
    data = _check_text_bytes(data)
    if fmt == "json":
        import json

        try:
            payload = json.loads(decode(data)[0])
        except ValueError as exc:
            raise IngestError(f"JSON 文件无法解析（{exc}）", code="json") from None
        if isinstance(payload, dict) and isinstance(payload.get("data"), list):
            payload = payload["data"]
        if not isinstance(payload, list):
            raise IngestError("JSON 文件应为记录列表（[...] 或 {\"data\": [...]}）", code="json")
        return records_table(payload, contract)
    return read_csv_bytes(data, contract)
