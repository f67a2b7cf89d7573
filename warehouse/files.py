"""Atomic file writes: a reader (or a crash) never sees half a file.

Every file the pipeline writes goes through :func:`atomic_path` (or :func:`write_bytes`,
:func:`write_parquet`): a temporary file beside the target, renamed over it on success, removed on
any failure. The temporary file comes from ``tempfile.mkstemp``, so it is created 0600; each
writer says what the final file becomes with ``private``, a required keyword, so a new writer
cannot leave the choice to chance:

- ``private=False``, what people open: the indicator export, templates, feedback workbooks, share
  files, the cross-check report, the dashboard and bulletin, Data Docs and GE's stored results,
  the province's league export and page. Personal fields in them are masked
  (``warehouse.masking``), and colleagues on a shared server must be able to read them, so the
  final file gets the mode a plain ``open()`` would give it: ``0666 & ~umask`` (0644 under umask
  022; an office that wants them closed sets a stricter umask).
- ``private=True``, what holds personal data unmasked, byte for byte: received files in the landing
  zone, staged and validated Parquet, the province receiver's inbox of counties' pushes (full
  identifiers), the sample generator's department deliveries and truth tables. They stay 0600,
  readable only by the account that runs the pipeline. (The DuckDB file and the load stage's
  Parquet under ``warehouse/`` are written by DuckDB and the load stage with the umask; the
  deployment protects that folder, docs/deployment.md.)
"""

from __future__ import annotations

import io
import re
import os
import tempfile
import zipfile
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import xlsxwriter
    from openpyxl import Workbook

from warehouse.faults import fault_point

XLSX_TIME = datetime(2000, 1, 1)  # document times written into every workbook we produce


@contextmanager
def scratch_path(target: str | Path) -> Iterator[Path]:
    """Yield a new temporary file beside ``target``; it is removed on exit unless moved away."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name lets the next run tell a crashed writer's leftover from a
    # live writer's file (warehouse.tempfiles.clean_stale_temp_files)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``);
    elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: str | Path, *, private: bool) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` only on success.

    ``private``: keep the file 0600 (unmasked personal data), else give it ``0666 & ~umask``
    before the rename (see the module docstring for which files are which)."""
    with scratch_path(target) as tmp_path:
        yield tmp_path
        if not private:
            os.chmod(tmp_path, 0o666 & ~current_umask())
        fault_point(f"before-rename {Path(target).name}")
        os.replace(tmp_path, target)
        fault_point(f"after-rename {Path(target).name}")


def write_parquet(table: pa.Table, target: str | Path, *, private: bool) -> Path:
    """Write ``table`` to ``target`` atomically, with stable settings so reruns give equal bytes."""
    with atomic_path(target, private=private) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
    return Path(target)


def write_bytes(data: bytes, target: str | Path, *, private: bool) -> Path:
    with atomic_path(target, private=private) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def workbook_bytes(wb: "Workbook") -> bytes:
    """Serialise a workbook reproducibly: fixed document times and fixed ZIP entry times.

    openpyxl's ``save`` stamps the current time into docProps/core.xml and every ZIP entry, so
    two saves of the same content differ; templates, feedback workbooks, exports and sample
    feeds must not. ``ExcelWriter`` is called directly because ``save`` overwrites ``modified``.
    """
    from openpyxl.writer.excel import ExcelWriter

    wb.properties.created = XLSX_TIME
    wb.properties.modified = XLSX_TIME
    wb.properties.creator = "credit-etl"
    wb.properties.lastModifiedBy = "credit-etl"
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).save()
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()


def xlsxwriter_bytes(build: "Callable[[xlsxwriter.Workbook], None]", *, constant_memory: bool = False) -> bytes:
    """Build a workbook with XlsxWriter and return its bytes, reproducibly.

    XlsxWriter streams rows to the file (``constant_memory``: one row in memory at a time), several
    times faster than openpyxl for the large workbooks (feedback of a million-row night); it writes
    fixed ZIP entry dates, and the document's created time is fixed here, so a rerun gives the same
    bytes. Strings are never turned into formulas, numbers or links behind the caller's back.
    """
    import xlsxwriter

    raw = io.BytesIO()
    wb = xlsxwriter.Workbook(raw, {
        "constant_memory": constant_memory,
        "strings_to_formulas": False,
        "strings_to_numbers": False,
        "strings_to_urls": False,
    })
    wb.set_properties({"created": XLSX_TIME, "author": "credit-etl"})
    build(wb)
    wb.close()
    return raw.getvalue()


