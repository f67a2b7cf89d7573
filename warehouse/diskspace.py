"""A full disk, said plainly: which data directory, how much is free, how much a night needs.

A night checks the free space of the data directory's file system before it starts
(:func:`check_free_space`): it needs at least ``$CREDIT_ETL_MIN_FREE_MB`` (default 200 MB) and
four times the size of the day's inbox files (landing copy, staged and validated Parquet, the
DuckDB WAL). When the disk fills up anyway in the middle of a step, :func:`explain_disk_full`
turns the errors that mean it (ENOSPC, DuckDB's and SQLite's "disk is full"/"disk I/O error")
into the same Chinese message instead of a traceback. Every file is written atomically, so the
interrupted night leaves no half files and the next night, once space is freed, simply works.
"""

from __future__ import annotations

import errno
import os
import shutil
from datetime import date
from pathlib import Path

from warehouse.layout import DataDir

MIN_FREE_ENV = "CREDIT_ETL_MIN_FREE_MB"
DEFAULT_MIN_FREE_MB = 200
INBOX_FACTOR = 4
_MARKERS = ("no space left", "disk is full", "disk i/o error", "database or disk is full", "could not write", "enospc")


class DiskFull(Exception):
    def __init__(self, message_zh: str):
        self.message_zh = message_zh
        super().__init__(message_zh)


def _mb(n: float) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


def free_bytes(path: Path) -> int:
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def needed_bytes(layout: DataDir, day: date | None) -> int:
    try:
        floor = int(float(os.environ.get(MIN_FREE_ENV) or DEFAULT_MIN_FREE_MB) * 1024 * 1024)
    except ValueError:
        floor = DEFAULT_MIN_FREE_MB * 1024 * 1024
    inbox = 0
    if day is not None and layout.inbox.is_dir():
        for p in layout.inbox.glob(f"*/*/{day.isoformat()}/*"):
            try:
                if p.is_file() and not p.is_symlink():
                    inbox += p.stat().st_size
            except OSError:
                pass
    return max(floor, INBOX_FACTOR * inbox)


def message(layout_root: Path, free: int | None, need: int | None) -> str:
    root = Path(layout_root).resolve()
    free = free_bytes(root) if free is None else free
    text = f"磁盘空间不足：数据目录 {root} 所在磁盘仅剩 {_mb(free)}"
    if need:
        text += f"，本次夜间归集约需 {_mb(need)}（至少 ${MIN_FREE_ENV} 兆字节，且不少于当日报送文件的 {INBOX_FACTOR} 倍）"
    return text + "。本次已停止，已写入的文件均完整（写入是原子的）；请清理或扩容磁盘后重新运行，下一次运行会自动补齐。"


def check_free_space(layout: DataDir, day: date | None) -> None:
    need = needed_bytes(layout, day)
    free = free_bytes(layout.root)
    if free < need:
        raise DiskFull(message(layout.root, free, need))


def is_disk_full(exc: BaseException | str) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return any(m in text for m in _MARKERS)


def explain_disk_full(exc: BaseException, data_dir: Path, day: date | None = None) -> str | None:
    """The Chinese message when ``exc`` (or its cause chain) means a full disk; else None."""
    seen = 0
    while exc is not None and seen < 10:
        if is_disk_full(exc):
            return message(data_dir, None, needed_bytes(DataDir(data_dir), day))
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
