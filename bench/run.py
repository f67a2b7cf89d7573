"""The floor-relative benchmark (``python -m bench`` / ``credit-etl bench``); see BENCHMARKS.md.

Scenarios:

- ``job`` (default): ``rows`` rows received on one day, on an empty warehouse, through the whole
  ``nightly_collection`` job as ``credit-etl run`` runs it (``bench.job``), then through the stage
  functions alone (``bench.pipeline``), then the floor, all on the same files in the same run.
- ``month``: ``rows`` rows over ``days`` (default 31) small nights through the whole job in one
  process, against the same files received as one night (the fixed cost of a small night).
- ``night``: ``rows`` rows received on one day, on an empty warehouse (stage functions only).
- ``backfill``: ``rows`` rows over ``days`` received days (default: 500,000 rows a day), loaded
  day by day into one warehouse; the peak memory must follow the largest day, not the total.
- ``incremental``: a night of ``rows`` rows (default 10,000) on a warehouse that already holds a
  backfill (``--reuse DIR`` or ``<root>/backfill-<base_rows>``, built when missing) versus the
  very same files on an empty warehouse.

Every scenario runs the pipeline in one child process (``bench.job`` or ``bench.pipeline``; the
parent samples the peak RSS of its whole process tree) and DuckDB's
``COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT parquet)`` over the same CSV files in
another (``bench.floor``), so neither peak memory includes the other nor the data-set build.

Work directories live under ``<data_dir>/bench/`` (``credit-etl --data-dir DIR bench``; the
smoke test passes a temporary directory). A data set with the same parameters is reused;
pipeline outputs are always rebuilt (``night``, ``backfill``) or extended by a new day
(``incremental`` on the big warehouse: each run appends one more night, so runs can be repeated).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from bench import dataset

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_START = date(2026, 10, 13)  # a Tuesday: every department reports on a working day
ROWS_PER_BACKFILL_DAY = 500_000
DEFAULT_SEED = 20261123
PIPELINE_OUTPUTS = ("landing", "staging", "validated", "warehouse", "reports", "dagster_home")
BASE_MARKER = "bench_backfill.json"


# ---------------------------------------------------------------------------------------------
# machine and child processes


def machine() -> dict:
    import duckdb
    import numpy
    import pandas
    import pyarrow

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "memory_bytes": mem,
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


class _TreeSampler:
    """Highest RSS of a process and all its descendants together (psutil, every 20 ms): what the
    machine must hold for the job, whatever it starts (the job itself runs in one process)."""

    def __init__(self, pid: int):
        import threading

        import psutil

        self._psutil, self.peak, self._stop = psutil, 0, threading.Event()
        self._proc = psutil.Process(pid)
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _sample(self) -> None:
        ps = self._psutil
        try:
            procs = [self._proc, *self._proc.children(recursive=True)]
        except ps.Error:
            return
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except ps.Error:
                pass
        self.peak = max(self.peak, total)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sample()

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        return self.peak


def _child(module: str, args: list[str], log) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}  # the data dir's own instance
    try:
        cmd = [sys.executable, "-m", module, *args[:1], str(out), *args[1:]]
        t0 = time.perf_counter()
        tail: list[str] = []
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                              env=env) as proc:
            sampler = _TreeSampler(proc.pid)
            for line in proc.stdout:  # progress lines as they come; the rest kept for an error
                line = line.rstrip("\n")
                if line.startswith("["):
                    log(line)
                else:
                    tail = (tail + [line])[-60:]
            proc.wait()
            tree_peak = sampler.stop()
        wall = time.perf_counter() - t0
        if proc.returncode:
            for line in tail:
                log(line)
            raise RuntimeError(f"{module} failed with exit code {proc.returncode}")
        res = json.loads(out.read_text(encoding="utf-8"))
        res["process_wall_seconds"] = round(wall, 3)
        # the sampler can miss a peak shorter than 20 ms; the process's own high-water mark cannot
        res["peak_rss_tree_bytes"] = max(tree_peak, res.get("peak_rss_bytes") or 0, res.get("peak_rss_self_bytes") or 0)
        return res
    finally:
        out.unlink(missing_ok=True)


def _reset_outputs(root: Path) -> None:
    for name in PIPELINE_OUTPUTS:
        shutil.rmtree(root / name, ignore_errors=True)


def _days(start: date, n: int) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range(n)]


def _pipeline(root: Path, days: list[str], log, profile: Path | None = None) -> dict:
    args = [str(root), *days]
    if profile:
        args += ["--profile", str(profile)]
    return _child("bench.pipeline", args, log)


def _floor(root: Path, days: list[str] | None, log) -> dict:
    args = [str(root)]
    for d in days or []:
        args += ["--day", d]
    res = _child("bench.floor", args, log)
    res.pop("per_file", None)
    return res


def _job(root: Path, days: list[str], log) -> dict:
    return _child("bench.job", [str(root), *days], log)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def _job_summary(job: dict, floor: dict, expected_rows: int | None = None) -> dict:
    """Headline figures of a whole-job run. ``ratio`` is the whole ``credit-etl run``-like process
    (start, imports, instance, the job, exit) ÷ the floor; ``job_ratio`` the job's runs alone."""
    conserved = job["conserved"] and job["rows_in"] == job["loaded"] + job["quarantined"]
    if expected_rows is not None:
        conserved = conserved and job["rows_in"] == expected_rows
    return {
        "job_seconds": job["total_seconds"],
        "job_process_seconds": job["process_wall_seconds"],
        "job_cpu_seconds": job["cpu_seconds"],
        "job_process_cpu_seconds": job["process_cpu_seconds"],
        "floor_seconds": floor["seconds"],
        "floor_cpu_seconds": floor.get("cpu_seconds"),
        "ratio": _ratio(job["process_wall_seconds"], floor["seconds"]),
        # CPU seconds ÷ CPU seconds: what the machine pays, less sensitive to other users' load
        "cpu_ratio": _ratio(job["process_cpu_seconds"], floor.get("cpu_seconds")),
        "job_ratio": _ratio(job["total_seconds"], floor["seconds"]),
        "steps_seconds": job["steps_seconds"],
        "rows_in": job["rows_in"],
        "loaded": job["loaded"],
        "quarantined": job["quarantined"],
        "conserved": conserved,
        "job_success": job["success"],
        "job_peak_rss_tree_bytes": job["peak_rss_tree_bytes"],
        "floor_peak_rss_bytes": floor["peak_rss_bytes"],
        "floor_rows_per_second": floor["rows_per_second"],
    }


