"""End to end on the province path: two counties' nights (county pushes made by the real push
code, in the province inbox) through ``province_job_celery`` on two real Celery worker processes
(Redis broker, Dagster instance on PostgreSQL from ``pipelines/deploy/dagster.province.yaml``)
into the Iceberg lake (PostgreSQL SQL catalog, moto S3 on 127.0.0.1: LAKE's fixtures in
``conftest.py``).

- the same per-county figures come back through DuckDB (``register_lake``) and through pyiceberg,
  and equal the figures computed from the batch files themselves;
- a worker node SIGKILLed in the middle of the lake-writing step: the step runs again on the
  other worker and the lake ends identical (every table's rows) to an undisturbed in-process run;
- the production path: runs submitted to the queue and started by ``dagster-daemon`` keep one
  writer per county × day (the tag concurrency limits), steps still on the workers.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import uuid
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from province_helpers import ACCESS, COUNTIES, SECRET, county_push, deliver, valid_penalty, valid_permit
from contracts import CONTRACTS_DIR
from contracts.config import County, Lake, Province, Settings
from pipelines.workers import (BROKER_ENV, VISIBILITY_ENV, WORKER_PREFIX, start_workers, stop_workers,
                               wait_for_workers)
from test_celery_county import REDIS_ENV, _need, fresh_redis, pg_database, step_events, tree_pids

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 10, 12)
TARGET_STEP = "province_records"  # validates the county's batches and commits them to the lake
PER_COUNTY = 150


@pytest.fixture(scope="module")
def pushes(tmp_path_factory, shipped) -> Path:
    """Two counties' nights in a province inbox (a folder to copy): penalties and permits, some
    late, some with errors, built into real county warehouses and pushed by the real push code."""
    tmp = tmp_path_factory.mktemp("pushes")
    inbox = tmp / "province"
    rng = random.Random(16)
    for n, (county, _name) in enumerate(COUNTIES):
        penalties = [valid_penalty(rng, f"罚{n}-{i}", DAY - timedelta(days=1 + i % 20), 2 + i)
                     for i in range(PER_COUNTY)]
        permits = [valid_permit(rng, f"许{n}-{i}", DAY - timedelta(days=1 + i % 9), 2 + i)
                   for i in range(PER_COUNTY // 3)]
        deliver(inbox, county_push(tmp, shipped, county, DAY, penalties=penalties, permits=permits))
    return inbox


class ProvinceLake:
    """A lake of its own (bucket + catalog database) with its settings folder and environment."""

    def __init__(self, tmp: Path, s3_server: str, pg_server_url: str, pushes: Path):
        self.catalog_url, self._drop = pg_database(pg_server_url)
        self.settings = Settings(province=Province(
            counties=[County(code=c, name=n) for c, n in COUNTIES],
            lake=Lake(warehouse=f"s3://lake-{uuid.uuid4().hex[:10]}/warehouse", endpoint=s3_server,
                      region="us-east-1")))
        self.config = tmp / "config"
        self.config.mkdir(parents=True)
        (self.config / "settings.yaml").write_text(
            yaml.safe_dump(self.settings.model_dump(mode="json", exclude_none=True), allow_unicode=True),
            encoding="utf-8")
        shutil.copy(CONTRACTS_DIR / "departments.yaml", self.config / "departments.yaml")
        self.data = tmp / "province"
        shutil.copytree(pushes, self.data)
        self.env = {"CREDIT_ETL_S3_ACCESS_KEY": ACCESS, "CREDIT_ETL_S3_SECRET_KEY": SECRET,
                    "CREDIT_ETL_CATALOG_URI": self.catalog_url, "AWS_EC2_METADATA_DISABLED": "true",
                    "CREDIT_ETL_CONFIG": str(self.config), "CREDIT_ETL_PROVINCE_DIR": str(self.data)}
        self.run_config = {"resources": {"province": {"config": {"data_dir": str(self.data),
                                                                 "config_dir": str(self.config)}}}}

    def catalog(self):
        from assets.province.partition import catalog_for

        return catalog_for(self.settings, self.env)[1]

    def fingerprint(self) -> dict:
        """Every lake table's rows, sorted (content, not snapshots or file names)."""
        catalog = self.catalog()
        ns = self.settings.province.lake.namespace
        out = {}
        for ident in sorted(catalog.list_tables(ns)):
            rows = catalog.load_table(ident).scan().to_arrow().to_pylist()
            out[ident[-1]] = sorted(json.dumps(r, sort_keys=True, default=str, ensure_ascii=False) for r in rows)
        return out

    def figures_duckdb(self) -> list:
        from assets.province import lake as lk

        con = duckdb.connect()
        lk.register_lake(con, self.settings, self.env)
        return con.execute(
            "SELECT county_code, feed, sum(received_rows), sum(passed_rows), sum(quarantined_rows), "
            "sum(on_time_records), sum(late_records) FROM county_metrics_daily GROUP BY ALL ORDER BY ALL").fetchall()

    def figures_pyiceberg(self) -> list:
        ns = self.settings.province.lake.namespace
        rows = self.catalog().load_table((ns, "county_metrics_daily")).scan().to_arrow().to_pylist()
        per: dict = {}
        cols = ("received_rows", "passed_rows", "quarantined_rows", "on_time_records", "late_records")
        for r in rows:
            k = (r["county_code"], r["feed"])
            per[k] = tuple(a + (r[c] or 0) for a, c in zip(per.get(k, (0,) * len(cols)), cols))
        return sorted((*k, *v) for k, v in per.items())

    def drop(self):
        self._drop()


