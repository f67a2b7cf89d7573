"""The province lake with real components: PostgreSQL catalog, moto S3 on 127.0.0.1, pyiceberg,
DuckDB views over pyarrow datasets; county batches built by the real push code."""

from __future__ import annotations

import json
import random
from datetime import date

import duckdb
import pytest

from assets.province import lake as lk
from assets.province.partition import catalog_for, load_partition, measure_partition
from conftest import county_push, deliver, valid_penalty, valid_permit

DAY = date(2026, 10, 12)


def _snapshots(catalog, name):
    return len(catalog.load_table(("credit", name)).history())


def _push_two(tmp_path, shipped):
    rng = random.Random(7)
    a = county_push(tmp_path, shipped, "500237", DAY,
                    penalties=[valid_penalty(rng, "罚A1", date(2026, 10, 9), 2), valid_penalty(rng, "罚A2", date(2026, 9, 10), 3)],
                    permits=[valid_permit(rng, "许A1", date(2026, 10, 9), 2)])
    b = county_push(tmp_path, shipped, "500238", DAY,
                    penalties=[valid_penalty(rng, "罚B1", date(2026, 10, 10), 2)])
    prov = tmp_path / "province"
    deliver(prov, a)
    deliver(prov, b)
    return prov, a, b


def test_two_counties_land_and_read_back_through_duckdb_and_pyiceberg(tmp_path, shipped, lake_env, province_settings):
    contracts, _ = shipped
    prov, a, b = _push_two(tmp_path, shipped)
    sa = load_partition(prov, "500237", DAY, contracts, province_settings)
    sb = load_partition(prov, "500238", DAY, contracts, province_settings)
    assert (sa.rows_in, sa.loaded, sa.quarantined) == (3, 3, 0)
    assert (sb.rows_in, sb.loaded, sb.quarantined) == (1, 1, 0)
    fa = measure_partition("500237", DAY, contracts, province_settings).to_pylist()
    assert {(r["feed"], r["received_rows"], r["timed_records"], r["on_time_records"]) for r in fa} == {
        ("penalties", 2, 2, 1), ("permits", 1, 1, 1)}
    measure_partition("500238", DAY, contracts, province_settings)
    con = duckdb.connect()
    views = lk.register_lake(con, province_settings)
    assert {"records_penalties", "current_penalties", "quarantine", "county_metrics_daily"} <= set(views)
    rows = con.execute("SELECT county_code, county_name, feed, received_rows, loaded_rows, on_time_records, late_records "
                       "FROM county_metrics_daily ORDER BY ALL").fetchall()
    assert rows == [("500237", "巫山县", "penalties", 2, 2, 1, 1), ("500237", "巫山县", "permits", 1, 1, 1, 0),
                    ("500238", "巫溪县", "penalties", 1, 1, 1, 0)]
    _, catalog = catalog_for(province_settings)
    via_iceberg = catalog.load_table(("credit", "county_metrics_daily")).scan().to_arrow()
    assert sorted((r["county_code"], r["feed"], r["received_rows"], r["on_time_records"], r["late_records"])
                  for r in via_iceberg.to_pylist()) == sorted((r[0], r[2], r[3], r[5], r[6]) for r in rows)
