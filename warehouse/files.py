"""Atomic file writes: a reader (or a crash) never sees half a file."""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from openpyxl import Workbook

from warehouse.faults import fault_point

XLSX_TIME = datetime(2000, 1, 1)  # document times written into every workbook we produce


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name lets the next run tell a crashed writer's leftover from a
    # live writer's file (warehouse.tempfiles.clean_stale_temp_files)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        fault_point(f"before-rename {target.name}")
        os.replace(tmp_path, target)
        fault_point(f"after-rename {target.name}")
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_parquet(table: pa.Table, target: str | Path) -> Path:
    """Write ``table`` to ``target`` atomically, with stable settings so reruns give equal bytes."""
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
    return Path(target)


def write_bytes(data: bytes, target: str | Path) -> Path:
    with atomic_path(target) as tmp:
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
