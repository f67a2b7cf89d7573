"""Nights build on the nights before them (record statuses, the red/black cross-check, share
changes). A night run after its successor, or rerun with other rows, leaves the successors stale:
the run says which, and running them again in order clears it."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from contracts import load_contracts
from pipelines.nightly import run_night, stale_later_nights
from pipelines.samples.feeds import generate
from warehouse.layout import DataDir

D1 = date(2026, 9, 21)
D2, D3 = D1 + timedelta(days=1), D1 + timedelta(days=2)


def test_a_night_run_after_its_successor_names_the_stale_nights(tmp_path):
    root = tmp_path / "data"
    generate(root, start=D1, days=3, rows_per_day=5, seed=3)
    layout, instance = DataDir(root), dg.DagsterInstance.ephemeral()

    def night(day):
        r = run_night(root, day, instance=instance, http_enabled=False)
        assert r.success, r.describe()
        return r

    assert night(D1).stale_later == [] and night(D3).stale_later == []
    late = night(D2)  # as after a crash of D2 and the next night run before the rerun
    assert late.stale_later == [D3]
    assert f"更晚的归集日（{D3.isoformat()}）已经运行" in late.describe() and "请按日期顺序重新运行" in late.describe()
    assert night(D3).stale_later == []
    assert stale_later_nights(layout, D1, load_contracts()) == []  # all in line again
    assert night(D1).stale_later == []  # a rerun with the same rows changes nothing later