def _summary(pipe: dict, floor: dict) -> dict:
    return {
        "pipeline_seconds": pipe["total_seconds"],
        "floor_seconds": floor["seconds"],
        "ratio": round(pipe["total_seconds"] / floor["seconds"], 2) if floor["seconds"] else None,
        "rows_in": pipe["rows_in"],
        "loaded": pipe["loaded"],
        "quarantined": pipe["quarantined"],
        "conserved": pipe["conserved"] and pipe["rows_in"] == pipe["loaded"] + pipe["quarantined"],
        "pipeline_rows_per_second": pipe["rows_per_second"],
        "floor_rows_per_second": floor["rows_per_second"],
        "pipeline_cpu_seconds": round(sum(d.get("cpu_seconds", 0) for d in pipe.get("per_day", [])), 3),
        "cpu_ratio": _ratio(sum(d.get("cpu_seconds", 0) for d in pipe.get("per_day", [])), floor.get("cpu_seconds")),
        "pipeline_peak_rss_bytes": pipe["peak_rss_bytes"],
        "floor_peak_rss_bytes": floor["peak_rss_bytes"],
    }


# ---------------------------------------------------------------------------------------------
# scenarios


def run_night(root: Path, rows: int, seed: int, log, regenerate: bool = False, profile: Path | None = None) -> dict:
    work = root / f"night-{rows}"
    desc = dataset.ensure(work, rows=rows, start=DEFAULT_START, days=1, seed=seed, reuse=not regenerate, log=log)
    _reset_outputs(work)
    days = _days(DEFAULT_START, 1)
    pipe = _pipeline(work, days, log, profile)
    floor = _floor(work, days, log)
    return {"data_dir": str(work), "dataset": _dataset_info(desc), "pipeline": pipe, "floor": floor,
            **_summary(pipe, floor)}


