"""The DuckDB database: one file, one writer at a time.

DuckDB allows a single writing process per file, so every asset that writes goes through
``connect`` and carries the ``duckdb_writer`` concurrency pool (limit 1 in ``dagster.yaml``).
Schema lives in ``warehouse/sql/*.sql`` (idempotent ``CREATE ... IF NOT EXISTS``), applied in
file-name order on every connect, so a new data dir needs no migration step.

Every writing connection is capped at ``$CREDIT_ETL_DUCKDB_MEMORY_LIMIT`` (default 1 GB; empty =
DuckDB's own default, 80% of RAM) and runs with ``preserve_insertion_order = false``: the big
statements (versions insert, current recompute, sorted Parquet COPY, measure's joins) then spill
to DuckDB's temporary directory instead of growing with the warehouse, and stream without
keeping an order nobody relies on (order always comes from ORDER BY or the version order).
Measured in a 10M-row backfill: peak 6.49 GiB without the cap, 1.53 GiB with it (BENCHMARKS.md).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import os

import duckdb

from warehouse.faults import fault_point
from warehouse.layout import DataDir

MEMORY_LIMIT_ENV = "CREDIT_ETL_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "1GB"

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


@contextmanager
def connect(data_dir: DataDir, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    data_dir.warehouse.mkdir(parents=True, exist_ok=True)
    if read_only and not data_dir.db_path.exists():
        raise FileNotFoundError(f"仓库数据库不存在：{data_dir.db_path}（请先运行 credit-etl run 或 demo）")
    con = duckdb.connect(str(data_dir.db_path), read_only=read_only)
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
