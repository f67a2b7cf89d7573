"""The Celery machinery on a job that exists: the county ``nightly_collection`` job with its steps
on two real Celery worker processes (``pipelines/workers.py``), a real Redis broker and a
PostgreSQL Dagster instance built from ``pipelines/deploy/dagster.province.yaml``.

- the run is recorded in the PostgreSQL instance and every step executes in a worker process
  (the step events' pids belong to the workers, the Celery engine events name them);
- the warehouse ends identical to the same night run in-process;
- a worker node killed (SIGKILL of its whole process group) in the middle of a step: the step is
  handed to the other worker and the warehouse still ends identical.

Needs $CREDIT_ETL_TEST_PG_URL and $CREDIT_ETL_TEST_REDIS_URL (``.ci/postgres.sh``,
``.ci/redis.sh``); skipped without them, except in CI, where that is an error.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import psutil
import pytest

from contracts import load_contracts, load_registry
from crash_harness import fingerprint, temp_files
from pg_helpers import pg_database as _pg_database
from pipelines.nightly import run_night
from pipelines.samples.feeds import generate
from pipelines.samples.http import start_sample_server
from pipelines.workers import (BROKER_ENV, VISIBILITY_ENV, WORKER_PREFIX, start_workers, stop_workers,
                               wait_for_workers)

REPO = Path(__file__).resolve().parents[2]
PG_ENV, REDIS_ENV = "CREDIT_ETL_TEST_PG_URL", "CREDIT_ETL_TEST_REDIS_URL"
DAY = date(2026, 11, 2)
ROWS = 300
SEED = 7


def _need(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not set in CI: .ci/run must start it")
        pytest.skip(f"set {name} (.ci/postgres.sh / .ci/redis.sh start one)")
    return value


def pg_database(url: str):
    return _pg_database(url, prefix="credit_etl_celery_")


def fresh_redis(url: str) -> str:
    """A Redis database of its own for this module (picked at random among 1..15 and flushed),
    so tasks queued by an earlier, interrupted test run are never picked up."""
    import random

    import redis

    db_url = urlunsplit(urlsplit(url)._replace(path=f"/{random.randint(1, 15)}"))
    redis.Redis.from_url(db_url).flushdb()
    return db_url


@pytest.fixture(scope="module")
def province(tmp_path_factory):
    """Environment of the orchestrator and the workers: instance on PostgreSQL (the province
    yaml), broker on Redis, a sample HTTP department server; yields a dict of settings."""
    pg, redis_url = _need(PG_ENV), _need(REDIS_ENV)
    db_url, drop = pg_database(pg)
    broker = fresh_redis(redis_url)
    home = tmp_path_factory.mktemp("dagster_home_province")
    shutil.copyfile(REPO / "pipelines" / "deploy" / "dagster.province.yaml", home / "dagster.yaml")
    inbox_seed = tmp_path_factory.mktemp("inbox_seed")
    generate(inbox_seed, start=DAY, days=1, rows_per_day=ROWS, seed=SEED)
    registry = load_registry(contracts=load_contracts())
    env = {"DAGSTER_HOME": str(home), "CREDIT_ETL_DAGSTER_PG_URL": db_url, BROKER_ENV: broker,
           VISIBILITY_ENV: "20", "CREDIT_ETL_FIRST_DAY": "2026-01-01"}
    tokens = {}
    for dept in registry.departments:
        for delivery in dept.delivery.values():
            if delivery.kind == "http":
                env[delivery.token_env] = "tok"
                tokens[dept.code] = "tok"
    server, base = start_sample_server(inbox_seed, tokens=tokens)
    env["CREDIT_ETL_HTTP_BASE"] = base
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        try:
            yield {"env": env, "home": home, "seed": inbox_seed, "base": base,
                   "logs": tmp_path_factory.mktemp("worker_logs")}
        finally:
            server.stop()
            drop()


def night_dir(province, tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(province["seed"], root)
    return root


def run_on_celery(province, data_dir: Path, *, during=None) -> tuple[dg.DagsterInstance, str, bool]:
    """Launch the night on the instance with the Celery executor (orchestrated here, steps in
    the workers); ``during(instance, run_id)`` is polled while the run is in flight."""
    import threading

    from pipelines.workers import nightly_collection_on_celery

    instance = dg.DagsterInstance.get()
    recon = dg.reconstructable(nightly_collection_on_celery)
    run_config = {"resources": {"warehouse": {"config": {"data_dir": str(data_dir)}}}}
    box: dict = {}

    def orchestrate():
        try:
            with dg.execute_job(recon, instance=instance, run_config=run_config,
                                tags={"dagster/partition": DAY.isoformat()}) as result:
                box["run_id"], box["success"] = result.run_id, result.success
        except BaseException as exc:  # reported below
            box["error"] = exc

    thread = threading.Thread(target=orchestrate, daemon=True)
    thread.start()
    while thread.is_alive():
        if during is not None:
            during(instance)
        thread.join(0.05 if during is not None else 1.0)
    if "error" in box:
        raise box["error"]
    return instance, box["run_id"], box["success"]


def step_events(instance: dg.DagsterInstance, run_id: str, kind: str) -> list:
    return [e for e in instance.all_logs(run_id) if e.dagster_event and e.dagster_event.event_type_value == kind]


def tree_pids(procs) -> set[int]:
    pids = set()
    for p in procs:
        try:
            root = psutil.Process(p.pid)
            pids |= {root.pid, *(c.pid for c in root.children(recursive=True))}
        except psutil.NoSuchProcess:
            pass
    return pids


@pytest.fixture(scope="module")
def in_process_night(province, tmp_path_factory):
    """The same night run in-process (the county's own path) on a SQLite instance: the reference."""
    root = tmp_path_factory.mktemp("night_in_process") / "data"
    shutil.copytree(province["seed"], root)
    home = tmp_path_factory.mktemp("dagster_home_sqlite")
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        result = run_night(root, DAY, http_base=province["base"], instance=instance)
    finally:
        instance.dispose()
    assert result.success, result.describe()
    return fingerprint(root)


def test_steps_run_in_two_celery_workers_and_match_the_in_process_night(province, in_process_night, tmp_path):
    procs = start_workers(2, log_dir=province["logs"])
    try:
        names = wait_for_workers(2)
        assert all(n.startswith(WORKER_PREFIX) for n in names), names
        data = night_dir(province, tmp_path, "celery")
        seen_pids: set[int] = set()
        instance, run_id, success = run_on_celery(province, data, during=lambda _i: seen_pids.update(tree_pids(procs)))
        seen_pids |= tree_pids(procs)
        assert success
        run = instance.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        starts = step_events(instance, run_id, "STEP_START")
        assert len(starts) >= 5
        step_pids = {e.dagster_event.pid for e in starts}
        assert os.getpid() not in step_pids
        assert step_pids <= seen_pids, (step_pids, seen_pids)
        delegated = [e for e in instance.all_logs(run_id)
                     if e.dagster_event and "in celery worker" in (e.dagster_event.message or e.user_message or "")]
        assert delegated, [(e.dagster_event.event_type_value, e.dagster_event.message) for e in instance.all_logs(run_id)
                           if e.dagster_event and "celery" in (e.dagster_event.message or "").lower()][:5]
        workers = {e.dagster_event.engine_event_data.metadata["Celery worker"].value for e in delegated}
        assert len(delegated) == len(starts) and workers <= set(names), workers
        # the broker URL is configured through the environment: not in the run nor its events
        broker = province["env"][BROKER_ENV]
        assert broker not in str(run.run_config) and broker not in str(run.tags)
        assert not any(broker in (e.user_message or "") for e in instance.all_logs(run_id))
        assert fingerprint(data) == in_process_night
        assert temp_files(data) == []
        instance.dispose()
    finally:
        stop_workers(procs)
    assert not (tree_pids(procs) & {p.pid for p in psutil.process_iter()})


def test_a_worker_killed_mid_step_is_replaced_and_the_night_ends_identical(province, in_process_night, tmp_path):
    """SIGKILL of the whole worker node (main process and its pool process) while it executes
    the load step: nobody acknowledges the step's message, Redis hands it to the other worker
    after the visibility timeout (20 s here), the step runs again and the run succeeds."""
    procs = start_workers(2, log_dir=province["logs"])
    try:
        wait_for_workers(2)
        data = night_dir(province, tmp_path, "killed")
        killed: dict = {}

        def kill_during_load(instance):
            if killed:
                return
            runs = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]), limit=1)
            if not runs:
                return
            run_id = runs[0].dagster_run.run_id
            for ev in step_events(instance, run_id, "STEP_START"):
                if ev.step_key != TARGET_STEP:
                    continue
                pid = ev.dagster_event.pid
                os.kill(pid, signal.SIGSTOP)  # freeze the step, then make sure it had not finished
                if step_events(instance, run_id, "STEP_SUCCESS") and any(
                        e.step_key == TARGET_STEP for e in step_events(instance, run_id, "STEP_SUCCESS")):
                    killed["too_late"] = True
                    os.kill(pid, signal.SIGCONT)
                    return
                node = next(p for p in procs if pid in tree_pids([p]))
                os.killpg(node.pid, signal.SIGKILL)
                killed.update(pid=pid, node=node.pid, run_id=run_id)
                return

        instance, run_id, success = run_on_celery(province, data, during=kill_during_load)
        assert not killed.get("too_late"), "the step finished before it could be killed; raise ROWS"
        assert killed, "no worker was killed"
        assert success
        starts = [e for e in step_events(instance, run_id, "STEP_START") if e.step_key == TARGET_STEP]
        assert len(starts) == 2, [e.dagster_event.pid for e in starts]
        assert starts[0].dagster_event.pid == killed["pid"] != starts[1].dagster_event.pid
        assert fingerprint(data) == in_process_night
        instance.dispose()
    finally:
        stop_workers(procs)


