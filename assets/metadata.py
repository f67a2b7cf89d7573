"""Metadata every stage attaches to its materialisations, so the Dagster UI explains a night.

Row counts go under ``dagster/row_count`` and column lists under ``dagster/column_schema``,
the keys the UI understands. Each feed has its own assets (``assets/feeds.py``), and rates and
per-department figures are separate numeric entries (``合规率``, ``合规率/<部门代码>`` …), never JSON
blobs, so the UI plots each of them over the partitions.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import dagster as dg

from contracts import Contract

_DUCK_TYPES = {"string": "VARCHAR", "code": "VARCHAR", "date": "DATE", "decimal": "DECIMAL(18,4)", "integer": "BIGINT"}


def contract_schema(contracts: Iterable[Contract]) -> dg.TableSchema:
    """The union of the contracts' fields, as the UI's column schema (feed names the columns)."""
    cols = []
    for c in contracts:
        for f in c.fields:
            cols.append(dg.TableColumn(name=f"{c.feed}.{f.name}", type=_DUCK_TYPES[f.type], description=f.label))
    return dg.TableSchema(columns=cols)


def counts_metadata(total: int, by: Mapping[str, Mapping[str, int]] | None = None, **extra) -> dict:
    meta: dict = {"dagster/row_count": dg.MetadataValue.int(int(total))}
    for key, value in (by or {}).items():
        meta[key] = dg.MetadataValue.json({k: int(v) for k, v in value.items()})
    for key, value in extra.items():
        meta[key] = value
    return meta
