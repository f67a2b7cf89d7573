"""Province benchmark: ``province_job_celery`` with 1 and 2 Celery workers over the same pushes,
against the DuckDB floor in the same run (``python -m bench.province`` /
``credit-etl bench --scenario province``).

Data: county pushes as the province inbox holds them. A real county night (the sample generator,
the county's own job, then the real push code ``assets/push``) gives the seed batches; each of
``counties`` counties receives copies of them until it has about ``rows`` records, one copy per
batch file with its own batch id (a record resent in another batch counts again, as 归集量 does;
within one batch every key stays unique, so copies do not trip the duplicate-key rule).

Floor: DuckDB turning the very same records, written as one CSV per county × feed, into Parquet
(``COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT parquet)``), in the same run.

Each worker count gets a fresh lake (a new catalog database and bucket), the same broker and a
fresh Dagster instance on PostgreSQL; the ``counties`` runs are launched at once, as the run
queue would start them (one per county). Reported: wall seconds, CPU seconds of the whole process
tree (orchestrator threads, workers, the S3 server thread), peak RSS of that tree, load average
before and after (the machine is shared), and the ratios to the floor.

Needs PostgreSQL (``$CREDIT_ETL_BENCH_PG_URL`` or ``$CREDIT_ETL_TEST_PG_URL``) and Redis
(``$CREDIT_ETL_CELERY_BROKER`` or ``$CREDIT_ETL_TEST_REDIS_URL``); starts moto's S3 server on
127.0.0.1 itself.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path

DAY = date(2026, 10, 13)
COUNTIES = [("500237", "巫山县"), ("500238", "巫溪县"), ("500102", "涪陵区"), ("500101", "万州区")]
RESULTS = Path(__file__).resolve().parent / "results"


def _log(msg: str) -> None:
    print(f"[province] {msg}", flush=True)


def seed_batches(work: Path, seed_rows: int, seed: int) -> list[dict]:
    """A real county night pushed by the real push code: the batch bodies (JSON dicts)."""
    from assets.push.push import queue_night
    from contracts import load_contracts, load_registry
    from contracts.config import PushTarget
    from pipelines.nightly import run_night
    from pipelines.samples.feeds import generate
    from warehouse.db import connect
    from warehouse.layout import DataDir

    county = work / "seed_county"
    generate(county, start=DAY, days=1, rows_per_day=seed_rows, seed=seed)
    os.environ.setdefault("CREDIT_ETL_FIRST_DAY", "2026-01-01")
    import dagster as dg

    result = run_night(county, DAY, instance=dg.DagsterInstance.ephemeral(), http_enabled=False)
    if not result.success:
        raise RuntimeError(result.describe())
    contracts = load_contracts()
    registry = load_registry(contracts=contracts)
    target = PushTarget(name="省平台", url="http://127.0.0.1:9/exchange")
    with connect(DataDir(county)) as con:
        queue_night(con, target, contracts, registry, DAY)
        rows = con.execute("SELECT payload FROM push_batches WHERE night = ? ORDER BY seq", [DAY]).fetchall()
    return [json.loads(bytes(r[0])) for r in rows]


def build_inbox(work: Path, batches: list[dict], counties: int, rows: int) -> dict:
    """inbox/<county>/<day>/<batch_id>.json (copies of the seed batches) and the floor's CSVs."""
    inbox, csvs = work / "province", work / "csv"
    per_copy = sum(len(b["records"]) for b in batches)
    copies = max(1, round(rows / per_copy)) if per_copy else 0
    total = 0
    for code, _name in COUNTIES[:counties]:
        folder = inbox / "inbox" / code / DAY.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        writers: dict = {}
        files = []
        for k in range(copies):
            for b in batches:
                body = dict(b, region_code=code, batch_id=f"{b['batch_id']}-{code}-{k}")
                (folder / f"{body['batch_id']}.json").write_text(json.dumps(body, ensure_ascii=False), "utf-8")
                total += len(body["records"])
                if body["records"]:
                    if body["feed"] not in writers:
                        csvs.mkdir(parents=True, exist_ok=True)
                        path = csvs / f"{code}-{body['feed']}.csv"
                        fh = open(path, "w", encoding="utf-8", newline="")
                        header = list(body["records"][0])
                        w = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
                        w.writeheader()
                        writers[body["feed"]] = (fh, w)
                        files.append(str(path))
                    writers[body["feed"]][1].writerows(body["records"])
        for fh, _ in writers.values():
            fh.close()
    return {"records": total, "copies": copies, "seed_records": per_copy, "csv_files": sorted(str(p) for p in csvs.glob("*.csv"))}


