"""Peak resident memory of a whole process tree, sampled with psutil.

``ru_maxrss`` sees one process; a night may start helpers (Dagster's step processes, DuckDB
threads share the parent's memory, LibreOffice for conversions), so the bound "below 1 GiB for the
whole process" is checked on the sum of the resident sets of a command and all its descendants,
sampled every ``interval`` seconds (a peak shorter than the interval can be missed; the per-process
``ru_maxrss`` of the top process is reported beside it and never misses one).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

MIB = 1024 * 1024


@dataclass
class TreePeak:
    returncode: int
    seconds: float
    peak_tree_mib: float  # max over samples of sum(RSS of the tree)
    peak_processes: int  # processes in the tree at that sample
    processes: dict  # per process (pid: command, its own peak RSS MiB) over the whole run
    timeline: list  # (seconds since start, tree RSS MiB), one sample every ~0.5 s
    started: float  # wall clock (time.time()) at start, to place a night's steps on the timeline
    peak_at: float  # seconds since start of the peak sample
    stdout: str
    stderr: str


def run_tree_peak(cmd: list[str], *, cwd: str | Path | None = None, env: dict | None = None,
                  interval: float = 0.05, timeout: float | None = None) -> TreePeak:
    t0 = time.perf_counter()
    started = time.time()
    peak_at = 0.0
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peak, nproc = 0, 0
    seen: dict[int, list] = {}
    timeline: list = []
    import threading

    chunks: dict[str, list[str]] = {"out": [], "err": []}
    readers = [threading.Thread(target=lambda s=s, k=k: chunks[k].append(s.read()), daemon=True)
               for s, k in ((proc.stdout, "out"), (proc.stderr, "err"))]
    for r in readers:
        r.start()
    while proc.poll() is None:
        total, n = 0, 0
        try:
            procs = [root] + root.children(recursive=True)
        except psutil.Error:
            procs = []
        for p in procs:
            try:
                rss = p.memory_info().rss
                total += rss
                n += 1
                if p.pid not in seen:
                    seen[p.pid] = [" ".join(p.cmdline())[:160], 0]
                seen[p.pid][1] = max(seen[p.pid][1], rss)
            except psutil.Error:
                pass
        now = time.perf_counter() - t0
        if not timeline or now - timeline[-1][0] >= 0.5:
            timeline.append((round(now, 1), round(total / MIB)))
        if total > peak:
            peak, nproc, peak_at = total, n, round(now, 1)
        if timeout is not None and time.perf_counter() - t0 > timeout:
            proc.kill()
            break
        time.sleep(interval)
    proc.wait()
    for r in readers:
        r.join()
    return TreePeak(proc.returncode, round(time.perf_counter() - t0, 1), round(peak / MIB, 1), nproc,
                    {pid: [c, round(m / MIB, 1)] for pid, (c, m) in seen.items()}, timeline,
                    started, peak_at,
                    "".join(chunks["out"]), "".join(chunks["err"]))


def night_steps(data_dir: str | Path, started: float) -> list[tuple[float, float, str]]:
    """(start, end, step) of the last night's Dagster steps, in seconds since ``started``."""
    import os

    import dagster as dg

    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(Path(data_dir).resolve() / "dagster_home")
    try:
        with dg.DagsterInstance.get() as inst:
            run = inst.get_runs(limit=1)[0]
            begun: dict[str, float] = {}
            out = []
            for r in inst.all_logs(run.run_id):
                ev = r.dagster_event
                if ev is None:
                    continue
                if ev.event_type_value == "STEP_START":
                    begun[r.step_key] = r.timestamp - started
                elif ev.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and r.step_key in begun:
                    out.append((round(begun[r.step_key], 1), round(r.timestamp - started, 1), r.step_key))
    finally:  # never leak DAGSTER_HOME into later commands (they would use this night's instance)
        if before is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = before
    return out


def peak_by_step(res: TreePeak, steps: list[tuple[float, float, str]]) -> dict[str, float]:
    """Highest sampled tree RSS (MiB) inside each step; 'outside steps' for the rest."""
    out: dict[str, float] = {}
    for t, mib in res.timeline:
        name = next((n for a, b, n in steps if a <= t <= b), "outside steps")
        out[name] = max(out.get(name, 0), mib)
    return out


if __name__ == "__main__":
    res = run_tree_peak(sys.argv[1:])
    print(res.peak_tree_mib, res.seconds, res.returncode)