@pytest.fixture
def celery_env(tmp_path, pg_server_url, monkeypatch):
    """Instance (province yaml on a fresh PostgreSQL database) and broker for this test."""
    broker = fresh_redis(_need(REDIS_ENV))
    db_url, drop = pg_database(pg_server_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "pipelines" / "deploy" / "dagster.province.yaml", home / "dagster.yaml")
    env = {"DAGSTER_HOME": str(home), "CREDIT_ETL_DAGSTER_PG_URL": db_url, BROKER_ENV: broker,
           VISIBILITY_ENV: "20", "CREDIT_ETL_FIRST_DAY": "2026-01-01"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield env
    drop()


def run_counties_on_celery(lake: ProvinceLake, during=None, timeout: float = 900) -> dict[str, tuple[str, bool]]:
    """Both counties' runs launched at once, each by its own orchestrator process
    (``dagster job execute -m pipelines.province -j province_job_celery``, as a run launcher
    would), steps on the workers. Returns {county: (run_id, success)}."""
    import subprocess
    import sys
    import time

    from pipelines.province import partition_key

    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions("county", [c for c, _ in COUNTIES])
    config = lake.data.parent / "run_config.yaml"
    config.write_text(yaml.safe_dump(lake.run_config), encoding="utf-8")
    procs = {}
    for county, _ in COUNTIES:
        tags = {"dagster/partition": str(partition_key(county, DAY)), "dagster/partition/county": county,
                "dagster/partition/day": DAY.isoformat()}
        procs[county] = subprocess.Popen(
            [sys.executable, "-m", "dagster", "job", "execute", "-m", "pipelines.province", "-j", "province_job_celery",
             "--tags", json.dumps(tags), "-c", str(config)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    outputs = {}
    try:
        while any(p.poll() is None for p in procs.values()):
            assert time.monotonic() < deadline, "the province runs did not finish in time"
            if during is not None:
                during(instance)
            time.sleep(0.05)
    finally:
        for county, p in procs.items():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            outputs[county] = p.communicate()[0].decode(errors="replace")[-3000:]
    out = {}
    for county, _ in COUNTIES:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition/county": county}))
        assert len(runs) == 1, (county, outputs[county])
        out[county] = (runs[0].run_id, runs[0].status == dg.DagsterRunStatus.SUCCESS)
        assert out[county][1], outputs[county]
    instance.dispose()
    return out


def test_two_counties_through_two_celery_workers_into_the_lake(tmp_path, pushes, s3_server, pg_server_url,
                                                               celery_env, shipped, monkeypatch):
    from test_province_job import independent_figures

    lake = ProvinceLake(tmp_path, s3_server, pg_server_url, pushes)
    for k, v in lake.env.items():
        monkeypatch.setenv(k, v)
    procs = start_workers(2, log_dir=tmp_path / "worker_logs")
    try:
        names = wait_for_workers(2)
        seen: set[int] = set()
        runs = run_counties_on_celery(lake, during=lambda _i: seen.update(tree_pids(procs)))
        assert sorted(runs) == [c for c, _ in COUNTIES] and all(ok for _, ok in runs.values()), runs
        instance = dg.DagsterInstance.get()
        hosts = set()
        for run_id, _ in runs.values():
            starts = step_events(instance, run_id, "STEP_START")
            assert {e.step_key for e in starts} == {"province_records", "province_county_metrics"}
            pids = {e.dagster_event.pid for e in starts}
            assert os.getpid() not in pids and pids <= seen, (pids, seen)
            hosts |= {e.dagster_event.engine_event_data.metadata["Celery worker"].value
                      for e in instance.all_logs(run_id)
                      if e.dagster_event and "in celery worker" in (e.dagster_event.message or "")}
        assert hosts and hosts <= set(names) and all(h.startswith(WORKER_PREFIX) for h in hosts)
        instance.dispose()
        via_duckdb, via_iceberg = lake.figures_duckdb(), lake.figures_pyiceberg()
        assert via_duckdb == via_iceberg
        assert {r[0] for r in via_duckdb} == {c for c, _ in COUNTIES}
        expected = independent_figures(lake.data, shipped[0])  # (county, feed, rows, on time, late)
        assert [(r[0], r[1], r[2], r[5], r[6]) for r in via_duckdb] == expected
        assert sum(r[2] for r in via_duckdb) == len(COUNTIES) * (PER_COUNTY + PER_COUNTY // 3)
    finally:
        stop_workers(procs)
        lake.drop()


def test_a_worker_killed_mid_commit_step_leaves_the_lake_identical(tmp_path, pushes, s3_server, pg_server_url,
                                                                   celery_env, monkeypatch):
    """Reference: the same pushes run in-process (LAKE's ``run_partitions``) into a lake of its
    own. Then the Celery run, where the worker executing ``province_records`` is SIGKILLed (the
    whole node) while the step runs; Redis hands the step to the other worker after the
    visibility timeout and the run succeeds."""
    from pipelines.province import run_partitions

    reference = ProvinceLake(tmp_path / "ref", s3_server, pg_server_url, pushes)
    lake = ProvinceLake(tmp_path / "celery", s3_server, pg_server_url, pushes)
    try:
        with monkeypatch.context() as mp:
            for k, v in reference.env.items():
                mp.setenv(k, v)
            results = run_partitions(str(reference.data), DAY, instance=dg.DagsterInstance.ephemeral(),
                                     config_dir=str(reference.config))
            assert results and all(r[1] for r in results), results
            expected = reference.fingerprint()
        assert expected.get("county_metrics_daily")

        for k, v in lake.env.items():
            monkeypatch.setenv(k, v)
        procs = start_workers(2, log_dir=tmp_path / "worker_logs")
        try:
            wait_for_workers(2)
            killed: dict = {}

            def kill_mid_step(instance):
                if killed:
                    return
                for rec in instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
                    run_id = rec.dagster_run.run_id
                    for ev in step_events(instance, run_id, "STEP_START"):
                        if ev.step_key != TARGET_STEP:
                            continue
                        pid = ev.dagster_event.pid
                        try:
                            os.kill(pid, signal.SIGSTOP)  # freeze it, then make sure it has not finished
                        except ProcessLookupError:
                            continue
                        if any(e.step_key == TARGET_STEP for e in step_events(instance, run_id, "STEP_SUCCESS")):
                            os.kill(pid, signal.SIGCONT)
                            continue
                        node = next(p for p in procs if pid in tree_pids([p]))
                        os.killpg(node.pid, signal.SIGKILL)
                        killed.update(pid=pid, run_id=run_id)
                        return

            runs = run_counties_on_celery(lake, during=kill_mid_step)
            assert killed, "no worker was killed in the middle of the step"
            assert all(ok for _, ok in runs.values()), runs
            instance = dg.DagsterInstance.get()
            starts = [e for e in step_events(instance, killed["run_id"], "STEP_START") if e.step_key == TARGET_STEP]
            assert len(starts) == 2 and starts[0].dagster_event.pid == killed["pid"] != starts[1].dagster_event.pid
            instance.dispose()
        finally:
            stop_workers(procs)
        assert lake.fingerprint() == expected
        assert lake.figures_duckdb() == reference.figures_duckdb()
    finally:
        lake.drop()
        reference.drop()


def test_queued_runs_started_by_the_daemon_keep_one_writer_per_county(tmp_path, pushes, s3_server, pg_server_url,
                                                                       celery_env, monkeypatch):
    """The production path: runs submitted to the queue (``dagster job launch``), started by
    ``dagster-daemon`` within the tag limits of ``dagster.province.yaml``, orchestrated by the
    default run launcher's process, steps on the Celery workers. The same county × day submitted
    twice (a rerun) never runs at the same time as itself; both runs and the other county's
    succeed."""
    import subprocess
    import sys
    import time

    from pipelines.province import partition_key

    lake = ProvinceLake(tmp_path, s3_server, pg_server_url, pushes)
    for k, v in lake.env.items():
        monkeypatch.setenv(k, v)
    config = tmp_path / "run_config.yaml"
    config.write_text(yaml.safe_dump(lake.run_config), encoding="utf-8")
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions("county", [c for c, _ in COUNTIES])
    procs = start_workers(2, log_dir=tmp_path / "worker_logs")
    daemon = None
    try:
        submitted = []
        for county in (COUNTIES[0][0], COUNTIES[0][0], COUNTIES[1][0]):
            tags = {"dagster/partition": str(partition_key(county, DAY)), "dagster/partition/county": county,
                    "dagster/partition/day": DAY.isoformat()}
            out = subprocess.run([sys.executable, "-m", "dagster", "job", "launch", "-m", "pipelines.province",
                                  "-d", str(REPO), "-j", "province_job_celery", "--tags", json.dumps(tags),
                                  "-c", str(config)], cwd=REPO, capture_output=True, text=True, timeout=300)
            assert out.returncode == 0, out.stdout + out.stderr
            submitted.append(county)
        runs = instance.get_runs()
        assert len(runs) == 3 and {r.status for r in runs} == {dg.DagsterRunStatus.QUEUED}
        wait_for_workers(2)
        daemon = subprocess.Popen([str(Path(sys.executable).parent / "dagster-daemon"), "run", "-m", "pipelines.province",
                                   "-d", str(REPO)], cwd=REPO, stdout=open(tmp_path / "daemon.log", "wb"),
                                  stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            records = instance.get_run_records()
            if all(r.dagster_run.is_finished for r in records):
                break
            time.sleep(1)
        records = instance.get_run_records()
        assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records), \
            [(r.dagster_run.status, r.dagster_run.tags.get("dagster/partition/county")) for r in records]
        same = sorted((r.start_time, r.end_time) for r in records
                      if r.dagster_run.tags["dagster/partition/county"] == COUNTIES[0][0])
        assert len(same) == 2 and same[0][1] <= same[1][0], same  # one after the other
        for r in records:  # the steps ran in the workers, not in the run's own process
            pids = {e.dagster_event.pid for e in step_events(instance, r.dagster_run.run_id, "STEP_START")}
            assert pids and pids <= tree_pids(procs), pids
        instance.dispose()
        assert {r[0] for r in lake.figures_duckdb()} == {c for c, _ in COUNTIES}
    finally:
        if daemon is not None:
            from pipelines.instance import stop_tree

            stop_tree(daemon.pid, grace=20)
        stop_workers(procs)
        lake.drop()