TARGET_STEP = "warehouse_records"  # the load: DuckDB transaction and Parquet parts


def test_the_province_instance_has_the_queue_limits_and_retries(province):
    instance = dg.DagsterInstance.get()
    try:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        limits = {(t["key"], t["limit"]) for t in queue.tag_concurrency_limits}
        assert ("county", 1) in limits and ("dagster/partition/county", 1) in limits
        assert all(t["value"] == {"applyLimitPerUniqueValue": True} for t in queue.tag_concurrency_limits)
        assert queue.max_concurrent_runs >= 2
        assert instance.run_retries_enabled and instance.run_retries_max_retries >= 1
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    finally:
        instance.dispose()


def test_the_workers_command_starts_n_workers_and_stops_their_whole_tree(province):
    import subprocess
    import sys

    cli = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "province", "workers", "--count", "2"],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        names = wait_for_workers(2)
        assert sorted(n.split("@")[0] for n in names) == [f"{WORKER_PREFIX}-1", f"{WORKER_PREFIX}-2"]
        tree = psutil.Process(cli.pid).children(recursive=True)
        assert len(tree) >= 4  # two worker nodes, each with its pool process
        cli.send_signal(signal.SIGTERM)
        out, _ = cli.communicate(timeout=60)
        assert cli.returncode == 0, out.decode(errors="replace")
        _gone, alive = psutil.wait_procs(tree, timeout=10)
        assert not alive, alive
        assert "已全部停止" in out.decode()
        assert province["env"][BROKER_ENV] not in out.decode()  # the broker URL is never printed
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