def text_width(text: str) -> int:
    """Display width in spreadsheet column units: CJK and full-width characters count two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(text))


# -- vectorised sheet rows ---------------------------------------------------------------------
# Per-cell Python (openpyxl or XlsxWriter) costs 5-30 µs a cell: the feedback of a million-row
# night (86,000 rejected rows × 38 columns) took about a minute. The data rows of such sheets are
# built as SpreadsheetML with pyarrow string kernels instead (a few kernels per column) and put
# into the workbook XlsxWriter wrote (styles, widths, print setup, header row).

_XML_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))
_XML_BAD_CHARS = "[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]"


def column_letter(index: int) -> str:
    """0-based column index → Excel letters (0 → A, 26 → AA)."""
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def xml_text(values: "pa.Array") -> "pa.Array":
    """Strings escaped for SpreadsheetML text (characters XML 1.0 forbids become U+FFFD)."""
    import pyarrow.compute as pc

    out = values
    for a, b in _XML_ESCAPES:
        out = pc.replace_substring(out, a, b)
    if pc.all(pc.fill_null(pc.utf8_is_printable(out), True)).as_py():  # no control character at all
        return out
    return pc.replace_substring_regex(out, _XML_BAD_CHARS, "\ufffd")


def string_cells(values: "pa.Array", letter: str, rows: "pa.Array", style: "pa.Array | int | None" = None,
                 blank_style: "pa.Array | None" = None) -> "pa.Array":
    """One ``<c>`` element per row for a text column (``""`` for a null value).

    ``rows``: 1-based row numbers as strings; ``style``: an xf index per row (or one for all);
    ``blank_style``: xf index for rows whose value is null but whose cell must still be styled
    (e.g. a required value that is missing, filled red), null where the cell stays absent.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(values)
    values = values.cast(pa.string())
    ref = pc.binary_join_element_wise(f'<c r="{letter}', rows.cast(pa.string()), '"', "")
    if style is None:
        s_attr = pa.repeat(pa.scalar("", pa.string()), n)
    elif isinstance(style, int):
        s_attr = pa.repeat(pa.scalar(f' s="{style}"', pa.string()), n)
    else:
        s_attr = pc.fill_null(pc.binary_join_element_wise(' s="', style.cast(pa.string()), '"', ""), "")
    preserve = pc.fill_null(pc.not_equal(values, pc.utf8_trim_whitespace(values)), False)
    t_open = pc.if_else(preserve, '<t xml:space="preserve">', "<t>").cast(pa.string())
    cell = pc.binary_join_element_wise(ref, s_attr, ' t="inlineStr"><is>', t_open, xml_text(values), "</t></is></c>", "")
    if blank_style is not None:
        blank = pc.binary_join_element_wise(ref, ' s="', blank_style.cast(pa.string()), '"/>', "")
        cell = pc.coalesce(cell, blank)
    return pc.fill_null(cell, "")


def number_cells(values: "pa.Array", letter: str, rows: "pa.Array", style: int | None = None) -> "pa.Array":
    """One ``<c>`` element per row for a numeric column (``""`` for a null value)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    s_attr = f' s="{style}"' if style is not None else ""
    cell = pc.binary_join_element_wise(f'<c r="{letter}', rows.cast(pa.string()), f'"{s_attr}><v>',
                                       values.cast(pa.string()), "</v></c>", "")
    return pc.fill_null(cell, "")


def rows_xml(cells: "list[pa.Array]", rows: "pa.Array", heights: "pa.Array | None" = None) -> bytes:
    """``<row>`` elements joining the given cell columns (from :func:`string_cells` etc.)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(rows) == 0:
        return b""
    r = rows.cast(pa.string())
    if heights is None:
        head = pc.binary_join_element_wise('<row r="', r, '">', "")
    else:
        head = pc.binary_join_element_wise('<row r="', r, '" ht="', heights.cast(pa.string()),
                                           '" customHeight="1">', "")
    whole = pc.binary_join_element_wise(head, *cells, "</row>", "")
    if isinstance(whole, pa.ChunkedArray):
        whole = whole.combine_chunks()
    offsets = whole.buffers()[1]
    import numpy as np

    off = np.frombuffer(offsets, dtype=np.int32)[whole.offset: whole.offset + len(whole) + 1]
    return whole.buffers()[2].to_pybytes()[off[0]: off[-1]]


def fill_sheet_rows(xlsx: bytes, rows_by_sheet: dict[int, bytes], last_cells: dict[int, str]) -> bytes:
    """Append pre-built ``<row>`` XML to the sheetData of sheets (1-based, in creation order) of an
    XlsxWriter workbook; ``last_cells`` gives each sheet's new bottom-right cell (dimension). ZIP
    entries keep XlsxWriter's fixed dates, so the result is as reproducible as the input."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            level = 6
            for no, extra in rows_by_sheet.items():
                if info.filename == f"xl/worksheets/sheet{no}.xml" and extra:
                    head, sep, tail = data.partition(b"</sheetData>")
                    if not sep:  # XlsxWriter writes <sheetData/> for a sheet without cells
                        head, sep, tail = data.partition(b"<sheetData/>")
                        head += b"<sheetData>"
                    head = re.sub(rb'<dimension ref="[^"]*"/>', f'<dimension ref="A1:{last_cells[no]}"/>'.encode(), head, count=1)
                    data = head + extra + b"</sheetData>" + tail
                    level = 1  # large sheets: fast deflate (the XML compresses ~10x either way)
            entry = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = info.external_attr
            dst.writestr(entry, data, compresslevel=level)
    return out.getvalue()
