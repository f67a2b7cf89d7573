"""Value normalisation from raw text cells to the staged-rows form (see ARCHITECTURE.md).

Column functions work on pyarrow string arrays. Per-value Python runs only over the distinct
values of low-cardinality columns (dates, enums; via dictionary encoding) or over the few values
that need a change (codes with full-width characters, amounts with separators or units), so a
million-row column costs a handful of vectorised kernels.

Dates: every format of REFERENCE §2 becomes ``YYYY-MM-DD``:
``YYYY-MM-DD``, ``YYYY/MM/DD``, ``YYYY.MM.DD`` (one- or two-digit month and day), ``YYYYMMDD``,
``YYYY年M月D日``, each optionally followed by a time of day (``2026-03-05 00:00:00``, as left by
database and spreadsheet exports), full-width digits, and Excel serial numbers. Serial numbers are
recognised when the integer part has five digits (10000..99999 = 1927-05-18..2173-10-14; an
optional fraction is a time of day and dropped) or is 0 or 1 (Excel's zero day and 1900-01-01,
which validation rejects as sentinels); other bare numbers such as ``2026`` are left as received,
because reading a year as a serial would invent a plausible wrong date. A value that matches a
format but is not a real day (``2026-02-30``) or matches none is left exactly as received (after
trimming) so validation can report it. Sentinels (``1900-01-01``) are converted like any date.

Amounts: a decimal field with a contract ``unit`` (元/万元/亿元) converts a value explicitly
marked with another unit to its own ("5000元" in 罚款金额（万元） → ``0.5``; "0.5万元" in
欠费金额（元） → ``5000``) and the mapping stage notes the original text for a warning; a bare
number is taken to be in the field's unit; a unit mark on a field without ``unit`` is left as
received for validation to report (never silently stripped).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from contracts.model import UNIT_FACTORS, Contract, Field, to_halfwidth

# ---------------------------------------------------------------------------------------------
# scalar helpers

_EXCEL_EPOCH = date(1899, 12, 30)
_TIME_SUFFIX = r"(?:[ T]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_DATE_SEP = re.compile(r"^(\d{4})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{1,2})" + _TIME_SUFFIX + r"$")
_DATE_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})" + _TIME_SUFFIX + r"$")
_DATE_CN = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?" + _TIME_SUFFIX + r"$")
_SERIAL = re.compile(r"^(\d{5}|0|1)(?:\.\d+)?$")


def excel_serial_to_date(serial: float) -> date:
    """Excel (1900 system) serial number to the date Excel displays.

    Excel treats 1900 as a leap year; for serials below 61 the day it displays is one later
    than the 1899-12-30 epoch gives (serial 1 shows as 1900-01-01).
    """
    n = int(serial)
    if n < 61:
        return date(1899, 12, 31) + timedelta(days=n)
    return _EXCEL_EPOCH + timedelta(days=n)


def _ymd(y: str, m: str, d: str) -> str | None:
    try:
        return date(int(y), int(m), int(d)).isoformat()
    except ValueError:
        return None


def normalise_date(value: str | None) -> str | None:
    """One date cell to ``YYYY-MM-DD`` or, when not recognisable as a real day, unchanged."""
    if value is None:
        return None
    text = to_halfwidth(value).strip()
    if not text:
        return None
    for rx in (_DATE_SEP, _DATE_COMPACT, _DATE_CN):
        m = rx.match(text)
        if m:
            groups = m.groups()
            y, mo, d = (groups[0], groups[2], groups[3]) if rx is _DATE_SEP else groups[:3]
            return _ymd(y, mo, d) or value
    m = _SERIAL.match(text)
    if m:
        return excel_serial_to_date(float(text)).isoformat()
    return value


_AMOUNT_UNIT = re.compile(r"\s*(亿元|万元|元)$")
_UNIT_MARKED = r"(亿元|万元|元)\s*$"
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")


def _plain(d: Decimal) -> str:
    """A Decimal as plain text without exponent or trailing zeros (5E+3 -> 5000, 0.50 -> 0.5)."""
    text = format(d.normalize(), "f")
    return text if text != "-0" else "0"


def normalise_number(value: str | None, unit: str | None = None) -> str | None:
    """Amount/count cell: full-width digits and thousands separators removed.

    With ``unit`` (the field's amount unit, e.g. 万元) a trailing 元/万元/亿元 is removed and a value
    marked with a *different* unit is converted to the field's unit ("5000元" in a 万元 field ->
    "0.5"); the caller records a warning for converted cells. A bare number is taken to be in the
    field's unit (an ambiguous number stays as is). Without ``unit`` a unit mark is left in place,
    so validation reports the cell rather than guessing its scale. Anything that still is not a
    plain number is returned (trimmed) for validation to report.
    """
    if value is None:
        return None
    text = to_halfwidth(value).strip().replace("，", ",").replace("。", ".")
    marked = None
    if unit is not None:
        m = _AMOUNT_UNIT.search(text)
        if m:
            marked = m.group(1)
            text = text[: m.start()].strip()
    compact = text.replace(" ", "")
    if _THOUSANDS.match(compact):
        compact = compact.replace(",", "")
    if not compact:
        return None
    if marked and marked != unit:
        try:
            n = Decimal(compact)
        except InvalidOperation:
            return value.strip()  # e.g. "约5000元": not a number, reported as received
        if not n.is_finite():
            return value.strip()
        return _plain(n * UNIT_FACTORS[marked] / UNIT_FACTORS[unit])
    return compact


def converted_units(arr: pa.Array, field: Field) -> pa.Array | None:
    """Original text of the cells whose explicit unit differs from the field's (they are
    converted by :func:`normalise_number`); None when there are none. Input: cleaned text."""
    if field.unit is None or len(arr) == 0 or arr.null_count == len(arr):
        return None
    marked = pc.fill_null(pc.match_substring_regex(arr, _UNIT_MARKED), False)
    if not pc.any(marked).as_py():
        return None
    own = pc.fill_null(pc.match_substring_regex(arr, r"(?:^|[^万亿])" + re.escape(field.unit) + r"\s*$"), False)
    if field.unit == "元":
        own = pc.and_(own, pc.invert(pc.match_substring_regex(arr, r"(万|亿)元\s*$")))
    differs = pc.and_(marked, pc.invert(own))
    if not pc.any(differs).as_py():
        return None
    return pc.if_else(differs, arr, pa.scalar(None, pa.string()))


_MULTI_SPLIT = re.compile(r"[；，,、;]")


def make_enum_normaliser(field: Field) -> Callable[[str | None], str | None]:
    """Enum cell: aliases mapped to canonical values; multi-value separators unified to ``;``."""
    aliases: dict[str, str] = {}
    for alias, target in field.all_enum_aliases.items():
        aliases[alias] = target
        aliases.setdefault(to_halfwidth(alias).strip(), target)
        aliases.setdefault(to_halfwidth(alias).strip().casefold(), target)
    canon = {to_halfwidth(v).casefold(): v for v in field.enum or []}

    def one(part: str) -> str:
        part = part.strip()
        if part in aliases:
            return aliases[part]
        half = to_halfwidth(part).strip()
        key = half.casefold()
        if half in aliases:
            return aliases[half]
        if key in aliases:
            return aliases[key]
        if key in canon:
            return canon[key]
        return part

    if field.multi_value_separator:
        def multi(value: str | None) -> str | None:
            if value is None:
                return None
            # a value named twice (2016's "暂扣或者吊销许可证、暂扣或者吊销执照" maps both halves
            # to one category) is kept once, in first-seen order
            parts = list(dict.fromkeys(one(p) for p in _MULTI_SPLIT.split(value) if p.strip()))
            return ";".join(parts) if parts else None

        return multi
    return lambda value: None if value is None else one(value)


# ---------------------------------------------------------------------------------------------
# column helpers


def _map_distinct(arr: pa.ChunkedArray | pa.Array, fn: Callable[[str | None], str | None]) -> pa.Array:
    """Apply ``fn`` to each distinct value (for low-cardinality columns)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    enc = pc.dictionary_encode(arr)
    mapped = pa.array([fn(v) for v in enc.dictionary.to_pylist()], type=pa.string())
    return pc.take(mapped, enc.indices)


