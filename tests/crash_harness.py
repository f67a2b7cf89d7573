"""Kill -9 a ``credit-etl run`` at many points of a night, rerun it unattended, compare tables.

Run by tests/test_crash_recovery.py as its own process (``python tests/crash_harness.py ARGS``),
it imports the pipeline once and forks one child per ``credit-etl run`` (the child calls the
command's ``main`` exactly as the console script does, in its own process group), which saves
the import time of about 40 runs. Steps:

1. an undisturbed night on a copy of the pristine inbox, with ``CREDIT_ETL_FAULT_LOG``: how many
   crash points (``warehouse.faults``) it passes and in which step each lies;
2. per chosen point: a fresh copy, a run with ``CREDIT_ETL_FAULT_KILL_AT=n`` (SIGKILL of its
   process group at that point), then an unattended rerun of the same command, which must
   succeed; its tables (wall-clock columns left out), Parquet bytes and landing files must equal
   the undisturbed run's, and no temporary file may remain.

Prints one JSON document with the results.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.cli import main as cli_main  # noqa: E402  (imported once, before the forks)
from warehouse.checksum import table_checksums  # noqa: E402
from warehouse.db import connect  # noqa: E402
from warehouse.layout import DataDir  # noqa: E402

WALL_CLOCK = ("first_seen_at", "noted_at", "recorded_at")


def fork_run(data_dir: Path, day: str, env: dict[str, str], log: Path) -> int:
    """One ``credit-etl run`` in a forked child; returns its wait status decoded (-signal or exit code)."""
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.setsid()  # its own process group: the kill takes this tree and nothing else
            os.environ.update(env)
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            code = cli_main(["--data-dir", str(data_dir), "run", "--date", day, "--wait", "60"])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def fingerprint(data_dir: Path) -> dict:
    layout = DataDir(data_dir)
    with connect(layout, read_only=True) as con:
        tables = {}
        for name in table_checksums(con):
            cols = [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                [name]).fetchall() if r[0] not in WALL_CLOCK]
            sel = ", ".join(f'"{c}"' for c in cols)
            count, digest = con.execute(
                f'SELECT count(*), md5(coalesce(string_agg(t::VARCHAR, chr(10) ORDER BY t::VARCHAR), \'\')) '
                f'FROM (SELECT {sel} FROM "{name}") t').fetchone()
            tables[name] = [int(count), digest]
    parquet = {p.relative_to(layout.root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted(layout.parquet_root.rglob("*.parquet"))}
    landing = sorted(p.name for p in layout.landing.rglob("*") if p.is_file())
    return {"tables": tables, "parquet": parquet, "landing": landing}


def temp_files(data_dir: Path) -> list[str]:
    out = []
    for p in data_dir.rglob("*"):
        rel = p.relative_to(data_dir).as_posix()
        if rel.startswith("inbox/"):
            continue
        if p.name.endswith(".tmp") or p.name.endswith(".duckdb.tmp"):
            out.append(rel)
    return out


def choose(points: list[tuple[int, str, str]], want: int) -> list[int]:
    """At least ``want`` points: the first, middle and last of every step, then evenly spread."""
    by_step: dict[str, list[int]] = {}
    for n, step, _ in points:
        by_step.setdefault(step, []).append(n)
    chosen: set[int] = set()
    for ns in by_step.values():
        chosen.update({ns[0], ns[len(ns) // 2], ns[-1]})
    total = len(points)
    i = 0
    while len(chosen) < min(want, total):
        chosen.add(1 + (i * 7919) % total)
        i += 1
    return sorted(chosen)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pristine", type=Path, required=True, help="a data dir holding only the generated inbox")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--day", required=True)
    ap.add_argument("--points", type=int, default=20)
    args = ap.parse_args()
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.pop("DAGSTER_HOME", None)  # each copy keeps its own instance in <data dir>/dagster_home

    def fresh(name: str) -> Path:
        d = args.work / name
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(args.pristine, d, symlinks=True)
        return d

    t0 = time.monotonic()
    ref = fresh("reference")
    faults = args.work / "faults.log"
    faults.unlink(missing_ok=True)
    code = fork_run(ref, args.day, {"CREDIT_ETL_FAULT_LOG": str(faults)}, args.work / "reference.log")
    points = [tuple(line.rstrip("\n").split("\t", 2)) for line in faults.read_text(encoding="utf-8").splitlines()]
    points = [(int(n), step, label) for n, step, label in points]
    reference = fingerprint(ref)
    out = {"reference_exit": code, "points_total": len(points),
           "steps": sorted({p[1] for p in points}), "trials": []}
    for n in choose(points, args.points):
        d = fresh(f"kill-{n}")
        log = args.work / f"kill-{n}.log"
        killed = fork_run(d, args.day, {"CREDIT_ETL_FAULT_KILL_AT": str(n)}, log)
        leftovers = temp_files(d)
        rerun = fork_run(d, args.day, {}, log)
        trial = {"point": n, "step": points[n - 1][1], "label": points[n - 1][2], "killed": killed,
                 "temp_after_kill": leftovers, "rerun_exit": rerun, "temp_after_rerun": temp_files(d),
                 "recovered": [line for line in log.read_text(encoding="utf-8").splitlines() if "恢复" in line]}
        if rerun in (0, 1):
            got = fingerprint(d)
            trial["diff"] = sorted(
                [f"table {k}" for k in set(reference["tables"]) | set(got["tables"])
                 if reference["tables"].get(k) != got["tables"].get(k)]
                + (["parquet"] if got["parquet"] != reference["parquet"] else [])
                + (["landing"] if got["landing"] != reference["landing"] else []))
        else:
            trial["log_tail"] = log.read_text(encoding="utf-8")[-3000:]
        out["trials"].append(trial)
        shutil.rmtree(d, ignore_errors=True)
    out["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(out, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