def floor(csv_files: list[str], work: Path) -> dict:
    """DuckDB: the same records' CSV → Parquet, in a child process (wall, CPU, peak RSS)."""
    code = (
        "import duckdb, json, resource, sys, time, os\n"
        "files, out = json.loads(sys.argv[1]), sys.argv[2]\n"
        "con = duckdb.connect(); t = time.perf_counter(); c0 = time.process_time(); rows = 0\n"
        "for i, f in enumerate(files):\n"
        "    con.execute(f\"COPY (SELECT * FROM read_csv('{f}', header=true, all_varchar=true)) TO '{out}/{i}.parquet' (FORMAT parquet)\")\n"
        "    rows += con.execute(f\"SELECT count(*) FROM read_csv('{f}', header=true, all_varchar=true)\").fetchone()[0]\n"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'cpu_seconds': time.process_time() - c0, 'rows': rows,\n"
        "  'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))\n"
    )
    out = work / "floor"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    res = subprocess.run([sys.executable, "-c", code, json.dumps(csv_files), str(out)], capture_output=True,
                         text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


class TreeMeter:
    """Peak RSS (every 50 ms) and CPU seconds of this process and all its descendants."""

    def __init__(self):
        import psutil

        self.ps, self.me, self.peak, self.stop_ev = psutil, psutil.Process(), 0, threading.Event()
        self.cpu_seen: dict[int, float] = {}
        self.t = threading.Thread(target=self._run, daemon=True)
        self.self_cpu0 = sum(self.me.cpu_times()[:2])
        self.t.start()

    def _run(self):
        while not self.stop_ev.wait(0.05):
            total = 0
            try:
                procs = [self.me, *self.me.children(recursive=True)]
            except self.ps.Error:
                continue
            for p in procs:
                try:
                    total += p.memory_info().rss
                    if p.pid != self.me.pid:
                        t = p.cpu_times()
                        self.cpu_seen[p.pid] = t.user + t.system + t.children_user + t.children_system
                except self.ps.Error:
                    pass
            self.peak = max(self.peak, total)

    def stop(self) -> dict:
        self.stop_ev.set()
        self.t.join()
        own = sum(self.me.cpu_times()[:2]) - self.self_cpu0
        return {"peak_rss_tree_bytes": self.peak, "cpu_seconds": round(own + sum(self.cpu_seen.values()), 2)}


def run_with_workers(n: int, inbox: Path, config: Path, s3: str, pg_url: str, broker: str, counties: int,
                     lake_settings) -> dict:
    import dagster as dg
    import sqlalchemy as sa
    import yaml

    from contracts.config import Lake, Province, Settings
    from pipelines.province import partition_key
    from pipelines.workers import BROKER_ENV, start_workers, stop_workers, wait_for_workers

    admin = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg2://"), isolation_level="AUTOCOMMIT")
    dbs = [f"bench_{uuid.uuid4().hex[:10]}" for _ in range(2)]  # the lake's catalog, the Dagster instance
    with admin.connect() as c:
        for db in dbs:
            c.execute(sa.text(f'CREATE DATABASE "{db}"'))
    base = pg_url.replace("postgresql://", "postgresql+psycopg2://").rsplit("/", 1)[0]
    home = Path(tempfile.mkdtemp(prefix="bench-dagster-home-"))
    shutil.copyfile(Path(__file__).resolve().parents[1] / "pipelines" / "deploy" / "dagster.province.yaml",
                    home / "dagster.yaml")
    settings = Settings(province=Province(counties=lake_settings.province.counties, lake=Lake(
        warehouse=f"s3://bench-{uuid.uuid4().hex[:10]}/warehouse", endpoint=s3, region="us-east-1")))
    cfg = config / f"w{n}"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "settings.yaml").write_text(yaml.safe_dump(settings.model_dump(mode="json", exclude_none=True),
                                                      allow_unicode=True), encoding="utf-8")
    from contracts import CONTRACTS_DIR

    shutil.copy(CONTRACTS_DIR / "departments.yaml", cfg / "departments.yaml")
    env = {"DAGSTER_HOME": str(home), "CREDIT_ETL_DAGSTER_PG_URL": f"{base}/{dbs[1]}", BROKER_ENV: broker,
           "CREDIT_ETL_CATALOG_URI": f"{base}/{dbs[0]}", "CREDIT_ETL_CONFIG": str(cfg),
           "CREDIT_ETL_PROVINCE_DIR": str(inbox), "CREDIT_ETL_FIRST_DAY": "2026-01-01",
           "CREDIT_ETL_S3_ACCESS_KEY": "bench", "CREDIT_ETL_S3_SECRET_KEY": "bench-secret",
           "AWS_EC2_METADATA_DISABLED": "true"}
    os.environ.update(env)
    run_config = {"resources": {"province": {"config": {"data_dir": str(inbox), "config_dir": str(cfg)}}}}
    procs = start_workers(n)
    try:
        wait_for_workers(n)
        instance = dg.DagsterInstance.get()
        codes = [c for c, _ in COUNTIES[:counties]]
        instance.add_dynamic_partitions("county", codes)
        cfg_file = cfg / "run_config.yaml"
        cfg_file.write_text(yaml.safe_dump(run_config), encoding="utf-8")
        load0 = os.getloadavg()
        meter = TreeMeter()
        t0 = time.perf_counter()
        # each run's orchestrator in its own process, as a run launcher starts it
        orchestrators = {}
        for code in codes:
            key = partition_key(code, DAY)
            tags = {"dagster/partition": str(key), "dagster/partition/county": code,
                    "dagster/partition/day": DAY.isoformat()}
            orchestrators[code] = subprocess.Popen(
                [sys.executable, "-m", "dagster", "job", "execute", "-m", "pipelines.province",
                 "-j", "province_job_celery", "--tags", json.dumps(tags), "-c", str(cfg_file)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for p in orchestrators.values():
            p.wait()
        wall = time.perf_counter() - t0
        usage = meter.stop()
        load1 = os.getloadavg()
        results = {}
        for code in codes:
            runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition/county": code}))
            results[code] = len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
        instance.dispose()
    finally:
        stop_workers(procs)
    from assets.province import lake as lk
    import duckdb

    con = duckdb.connect()
    lk.register_lake(con, settings, env)
    received = con.execute("SELECT sum(received_rows), sum(loaded_rows) FROM county_metrics_daily").fetchone()
    with admin.connect() as c:
        for db in dbs:
            c.execute(sa.text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"))
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}"'))
    admin.dispose()
    shutil.rmtree(home, ignore_errors=True)
    return {"workers": n, "success": all(results.values()) and len(results) == counties, "seconds": round(wall, 2),
            **usage, "received_rows": int(received[0] or 0), "loaded_rows": int(received[1] or 0),
            "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in load1]}


def main(rows: int = 50_000, counties: int = 4, out: str | Path | None = None, data_dir: str | Path | None = None,
         seed: int = 20261123, seed_rows: int = 2000) -> int:
    from moto.server import ThreadedMotoServer

    from bench.run import machine
    from contracts.config import County, Lake, Province, Settings

    pg_url = os.environ.get("CREDIT_ETL_BENCH_PG_URL") or os.environ.get("CREDIT_ETL_TEST_PG_URL")
    broker = os.environ.get("CREDIT_ETL_CELERY_BROKER") or os.environ.get("CREDIT_ETL_TEST_REDIS_URL")
    if not pg_url or not broker:
        print("需要 PostgreSQL 与 Redis：设置 CREDIT_ETL_BENCH_PG_URL（或 CREDIT_ETL_TEST_PG_URL）与 "
              "CREDIT_ETL_CELERY_BROKER（或 CREDIT_ETL_TEST_REDIS_URL） / PostgreSQL and Redis needed", file=sys.stderr)
        return 3
    work = Path(data_dir or tempfile.mkdtemp(prefix="bench-province-")).resolve() / "bench" / f"province-{counties}x{rows}"
    info = machine()
    marker = work / "dataset.json"
    params = {"counties": counties, "rows": rows, "seed": seed, "seed_rows": seed_rows}
    if marker.exists() and json.loads(marker.read_text("utf-8")).get("params") == params:
        data = json.loads(marker.read_text("utf-8"))["data"]
        _log(f"reusing the data set in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        _log(f"seed: a county night of {seed_rows} rows through the county job and the push code")
        batches = seed_batches(work, seed_rows, seed)
        data = build_inbox(work, batches, counties, rows)
        marker.write_text(json.dumps({"params": params, "data": data}), "utf-8")
    _log(f"inbox: {counties} counties x {data['copies']} copies of {data['seed_records']} records = {data['records']}")
    fl = floor(data["csv_files"], work)
    _log(f"floor: {fl['rows']} rows CSV->Parquet in {fl['seconds']:.2f} s")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = f"http://{host}:{port}"
    settings = Settings(province=Province(counties=[County(code=c, name=n) for c, n in COUNTIES[:counties]],
                                          lake=Lake(warehouse="s3://bench-unused/warehouse", endpoint=s3)))
    runs = []
    try:
        for n in (1, 2):
            _log(f"{n} worker(s): {counties} county runs at once")
            r = run_with_workers(n, work / "province", work / "config", s3, pg_url, broker, counties, settings)
            r["ratio"] = round(r["seconds"] / fl["seconds"], 1) if fl["seconds"] else None
            r["cpu_ratio"] = round(r["cpu_seconds"] / fl["cpu_seconds"], 1) if fl["cpu_seconds"] else None
            _log(f"{n} worker(s): {r['seconds']} s, {r['cpu_seconds']} CPU s, ratio {r['ratio']}, "
                 f"peak RSS {r['peak_rss_tree_bytes'] / 2**20:.0f} MiB, load {r['loadavg_before']} -> {r['loadavg_after']}")
            runs.append(r)
    finally:
        server.stop()
    res = {"scenario": "province", "counties": counties, "rows_per_county": rows, "day": DAY.isoformat(),
           "records": data["records"], "seed_records": data["seed_records"], "copies": data["copies"],
           "machine": info, "floor": fl, "runs": runs,
           "speedup_2_vs_1": round(runs[0]["seconds"] / runs[1]["seconds"], 2) if runs[1]["seconds"] else None}
    out = Path(out) if out else RESULTS / f"province-{counties}x{rows}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _log(f"written {out}")
    return 0 if all(r["success"] for r in runs) else 1


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000, help="records per county")
    ap.add_argument("--counties", type=int, default=4)
    ap.add_argument("--seed-rows", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--data-dir", type=Path, default=None)
    a = ap.parse_args()
    sys.exit(main(rows=a.rows, counties=a.counties, out=a.out, data_dir=a.data_dir, seed_rows=a.seed_rows))