def _map_where(arr: pa.Array, mask: pa.Array, fn: Callable[[str | None], str | None]) -> pa.Array:
    """Apply ``fn`` to the values where ``mask`` is true; others unchanged."""
    mask = pc.fill_null(mask, False)
    if not pc.any(mask).as_py():
        return arr
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    changed = _map_distinct(pc.filter(arr, mask), fn)
    return pc.replace_with_mask(arr, mask, changed)


_WIDE = "[\u3000\uff01-\uff5e]"


def _all_ascii(arr: pa.Array) -> bool:
    """True when every value is ASCII (nulls ignored); one cheap pass, no regex."""
    return bool(pc.all(pc.string_is_ascii(arr)).as_py() is not False)


def clean_text(arr: pa.Array) -> pa.Array:
    """Trim whitespace (including ideographic space and BOM); empty → null."""
    arr = pc.utf8_trim(arr, characters=" \t\r\n\u3000\u00a0\ufeff\u200b\x0b\x0c")
    empty = pc.equal(arr, "")
    if not pc.any(empty).as_py():  # nothing to null: skip the copy of the column
        return arr
    return pc.if_else(empty, pa.scalar(None, pa.string()), arr)


def normalise_column(arr: pa.Array, field: Field) -> pa.Array:
    """Cleaned text column (after :func:`clean_text`) → normalised per the field's type."""
    if len(arr) == 0 or arr.null_count == len(arr):
        return arr
    if field.enum:
        out = _map_distinct(arr, make_enum_normaliser(field))
        if field.type == "code":
            out = pc.utf8_upper(out)
        return out
    if field.type == "date":
        return _map_distinct(arr, normalise_date)
    if field.type in ("decimal", "integer"):
        need = pc.match_substring_regex(arr, r"[^0-9.+\-]")
        return _map_where(arr, need, lambda v, u=field.unit: normalise_number(v, u))
    if field.type == "code":
        # Full-width characters are never ASCII: an all-ASCII column (most code columns) skips
        # the regex, and its upper-casing is the ASCII one (same result, ~10x cheaper).
        if _all_ascii(arr):
            return pc.ascii_upper(arr)
        need = pc.match_substring_regex(arr, _WIDE)
        arr = _map_where(arr, need, lambda v: None if v is None else (to_halfwidth(v).strip() or None))
        return pc.utf8_upper(arr)
    return arr


def normaliser_for(contract: Contract) -> dict[str, Field]:
    return {f.name: f for f in contract.fields}
