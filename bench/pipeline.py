"""The pipeline side of the benchmark, run in its own process (``python -m bench.pipeline``).

For every received day, in order, it calls the same plain stage functions the Dagster assets
call (``received_rows`` → ``ingest_day``, ``validated_rows`` → ``validate_day``,
``warehouse_records`` → ``load_day``, ``daily_metrics`` → ``measure_day``), HTTP off, and
records wall time per stage, rows, and memory: the process's peak resident set size
(``ru_maxrss``, never decreases) and its current RSS after each day (psutil), so a backfill
shows whether the peak follows the largest day or the warehouse's size.

Usage: ``python -m bench.pipeline DATA_DIR OUT.json DAY [DAY ...] [--profile PROF]``.
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


def _maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def _cpu(proc) -> float:
    t = proc.cpu_times()
    return t.user + t.system


class _Sampler:
    """Highest RSS seen (every 20 ms, psutil) since the last :meth:`reset`: per-stage peaks,
    which ``ru_maxrss`` (one high-water mark per process) cannot give."""

    def __init__(self, proc):
        import threading

        self.proc, self.peak, self._stop = proc, 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except Exception:  # noqa: BLE001 - sampling must never break the run
                pass

    def reset(self) -> int:
        peak = max(self.peak, self.proc.memory_info().rss)
        self.peak = 0
        return peak

    def stop(self) -> None:
        self._stop.set()
        self._t.join()


def run(data_dir: str | Path, days: list[date], profile: str | None = None) -> dict:
    t_import = time.perf_counter()
    import psutil

    from assets.ingest import HttpSettings, ingest_day
    from assets.load import load_day
    from assets.measure import measure_day
    from assets.validate import validate_day
    from contracts import load_contracts, load_registry
    from warehouse.layout import DataDir

    contracts = load_contracts()
    registry = load_registry(contracts=contracts)
    dd = DataDir(data_dir)
    proc = psutil.Process()
    import_s = time.perf_counter() - t_import
    stages = {"ingest": 0.0, "validate": 0.0, "load": 0.0, "measure": 0.0}
    per_day = []
    totals = {"rows_in": 0, "staged": 0, "passed": 0, "quarantined_validate": 0, "loaded": 0,
              "quarantined": 0, "rejected_files": 0, "files": 0}
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
    sampler = _Sampler(proc)
    stage_peaks = {k: 0 for k in stages}
    stage_cpu = {k: 0.0 for k in stages}  # CPU seconds of all the process's threads (DuckDB's included)
    for day in days:
        d: dict = {"day": day.isoformat()}
        cpu0 = proc.cpu_times()
        if prof:
            prof.enable()
        peaks = {}
        cpus = [_cpu(proc)]
        sampler.reset()
        t0 = time.perf_counter()
        ing = ingest_day(dd, day, contracts, registry, http=HttpSettings(enabled=False))
        t1 = time.perf_counter()
        cpus.append(_cpu(proc))
        peaks["ingest"] = sampler.reset()
        val = validate_day(dd, day, contracts)
        t2 = time.perf_counter()
        cpus.append(_cpu(proc))
        peaks["validate"] = sampler.reset()
        lod = load_day(dd, day, contracts)
        t3 = time.perf_counter()
        cpus.append(_cpu(proc))
        peaks["load"] = sampler.reset()
        measure_day(dd, day, contracts, registry)
        t4 = time.perf_counter()
        cpus.append(_cpu(proc))
        peaks["measure"] = sampler.reset()
        d["stage_cpu_seconds"] = {k: round(cpus[i + 1] - cpus[i], 3) for i, k in enumerate(stages)}
        for k, v in d["stage_cpu_seconds"].items():
            stage_cpu[k] += v
        d["stage_peak_rss_bytes"] = peaks
        for k, v in peaks.items():
            stage_peaks[k] = max(stage_peaks[k], v)
        if prof:
            prof.disable()
        cpu1 = proc.cpu_times()
        d.update(ingest=t1 - t0, validate=t2 - t1, load=t3 - t2, measure=t4 - t3, total=t4 - t0,
                 cpu_seconds=(cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
                 rows_in=ing.rows_total, files=ing.new_files, rejected_files=len(ing.rejected),
                 staged=val.received, passed=val.passed, quarantined_validate=val.quarantined,
                 loaded=lod.loaded_rows, quarantined=lod.quarantined_rows,
                 rss_after_bytes=proc.memory_info().rss, peak_rss_bytes=_maxrss_bytes())
        d["conserved"] = d["rows_in"] == d["loaded"] + d["quarantined"] == d["staged"]
        for k in stages:
            stages[k] += d[k]
        for k in totals:
            totals[k] += d[k]
        per_day.append(d)
        print(f"[pipeline] {day}: {d['rows_in']} rows  ingest {d['ingest']:.2f}s  validate {d['validate']:.2f}s  "
              f"load {d['load']:.2f}s  measure {d['measure']:.2f}s  rss {d['rss_after_bytes'] / 2**20:.0f} MiB  "
              f"peak {d['peak_rss_bytes'] / 2**20:.0f} MiB  stage peaks "
              + " ".join(f"{k} {v / 2**20:.0f}" for k, v in peaks.items()), flush=True)
    sampler.stop()
    if prof:
        prof.dump_stats(profile)
    total = sum(stages.values())
    return {
        "stages_seconds": {k: round(v, 3) for k, v in stages.items()},
        "stages_cpu_seconds": {k: round(v, 3) for k, v in stage_cpu.items()},
        "total_seconds": round(total, 3),
        "import_seconds": round(import_s, 3),
        **totals,
        "conserved": all(d["conserved"] for d in per_day) and totals["rows_in"] == totals["loaded"] + totals["quarantined"],
        "rows_per_second": round(totals["rows_in"] / total, 1) if total else None,
        "peak_rss_bytes": _maxrss_bytes(),
        "stage_peak_rss_bytes": stage_peaks,
        "per_day": per_day,
        "pid": os.getpid(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pipeline")
    p.add_argument("data_dir")
    p.add_argument("out")
    p.add_argument("days", nargs="+", type=date.fromisoformat)
    p.add_argument("--profile", default=None, help="write cProfile stats of the stages to this file")
    a = p.parse_args(argv)
    res = run(a.data_dir, a.days, a.profile)
    Path(a.out).write_text(json.dumps(res, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
