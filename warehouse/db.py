"""The DuckDB database: one file, one writer at a time.

DuckDB allows a single writing process per file, so every asset that writes goes through
``connect`` and carries the ``duckdb_writer`` concurrency pool (limit 1 in ``dagster.yaml``).
Schema lives in ``warehouse/sql/*.sql`` (idempotent ``CREATE ... IF NOT EXISTS``), applied in
file-name order on every connect, so a new data dir needs no migration step.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from warehouse.layout import DataDir

SQL_DIR = Path(__file__).resolve().parent / "sql"


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
            apply_schema(con)
        yield con
    finally:
        con.close()
