"""The DuckDB database: one file, one writer at a time.

DuckDB allows a single writing process per file, so every asset that writes goes through
``connect`` and carries the ``duckdb_writer`` concurrency pool (limit 1 in ``dagster.yaml``).
Schema lives in ``warehouse/sql/*.sql`` (idempotent ``CREATE ... IF NOT EXISTS``), applied in
file-name order on every connect, so a new data dir needs no migration step.

Every writing connection is capped at ``$CREDIT_ETL_DUCKDB_MEMORY_LIMIT`` (default 320 MB; empty =
DuckDB's own default, 80% of RAM) and runs with ``preserve_insertion_order = false``: the big
statements (versions insert, current recompute, sorted Parquet COPY, measure's joins) then spill
to DuckDB's temporary directory instead of growing with the warehouse, and stream without
keeping an order nobody relies on (order always comes from ORDER BY or the version order).
Measured in a 10M-row backfill: peak 6.49 GiB without the cap, 1.53 GiB with a 1 GB cap (BENCHMARKS.md).
The default is 320 MB since issue 12: the night's process holds ~630 MiB of Python (Dagster,
Great Expectations, pandas, Arrow) when it loads, and the load of one CSV at its size limit
(48 MiB, 141,000 rows) then peaked at 1,056 MiB for the whole process with 1 GB, 913 MiB with
320 MB (bench/memory.py --tree). A large backfill on a machine with memory to spare may set
``CREDIT_ETL_DUCKDB_MEMORY_LIMIT=1GB`` to spill less.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import logging
import os
import re
import time

import duckdb

from warehouse.faults import fault_point
from warehouse.layout import DataDir

MEMORY_LIMIT_ENV = "CREDIT_ETL_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "320MB"

SQL_DIR = Path(__file__).resolve().parent / "sql"


def limit_memory(con: duckdb.DuckDBPyConnection) -> None:
    """The memory cap and ``preserve_insertion_order = false`` (see the module docstring)."""
    limit = os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT)
    if limit:
        con.execute("SET memory_limit = '" + limit.replace("'", "''") + "'")
    con.execute("SET preserve_insertion_order = false")


def apply_schema(con: duckdb.DuckDBPyConnection) -> None:
    for path in sorted(SQL_DIR.glob("*.sql")):
        con.execute(path.read_text(encoding="utf-8"))


log = logging.getLogger(__name__)
WAIT_ENV = "CREDIT_ETL_DB_WAIT_SECONDS"
DEFAULT_WAIT_SECONDS = 600.0


class WarehouseBusy(Exception):
    """The DuckDB file stayed locked by another process past the wait; ``message_zh`` says by whom."""

    def __init__(self, message_zh: str):
        self.message_zh = message_zh
        super().__init__(message_zh)


def _open(path: Path, read_only: bool, wait: float | None) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting while another process holds it.

    DuckDB lets one process write, or several read, never both at once: an export during a
    night, or a night started while someone reads, meets a lock. Each step of a night holds the
    file only while it works, so waiting (polling, at most ``$CREDIT_ETL_DB_WAIT_SECONDS``,
    default 600 s) lets readers slip in between the night's steps and the night resume after
    them; neither side fails. Past the wait: :class:`WarehouseBusy` in Chinese, never the raw
    ``IOException``."""
    if wait is None:
        try:
            wait = float(os.environ.get(WAIT_ENV) or DEFAULT_WAIT_SECONDS)
        except ValueError:
            wait = DEFAULT_WAIT_SECONDS
    deadline = time.monotonic() + wait
    pause = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            text = str(exc)
            if "lock" not in text.lower():
                raise
            m = re.search(r"PID (\d+)", text)
            who = f"进程 {m.group(1)}" if m else "另一进程"
            doing = "读取" if read_only else "写入"
            if pause == 0.05:  # once per wait: whoever watches the run sees why it pauses
                log.warning("仓库数据库 %s 正被%s 占用，等待其结束后%s（最多 %g 秒）", path, who, doing, wait)
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"仓库数据库 {path} 正被{who} 占用，等待 {wait:g} 秒后仍无法{doing}；"
                    f"请待其结束后重试（可用环境变量 {WAIT_ENV} 调整等待时间）"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


class WarehouseMissing(FileNotFoundError):
    """The data directory has no warehouse (a wrong ``--data-dir``, or no night run yet);
    ``message_zh`` names the directory and what to do. The CLI prints it and exits 2."""

    def __init__(self, data_dir: DataDir):
        self.data_dir = data_dir
        root = data_dir.root.resolve()
        self.message_zh = (
            f"仓库数据库不存在：数据目录 {root} 中没有 {data_dir.db_path.relative_to(data_dir.root)}。"
            f"请用 --data-dir 指定本单位的数据目录（或设置环境变量 CREDIT_ETL_DATA_DIR），"
            f"或先运行一晚归集（credit-etl run --date YYYY-MM-DD，或 credit-etl demo） / "
            f"no warehouse in data directory {root}: pass --data-dir, or run a night first"
        )
        super().__init__(self.message_zh)


def require_warehouse(data_dir: DataDir) -> None:
    """Raise :class:`WarehouseMissing` unless the data directory has its warehouse file."""
    if not data_dir.db_path.is_file():
        raise WarehouseMissing(data_dir)


@contextmanager
def connect(data_dir: DataDir, *, read_only: bool = False, wait: float | None = None,
            create: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse. A writing connection creates the file and applies the
    schema; ``read_only`` or ``create=False`` (a command that reads, or writes into a warehouse
    a night made) never creates anything: without the file it raises :class:`WarehouseMissing`."""
    if read_only or not create:
        require_warehouse(data_dir)
    data_dir.warehouse.mkdir(parents=True, exist_ok=True)
    con = _open(data_dir.db_path, read_only, wait)
    try:
        if not read_only:
            limit_memory(con)
            apply_schema(con)
            fault_point("db-open")
        yield con
        if not read_only:
            fault_point("db-close")
    finally:
        con.close()