def run_job(root: Path, rows: int, seed: int, log, regenerate: bool = False, stages: bool = True) -> dict:
    """The default scenario: ``rows`` rows received in one night, empty warehouse, through the whole
    ``nightly_collection`` job (``bench.job``), then the stage functions alone (``bench.pipeline``)
    on the same files, then the floor — all three in the same run."""
    work = root / f"job-{rows}"
    desc = dataset.ensure(work, rows=rows, start=DEFAULT_START, days=1, seed=seed, reuse=not regenerate, log=log)
    days = _days(DEFAULT_START, 1)
    _reset_outputs(work)
    job = _job(work, days, log)
    res = {"data_dir": str(work), "dataset": _dataset_info(desc), "job": job}
    floor = _floor(work, days, log)
    if stages:
        _reset_outputs(work)
        pipe = _pipeline(work, days, log)
        res["stages"] = {"pipeline": pipe, **_summary(pipe, floor)}
    res["floor"] = floor
    res.update(_job_summary(job, floor, desc["total_rows"]))
    if stages:
        res["stages_ratio"] = res["stages"]["ratio"]
        res["conserved"] = res["conserved"] and res["stages"]["conserved"]
    return res


MONTH_START = date(2026, 10, 1)  # the demo's kind of month: 31 received days, holidays included


def _one_night_inbox(src: Path, dst: Path, day: str) -> int:
    """Every inbox file of a multi-day data set, received on ``day`` instead (names prefixed with
    their own day, so no two collide). Returns the number of files."""
    shutil.rmtree(dst, ignore_errors=True)
    n = 0
    for p in sorted((src / "inbox").glob("*/*/*/*")):
        if p.is_file():
            dept, feed, own_day = p.parts[-4], p.parts[-3], p.parts[-2]
            target = dst / "inbox" / dept / feed / day / f"{own_day}_{p.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, target)
            n += 1
    return n


def run_month(root: Path, rows: int, seed: int, log, days: int = 31, regenerate: bool = False) -> dict:
    """Small nights: ``rows`` rows over ``days`` received days (the demo: about 8,700 over 31),
    night by night through the whole job in one process (as ``credit-etl demo`` does), against the
    very same files received as one night, also through the whole job. What a small night pays
    regardless of its rows shows as the difference."""
    work = root / f"month-{rows}"
    desc = dataset.ensure(work, rows=rows, start=MONTH_START, days=days, seed=seed, reuse=not regenerate, log=log)
    day_list = _days(MONTH_START, days)
    _reset_outputs(work)
    month = _job(work, day_list, log)
    one = root / f"month-{rows}-one-night"
    files = _one_night_inbox(work, one, day_list[0])
    one_night = _job(one, day_list[:1], log)
    floor = _floor(work, None, log)
    res = {
        "data_dir": str(work), "days": days, "dataset": _dataset_info(desc),
        "month": {"job": month, **_job_summary(month, floor, desc["total_rows"])},
        "one_night": {"job": one_night, "files": files, **_job_summary(one_night, floor, desc["total_rows"])},
        "floor": floor,
        "month_cpu_ratio": _ratio(month["process_cpu_seconds"], one_night["process_cpu_seconds"]),
        "month_wall_ratio": _ratio(month["process_wall_seconds"], one_night["process_wall_seconds"]),
        "cpu_seconds_per_night": round(month["process_cpu_seconds"] / days, 2),
    }
    res.update(_job_summary(month, floor, desc["total_rows"]))
    res["conserved"] = res["month"]["conserved"] and res["one_night"]["conserved"]
    return res


