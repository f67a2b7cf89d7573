"""One county × received day through the province mode: inbox → lake records, then figures.

Two steps, each reading what it needs from the inbox or the lake (so that Dagster may run them
in different worker processes, no IO manager in between):

- :func:`load_partition`: read and validate the county's batches of the day
  (``pushes.read_county_day``) and replace the partition of every ``records_<feed>`` table and
  of ``quarantine`` (one snapshot per table).
- :func:`measure_partition`: read that partition back from the lake, compute the county's
  figures (``measure.county_metrics``) and replace its partition of ``county_metrics_daily``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Mapping

import pandas as pd
import pyarrow as pa

from assets.province import lake as lk
from assets.province.measure import METRICS_SCHEMA, county_metrics
from assets.province.pushes import WITHDRAW_RULE, CountyDay, FeedFrames, quarantine_frame, read_county_day
from contracts.config import Settings
from contracts.model import Contract


@dataclass
class LoadSummary:
    county: str
    day: date
    rows_in: int
    loaded: int
    quarantined: int
    batches: int
    per_feed: dict[str, dict[str, int]] = field(default_factory=dict)
    snapshots: dict[str, int] = field(default_factory=dict)


def _lake(settings: Settings) -> lk.Lake:
    if settings.province is None or settings.province.lake is None:
        raise lk.LakeConfigError("设置文件缺少 province.lake（数据湖位置）/ settings have no province.lake")
    return settings.province.lake


def _frame_to_arrow(df: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    cols = []
    for f in schema:
        if f.name in df.columns and len(df):
            values = df[f.name].astype(object).where(df[f.name].notna(), None).tolist()
            cols.append(pa.array(values, type=f.type))
        else:
            cols.append(pa.nulls(len(df), f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def typed_records(contract: Contract, df: pd.DataFrame) -> pa.Table:
    """The loaded rows with the county warehouse's column types (``feed_tables.typed_expr``, the
    county's own conversion). Validation has passed every typed value, so a value the conversion
    loses is a defect: it stops the run loudly instead of landing as NULL."""
    import duckdb

    from warehouse.feed_tables import q, typed_expr

    text = _frame_to_arrow(df, lk.records_schema(contract, typed=False))
    schema = lk.records_schema(contract)
    available = set(text.column_names)
    cols = [f"{typed_expr(f, available)} AS {q(f.name)}" for f in contract.fields]
    cols += [q(name) for name in schema.names[len(contract.fields):]]
    con = duckdb.connect(":memory:")
    try:
        con.register("_rows", text)
        typed = con.sql(f"SELECT {', '.join(cols)} FROM _rows").to_arrow_table().cast(schema)
    finally:
        con.close()
    for f in contract.fields:
        if f.type in ("string", "code"):
            continue
        lost = text.column(f.name).null_count != typed.column(f.name).null_count
        if lost:
            raise ValueError(f"{contract.feed}.{f.name}（{f.label}）有值无法转换为 {f.type} 类型，已停止入湖"
                             f" / values of {contract.feed}.{f.name} do not convert to {f.type}")
    return typed


def catalog_for(settings: Settings, env: Mapping[str, str] | None = None):
    acc = lk.access(_lake(settings), env)
    lk.ensure_bucket(acc)
    return acc, lk.open_catalog(acc)


def load_partition(data_dir: str | Path, county: str, day: date | str, contracts: Mapping[str, Contract],
                   settings: Settings, env: Mapping[str, str] | None = None) -> LoadSummary:
    day = date.fromisoformat(str(day)[:10])
    lake = _lake(settings)
    cd: CountyDay = read_county_day(data_dir, county, day, contracts)
    _, catalog = catalog_for(settings, env)
    summary = LoadSummary(county, day, cd.rows_in, cd.loaded, cd.quarantined, len(cd.batches))
    feeds = sorted(set(lk.lake_feeds(contracts)) | set(cd.feeds))
    for feed in feeds:
        schema = lk.records_schema(contracts[feed])
        lk.ensure_table(catalog, lake, lk.records_table(feed), schema, ("county_code", "received_day"))
        frames = cd.feeds.get(feed)
        data = typed_records(contracts[feed], frames.loaded if frames else pd.DataFrame())
        summary.snapshots[lk.records_table(feed)] = lk.replace_partition(
            catalog, lake, lk.records_table(feed), data, county, day, "received_day")
        if frames:
            summary.per_feed[feed] = {"rows_in": frames.rows_in, "loaded": len(frames.loaded),
                                      "quarantined": len(frames.quarantined)}
    lk.ensure_table(catalog, lake, lk.QUARANTINE, lk.QUARANTINE_SCHEMA, ("county_code", "received_day"))
    summary.snapshots[lk.QUARANTINE] = lk.replace_partition(
        catalog, lake, lk.QUARANTINE, _frame_to_arrow(quarantine_frame(cd), lk.QUARANTINE_SCHEMA), county, day,
        "received_day")
    return summary


def measure_partition(county: str, day: date | str, contracts: Mapping[str, Contract], settings: Settings,
                      env: Mapping[str, str] | None = None) -> pa.Table:
    """Figures of the partition as the lake holds it now; written to ``county_metrics_daily``."""
    day = date.fromisoformat(str(day)[:10])
    lake = _lake(settings)
    _, catalog = catalog_for(settings, env)
    cd = CountyDay(county, day, stray=pd.DataFrame())
    quarantine = lk.read_partition(catalog, lake, lk.QUARANTINE, county, day, "received_day")
    qdf = quarantine.to_pandas() if quarantine is not None else pd.DataFrame(columns=lk.QUARANTINE_SCHEMA.names)
    for feed in sorted(set(lk.lake_feeds(contracts)) | set(qdf["feed"].dropna().unique())):
        if feed not in contracts:
            continue
        rows = lk.read_partition(catalog, lake, lk.records_table(feed), county, day, "received_day")
        loaded = rows.to_pandas() if rows is not None else pd.DataFrame(columns=["action"])
        q = qdf[(qdf["feed"] == feed) & (qdf["rule_ids"] != WITHDRAW_RULE)].reset_index(drop=True)
        if len(loaded) or len(q):
            cd.feeds[feed] = FeedFrames(feed, loaded, q, len(loaded) + len(q))
    name = settings.province.county_name(county) if settings.province else county
    figures = county_metrics(cd, dict(contracts), name)
    lk.ensure_table(catalog, lake, lk.METRICS, METRICS_SCHEMA, ("county_code", "day"))
    lk.replace_partition(catalog, lake, lk.METRICS, figures, county, day, "day")
    return figures


def lake_partition_rows(county: str, day: date | str, contracts: Mapping[str, Contract], settings: Settings,
                        env: Mapping[str, str] | None = None, *, upserts_only: bool = False) -> int:
    """Rows the lake holds for a county × day (records tables + quarantine), read back with
    pyiceberg. ``upserts_only``: the rows the figures count as received (records, not
    withdrawals; quarantined rows of known feeds that are not withdrawals)."""
    day = date.fromisoformat(str(day)[:10])
    lake = _lake(settings)
    _, catalog = catalog_for(settings, env)
    n = 0
    for feed in lk.lake_feeds(contracts):
        rows = lk.read_partition(catalog, lake, lk.records_table(feed), county, day, "received_day")
        if rows is not None:
            n += sum(a == "upsert" for a in rows.column("action").to_pylist()) if upserts_only else len(rows)
    q = lk.read_partition(catalog, lake, lk.QUARANTINE, county, day, "received_day")
    if q is not None:
        if upserts_only:
            n += sum(f in contracts and r != WITHDRAW_RULE
                     for f, r in zip(q.column("feed").to_pylist(), q.column("rule_ids").to_pylist()))
        else:
            n += len(q)
    return n
