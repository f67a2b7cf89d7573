"""The whole nightly job, run in its own process (``python -m bench.job``) as ``credit-etl run`` runs it.

For every received day, in order, it calls ``pipelines.nightly.run_night`` — the very function
behind ``credit-etl run`` and the demo: the ``nightly_collection`` Dagster job, every asset and
check (ingest, validate, load, measure, feedback workbooks, Data Docs), in process, on the
persistent instance in ``DATA_DIR/dagster_home`` — with one instance for all the days, as the demo
does. HTTP is off: the benchmark's data set holds the HTTP departments' deliveries as inbox files.

Per day it records the run's own step statistics from the Dagster event log (start and end of
each asset's step: what the UI shows), the wall and CPU seconds of the night, rows received /
loaded / quarantined per feed (read back from ``metrics_daily`` like ``credit-etl run`` prints
them), and the checks that failed. The whole process's CPU seconds (imports included: what a
``credit-etl run`` costs) are in ``process_cpu_seconds``. Peak RSS of the process tree is sampled
by the parent (``bench.run``), so it is not measured here.

Usage: ``python -m bench.job DATA_DIR OUT.json DAY [DAY ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import date
from pathlib import Path

_T_START = time.perf_counter()


def _cpu(proc) -> float:
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def _recount(root: Path, day: date, contracts) -> dict[str, dict[str, int]]:
    """Rows of the day per feed, counted on disk and in DuckDB (not taken from the job's own
    summaries): staged, passed and quarantined Parquet rows, and versions loaded for the day."""
    from assets.validate.assets import recount
    from warehouse.db import connect
    from warehouse.feed_tables import versions_table
    from warehouse.layout import DataDir

    layout = DataDir(root)
    out = {}
    with connect(layout, read_only=True) as con:
        for feed in contracts:
            c = recount(layout, feed, day)
            if not any(c.values()):
                continue
            c["loaded"] = con.execute(
                f'SELECT count(*) FROM "{versions_table(feed)}" WHERE _received_date = ?', [day]).fetchone()[0]
            out[feed] = c
    return out


def run(data_dir: str | Path, days: list[date]) -> dict:
    import psutil

    proc = psutil.Process()
    # what `credit-etl run` imports before it starts the job
    from pipelines.nightly import run_night
    from pipelines.instance import get_instance

    import_s = time.perf_counter() - _T_START
    root = Path(data_dir).resolve()
    per_day = []
    step_totals: dict[str, float] = {}
    instance = get_instance(root)
    from contracts import load_contracts

    contracts = load_contracts()
    try:
        for day in days:
            cpu0, t0 = _cpu(proc), time.perf_counter()
            result = run_night(root, day, instance=instance, http_enabled=False)
            wall, cpu = time.perf_counter() - t0, _cpu(proc) - cpu0
            steps = {}
            for s in instance.get_run_step_stats(result.run_id):
                if s.start_time is not None and s.end_time is not None:
                    steps[s.step_key] = round(s.end_time - s.start_time, 3)
            for k, v in steps.items():
                step_totals[k] = step_totals.get(k, 0.0) + v
            by_feed = _recount(root, day, contracts)
            for feed, c in result.by_feed.items():  # what `credit-etl run` prints (records feeds)
                by_feed.setdefault(feed, {}).update(metrics_received=c["received"], metrics_loaded=c["loaded"])
            rows_in = sum(c.get("staged", 0) for c in by_feed.values())
            loaded = sum(c.get("loaded", 0) for c in by_feed.values())
            quarantined = sum(c.get("quarantined", 0) for c in by_feed.values())
            d = {
                "day": day.isoformat(), "run_id": result.run_id, "success": result.success,
                "failed_checks": result.failed_checks, "wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
                "steps_seconds": steps, "rows_in": rows_in, "loaded": loaded, "quarantined": quarantined,
                "by_feed": by_feed, "rss_after_bytes": proc.memory_info().rss,
                "conserved": all(c.get("staged", 0) == c.get("loaded", 0) + c.get("quarantined", 0)
                                 and c.get("metrics_received", c.get("staged", 0)) == c.get("staged", 0)
                                 for c in by_feed.values()),
            }
            per_day.append(d)
            print(f"[job] {day}: {rows_in} rows  {wall:.2f}s wall  {cpu:.2f}s cpu  "
                  + "  ".join(f"{k} {v:.2f}" for k, v in steps.items())
                  + ("" if result.success and not result.failed_checks else f"  FAILED {result.failed_checks}"),
                  flush=True)
    finally:
        instance.dispose()
    totals = {k: sum(d[k] for d in per_day) for k in ("rows_in", "loaded", "quarantined")}
    wall = sum(d["wall_seconds"] for d in per_day)
    ru_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    ru_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {
        "steps_seconds": {k: round(v, 3) for k, v in step_totals.items()},
        "total_seconds": round(wall, 3),  # the nights' wall time (the job's runs), imports excluded
        "cpu_seconds": round(sum(d["cpu_seconds"] for d in per_day), 3),
        "import_seconds": round(import_s, 3),
        "process_seconds": round(time.perf_counter() - _T_START, 3),
        "process_cpu_seconds": round(_cpu(proc), 3),  # whole process, imports included
        **totals,
        "success": all(d["success"] and not d["failed_checks"] for d in per_day),
        "conserved": all(d["conserved"] for d in per_day) and totals["rows_in"] == totals["loaded"] + totals["quarantined"],
        "rows_per_second": round(totals["rows_in"] / wall, 1) if wall else None,
        "peak_rss_self_bytes": ru_self,
        "peak_rss_children_bytes": ru_children,
        "per_day": per_day,
        "pid": os.getpid(),
    }


def partitions_reach(days: list[date], environ=os.environ) -> None:
    """Let the daily partitions start at the benchmark's first day (``$CREDIT_ETL_FIRST_DAY``)
    when they would start later. Why: unset, they start on the first day of the previous month
    (China Standard Time), so the month scenario's October nights were unknown partitions from
    1 December on. An earlier setting is kept. Before ``assets.partitions`` is imported."""
    first = min(days).isoformat()
    current = (environ.get("CREDIT_ETL_FIRST_DAY") or "").strip()
    if not current or current > first:
        environ["CREDIT_ETL_FIRST_DAY"] = first


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.job")
    p.add_argument("data_dir")
    p.add_argument("out")
    p.add_argument("days", nargs="+", type=date.fromisoformat)
    a = p.parse_args(argv)
    partitions_reach(a.days)
    res = run(a.data_dir, a.days)
    Path(a.out).write_text(json.dumps(res, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
