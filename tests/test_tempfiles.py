"""Crash leftovers: a dead writer's temporary files go, a live writer's stay, the inbox is never touched."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from warehouse.layout import DataDir
from warehouse.tempfiles import clean_stale_temp_files


def test_only_dead_writers_leftovers_are_removed(tmp_path):
    dd = DataDir(tmp_path / "data")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = dd.staging / "permits" / "received_date=2026-10-05"
    folder.mkdir(parents=True)
    gone = folder / f".abc.parquet.{dead.pid}-x1y2.tmp"
    gone_load = dd.warehouse / "parquet" / f".part.parquet.{dead.pid}.tmp"
    live = folder / f".def.parquet.{os.getpid()}-z9.tmp"
    old = dd.reports / "old.tmp"
    fresh = dd.reports / "fresh.tmp"
    inbox = dd.inbox / "scjgj" / "permits" / f".upload.csv.{dead.pid}-q.tmp"
    for p in (gone, gone_load, live, old, fresh, inbox):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    past = time.time() - 7200
    os.utime(old, (past, past))
    spill = dd.warehouse / "credit.duckdb.tmp"
    spill.mkdir(parents=True)
    (spill / "duckdb_temp_block-1.block").write_bytes(b"x")

    removed = clean_stale_temp_files(dd)
    assert sorted(removed) == sorted([gone.relative_to(dd.root).as_posix(), gone_load.relative_to(dd.root).as_posix(),
                                      "reports/old.tmp", "warehouse/credit.duckdb.tmp/"])
    assert live.exists() and fresh.exists() and inbox.exists()
    assert not gone.exists() and not gone_load.exists() and not old.exists() and not spill.exists()