def run_backfill(root: Path, rows: int, seed: int, log, days: int | None = None, regenerate: bool = False,
                 profile: Path | None = None, whole_job: bool = False) -> dict:
    n_days = days or max(1, -(-rows // ROWS_PER_BACKFILL_DAY))
    work = root / f"backfill-{rows}"
    desc = dataset.ensure(work, rows=rows, start=DEFAULT_START, days=n_days, seed=seed, reuse=not regenerate, log=log)
    _reset_outputs(work)
    (work / BASE_MARKER).unlink(missing_ok=True)
    day_list = _days(DEFAULT_START, n_days)
    if whole_job:  # day by day through the nightly_collection job, one process (peak: process tree)
        job = _job(work, day_list, log)
        floor = _floor(work, None, log)
        (work / BASE_MARKER).write_text(json.dumps({"rows": rows, "days": day_list, "seed": seed,
                                                    "incremental_days": []}), encoding="utf-8")
        return {"data_dir": str(work), "days": n_days, "runner": "job", "dataset": _dataset_info(desc), "job": job,
                "floor": floor, **_job_summary(job, floor, desc["total_rows"])}
    pipe = _pipeline(work, day_list, log, profile)
    floor = _floor(work, None, log)
    per_day = pipe["per_day"]
    largest = max(per_day, key=lambda d: d["rows_in"])
    first_peak = per_day[0]["peak_rss_bytes"]
    memory = {
        "largest_day_rows": largest["rows_in"],
        "peak_after_first_day_bytes": first_peak,
        "peak_after_largest_day_bytes": largest["peak_rss_bytes"],
        "peak_final_bytes": pipe["peak_rss_bytes"],
        "peak_growth_after_first_day": round(pipe["peak_rss_bytes"] / first_peak, 3) if first_peak else None,
        "rss_after_each_day_bytes": [d["rss_after_bytes"] for d in per_day],
        "seconds_per_day": [round(d["total"], 2) for d in per_day],
    }
    (work / BASE_MARKER).write_text(json.dumps({"rows": rows, "days": day_list, "seed": seed, "incremental_days": []}),
                                    encoding="utf-8")
    return {"data_dir": str(work), "days": n_days, "dataset": _dataset_info(desc), "pipeline": pipe, "floor": floor,
            "memory": memory, **_summary(pipe, floor)}


def run_incremental(root: Path, rows: int, seed: int, log, reuse: Path | None = None, base_rows: int = 10_000_000,
                    regenerate: bool = False, whole_job: bool = False, corrections: bool = False) -> dict:
    """A night of ``rows`` on the backfill's warehouse against the same files on an empty one.

    The night's records are new (their numbers tagged with the night, ``dataset.ensure``), as on
    a real night; the records a real night corrects are few. ``corrections``: the night's
    numbers from the backfill's own space, so nearly every record supersedes one the warehouse
    holds (a stress case: each correction rewrites the older Parquet part its old version is in;
    the empty run then does less work than the full one, not the same)."""
    base = Path(reuse) if reuse else root / f"backfill-{base_rows}"
    built_base = None
    if not (base / BASE_MARKER).exists():
        if reuse:
            raise FileNotFoundError(f"{base} is not a finished backfill data dir ({BASE_MARKER} missing)")
        log(f"[incremental] no base warehouse at {base}: running the backfill of {base_rows} rows first")
        built_base = run_backfill(root, base_rows, seed, log, regenerate=regenerate, whole_job=whole_job)
    marker = json.loads((base / BASE_MARKER).read_text(encoding="utf-8"))
    last = max(date.fromisoformat(d) for d in marker["days"] + marker.get("incremental_days", []))
    day = last + timedelta(days=1)
    night = root / f"incremental-{rows}"
    desc = dataset.ensure(night, rows=rows, start=day, days=1, seed=seed + 1, reuse=not regenerate,
                          key_tag="" if corrections else f"{day:%m%d}n", log=log)
    days = [day.isoformat()]

    # the same files on an empty warehouse
    empty = root / f"incremental-{rows}-empty"
    shutil.rmtree(empty, ignore_errors=True)
    shutil.copytree(night / "inbox", empty / "inbox")
    run = _job if whole_job else _pipeline
    pipe_empty = run(empty, days, log)

    # ... and on the warehouse holding the backfill
    with _connect_count(base) as held:
        base_rows_held = held
    for src in (night / "inbox").glob(f"*/*/{day.isoformat()}"):
        dst = base / "inbox" / src.relative_to(night / "inbox")
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
    pipe_full = run(base, days, log)
    marker.setdefault("incremental_days", []).append(day.isoformat())
    (base / BASE_MARKER).write_text(json.dumps(marker), encoding="utf-8")

    floor = _floor(night, days, log)
    res = {
        "day": day.isoformat(),
        "base_data_dir": str(base),
        "base_rows": marker["rows"],
        "base_versions_held": base_rows_held,
        "dataset": _dataset_info(desc),
        "runner": "job" if whole_job else "stages",
        "night_records": "corrections" if corrections else "new",
        **({"empty": {"job": pipe_empty, **_job_summary(pipe_empty, floor)},
            "full": {"job": pipe_full, **_job_summary(pipe_full, floor)}} if whole_job else
           {"empty": {"pipeline": pipe_empty, **_summary(pipe_empty, floor)},
            "full": {"pipeline": pipe_full, **_summary(pipe_full, floor)}}),
        "floor": floor,
        "incremental_ratio": round(pipe_full["total_seconds"] / pipe_empty["total_seconds"], 2),
        **(_job_summary(pipe_full, floor) if whole_job else _summary(pipe_full, floor)),
    }
    if built_base:
        res["base_backfill"] = built_base
    return res


class _connect_count:
    """Versions rows held by a warehouse (read-only), for the record."""

    def __init__(self, root: Path):
        self.root = root

    def __enter__(self) -> int | None:
        import duckdb

        db = self.root / "warehouse" / "credit.duckdb"
        if not db.exists():
            return None
        con = duckdb.connect(str(db), read_only=True)
        try:
            tables = [r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '%\\_versions' ESCAPE '\\'"
            ).fetchall()]
            return sum(con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in tables)
        finally:
            con.close()

    def __exit__(self, *exc) -> None:
        return None


def _dataset_info(desc: dict) -> dict:
    keep = ("rows", "days", "start", "seed", "seed_rows", "seed_rows_per_day", "seed_defective_share",
            "seed_late_rows", "total_rows", "total_bytes", "build_seconds")
    info = {k: desc.get(k) for k in keep}
    info["files"] = len(desc.get("files", []))
    info["encodings"] = sorted({f.get("encoding") or "" for f in desc.get("files", [])})
    return info


# ---------------------------------------------------------------------------------------------
# report


def _mib(n: int | None) -> str:
    return "—" if n is None else f"{n / 2**20:,.0f} MiB"


def report(res: dict) -> str:
    lines = [f"scenario {res['scenario']}  rows {res['rows']:,}  ({res['machine']['nproc']} cores, "
             f"{res['machine']['cpu_model']}, load {res['machine'].get('loadavg_start')})"]

    def block(title: str, r: dict) -> None:
        p = r["pipeline"]
        st = p["stages_seconds"]
        lines.append(f"  {title}")
        lines.append("    stage      seconds")
        for k, v in st.items():
            lines.append(f"    {k:<9} {v:8.2f}")
        lines.append(f"    {'pipeline':<9} {p['total_seconds']:8.2f}   {p['rows_per_second']:,.0f} rows/s   "
                     f"peak RSS {_mib(p['peak_rss_bytes'])}")
        lines.append(f"    {'floor':<9} {r['floor_seconds']:8.2f}   {r['floor_rows_per_second']:,.0f} rows/s   "
                     f"peak RSS {_mib(r['floor_peak_rss_bytes'])}")
        lines.append(f"    ratio pipeline/floor {r['ratio']}   cpu/floor cpu {r.get('cpu_ratio')}   rows in {r['rows_in']:,} = loaded {r['loaded']:,} "
                     f"+ quarantined {r['quarantined']:,}  ({'conserved' if r['conserved'] else 'NOT CONSERVED'})")

    def job_block(title: str, r: dict) -> None:
        j = r["job"]
        lines.append(f"  {title}")
        lines.append("    step (Dagster event log)   seconds")
        for k, v in j["steps_seconds"].items():
            lines.append(f"    {k:<26} {v:8.2f}")
        lines.append(f"    {'job runs':<26} {j['total_seconds']:8.2f}   cpu {j['cpu_seconds']:.1f} s")
        lines.append(f"    {'whole process':<26} {j['process_wall_seconds']:8.2f}   cpu {j['process_cpu_seconds']:.1f} s "
                     f"(imports {j['import_seconds']:.1f} s)   peak RSS (process tree) {_mib(j['peak_rss_tree_bytes'])}")
        lines.append(f"    {'floor':<26} {r['floor_seconds']:8.2f}   peak RSS {_mib(r['floor_peak_rss_bytes'])}")
        lines.append(f"    ratio whole process/floor {r['ratio']}   job runs/floor {r['job_ratio']}   "
                     f"cpu/floor cpu {r.get('cpu_ratio')} (floor cpu {r.get('floor_cpu_seconds')} s)   rows in {r['rows_in']:,} "
                     f"= loaded {r['loaded']:,} + quarantined {r['quarantined']:,}  "
                     f"({'conserved' if r['conserved'] else 'NOT CONSERVED'}; checks {'ok' if r['job_success'] else 'FAILED'})")

    if res["scenario"] == "job":
        job_block("whole nightly_collection job vs floor", res)
        if "stages" in res:
            block("stage functions (no Dagster, no feedback workbooks or Data Docs) vs floor",
                  {**res["stages"], "floor_seconds": res["floor"]["seconds"]})
    elif res["scenario"] == "month":
        job_block(f"{res['days']} nights, one process", {**res["month"], "job": res["month"]["job"]})
        job_block("the same files as one night", {**res["one_night"], "job": res["one_night"]["job"]})
        lines.append(f"  month ÷ one night: cpu {res['month_cpu_ratio']}   wall {res['month_wall_ratio']}   "
                     f"({res['cpu_seconds_per_night']} cpu s a night)")
    elif res.get("runner") == "job" and res["scenario"] == "incremental":
        job_block("empty warehouse", {**res["empty"], "floor_seconds": res["floor"]["seconds"]})
        job_block(f"warehouse holding {res.get('base_versions_held')} versions", res["full"])
        lines.append(f"  incremental ratio (full ÷ empty, job runs) {res['incremental_ratio']}")
    elif res.get("runner") == "job":
        job_block(f"{res['scenario']} through the whole job", res)
    elif res["scenario"] == "incremental":
        block("empty warehouse", {**res["empty"], "floor_seconds": res["floor"]["seconds"]})
        block(f"warehouse holding {res.get('base_versions_held')} versions",
              {**res["full"], "floor_seconds": res["floor"]["seconds"]})
        lines.append(f"  incremental ratio (full ÷ empty) {res['incremental_ratio']}")
    else:
        block("pipeline vs floor", res)
    if res["scenario"] == "backfill" and "memory" in res:
        m = res["memory"]
        lines.append(f"  memory: peak after day 1 {_mib(m['peak_after_first_day_bytes'])}, final {_mib(m['peak_final_bytes'])}"
                     f" (×{m['peak_growth_after_first_day']}), largest day {m['largest_day_rows']:,} rows")
    return "\n".join(lines)


DEFAULT_ROWS = {"job": 20_000, "night": 20_000, "month": 8_700, "backfill": 10_000_000, "incremental": 10_000}


def main(rows: int | None = None, scenario: str = "job", out: str | Path | None = None, data_dir: str | Path | None = None,
         *, reuse: str | Path | None = None, days: int | None = None, base_rows: int = 10_000_000,
         seed: int = DEFAULT_SEED, regenerate: bool = False, profile: bool = False, quiet: bool = False,
         whole_job: bool = False, corrections: bool = False) -> int:
    """Run one scenario; print the table and write the JSON. Returns the process exit code."""
    if scenario == "province":  # Celery workers and the lake: its own module (bench/province.py)
        from bench.province import main as province_main

        return province_main(rows=rows or 50_000, out=out, data_dir=data_dir, seed=seed)
    rows = rows or DEFAULT_ROWS[scenario]
    log = (lambda *a, **k: None) if quiet else (lambda *a, **k: print(*a, **k, flush=True))
    root = Path(data_dir or "./data").resolve() / "bench"
    root.mkdir(parents=True, exist_ok=True)
    out = Path(out) if out else RESULTS_DIR / f"{scenario}-{rows}.json"
    prof = out.with_suffix(".prof") if profile else None
    info = machine()
    t0 = time.perf_counter()
    if scenario == "job":
        res = run_job(root, rows, seed, log, regenerate)
    elif scenario == "month":
        res = run_month(root, rows, seed, log, days or 31, regenerate)
    elif scenario == "night":
        res = run_night(root, rows, seed, log, regenerate, prof)
    elif scenario == "backfill":
        res = run_backfill(root, rows, seed, log, days, regenerate, prof, whole_job)
    elif scenario == "incremental":
        res = run_incremental(root, rows, seed, log, Path(reuse) if reuse else None, base_rows, regenerate, whole_job,
                              corrections)
    else:
        raise ValueError(f"unknown scenario {scenario!r}")
    info["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    res = {"scenario": scenario, "rows": rows, "machine": info, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "bench_seconds": round(time.perf_counter() - t0, 1), **res}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, ensure_ascii=False), encoding="utf-8")
    log(report(res))
    log(f"results: {out}")
    ok = res["conserved"] if scenario != "incremental" else res["empty"]["conserved"] and res["full"]["conserved"]
    return 0 if ok else 1
