"""Dagster resource giving assets the data directory, the catalog and the DuckDB file.

Assets never build paths or open DuckDB themselves: they ask this resource, so tests and the
demo point a whole run at another data directory by configuring one value.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from typing import Optional

import dagster as dg
import duckdb

from contracts import Contract, Registry
from contracts.loader import current_contracts, current_registry
from warehouse.db import connect
from warehouse.layout import DataDir


class WarehouseResource(dg.ConfigurableResource):
    """The data directory (landing zone, staging, DuckDB warehouse, reports) and the catalog."""

    data_dir: str = "./data"
    contracts_dir: Optional[str] = None  # default: the catalog shipped in contracts/

    @property
    def layout(self) -> DataDir:
        return DataDir(self.data_dir)

    def contracts(self) -> dict[str, Contract]:
        # parsed once per process, re-read when a contract file changes (contracts.loader)
        return current_contracts(self.contracts_dir)

    def registry(self) -> Registry:
        return current_registry(self.contracts_dir)

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(self.layout, read_only=read_only) as con:
            yield con
