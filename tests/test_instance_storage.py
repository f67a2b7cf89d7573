"""The Dagster instance on PostgreSQL (the production dagster.yaml) and on SQLite (the local
default): the nightly job, the schedule's and the sensor's run requests, the run queue, run
retries and monitoring settings, and housekeeping, each against both storages.

PostgreSQL comes from $CREDIT_ETL_TEST_PG_URL (``.ci/run`` starts a real PostgreSQL 15 on
127.0.0.1 and sets it); each test module gets its own fresh database. Without the variable the
PostgreSQL cases skip, except in CI (``CI`` set), where that is an error.
"""

from __future__ import annotations

import os
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from contracts import CONTRACTS_DIR, load_contracts, load_registry
from pg_helpers import pg_database
from pipelines.definitions import build_definitions
from pipelines.housekeeping import prune_landing, prune_run_history
from pipelines.nightly import run_night
from pipelines.samples.feeds import generate
from pipelines.samples.http import start_sample_server
from warehouse.db import connect
from warehouse.layout import DataDir

REPO = Path(__file__).resolve().parents[1]
PG_ENV = "CREDIT_ETL_TEST_PG_URL"
DAY = date(2026, 9, 29)
CST = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request, tmp_path_factory):
    """(kind, instance, data dir with one real night on it, monkeypatch)."""
    kind = request.param
    home = tmp_path_factory.mktemp(f"dagster_home_{kind}")
    drop = None
    with pytest.MonkeyPatch.context() as mp:
        if kind == "postgres":
            url = os.environ.get(PG_ENV)
            if not url:
                if os.environ.get("CI"):
                    pytest.fail(f"{PG_ENV} is not set in CI: .ci/run must start PostgreSQL")
                pytest.skip(f"no PostgreSQL: set {PG_ENV} (.ci/postgres.sh starts one)")
            db_url, drop = pg_database(url)
            mp.setenv("CREDIT_ETL_DAGSTER_PG_URL", db_url)
            shutil.copyfile(REPO / "pipelines" / "deploy" / "dagster.yaml", home / "dagster.yaml")
        else:
            shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
        instance = dg.DagsterInstance.from_config(str(home))
        root = tmp_path_factory.mktemp(f"night_{kind}")
        generate(root, start=DAY, days=1, rows_per_day=4, seed=3)
        registry = load_registry(contracts=load_contracts())
        tokens = {}
        for dept in registry.departments:
            for delivery in dept.delivery.values():
                if delivery.kind == "http":
                    mp.setenv(delivery.token_env, "tok")
                    tokens[dept.code] = "tok"
        server, base = start_sample_server(root, tokens=tokens)
        mp.setenv("CREDIT_ETL_DATA_DIR", str(root))
        try:
            yield kind, instance, DataDir(root), base
        finally:
            server.stop()
            instance.dispose()
            if drop:
                drop()


def test_the_instance_uses_the_intended_storage_and_production_settings(backend):
    kind, instance, _, _ = backend
    storage = type(instance.run_storage).__name__
    assert storage == ("PostgresRunStorage" if kind == "postgres" else "SqliteRunStorage")
    assert type(instance.event_log_storage).__name__.startswith("Postgres" if kind == "postgres" else "Sqlite")
    assert instance.get_settings("telemetry") == {"enabled": False}
    if kind == "postgres":  # the documented production file: queue, retries, monitoring
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure  # a rejected row is not a crash
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 300
        assert instance.run_monitoring_max_runtime_seconds == 21600


def test_the_nightly_job_runs_and_is_recorded(backend):
    kind, instance, layout, base = backend
    result = run_night(layout.root, DAY, http_base=base, instance=instance)
    assert result.success and not result.failed_checks, result.describe()
    run = instance.get_run_by_id(result.run_id)
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags["dagster/partition"] == DAY.isoformat()
    keys = [dg.AssetKey(["penalties", stage]) for stage in ("received_rows", "warehouse_records", "daily_metrics")]
    for key in keys + [dg.AssetKey("upward_push"), dg.AssetKey("quality_dashboard")]:
        assert DAY.isoformat() in instance.get_materialized_partitions(key), key
    assert sum(c["received"] for c in result.by_feed.values()) > 0


def _queue(instance, job, remote_job, workspace, request):
    """Submit a run the way the daemon does for a tick: through the instance's run coordinator."""
    tags = {**request.tags, "dagster/partition": request.partition_key}
    if request.run_key:
        tags["dagster/run_key"] = request.run_key
    run = instance.create_run_for_job(
        job_def=job, run_config={}, tags=tags,
        remote_job_origin=remote_job.get_remote_origin(), job_code_origin=remote_job.get_python_origin(),
    )
    return instance.submit_run(run.run_id, workspace)


def test_schedule_and_sensor_requests_wait_in_the_run_queue(backend):
    kind, instance, layout, base = backend
    defs = build_definitions(str(layout.root), base)
    job = defs.resolve_job_def("nightly_collection")
    schedule = defs.resolve_schedule_def("nightly_collection_0130")
    when = datetime(2026, 10, 10, 1, 30, tzinfo=CST)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=when) as ctx:
        sched_requests = schedule.evaluate_tick(ctx).run_requests
    assert [r.partition_key for r in sched_requests] == ["2026-10-09"]

    sensor = defs.resolve_sensor_def("inbox_sensor")
    with dg.build_sensor_context(instance=instance, cursor=None) as ctx:
        sensor_requests = list(sensor(ctx))
    assert [r.partition_key for r in sensor_requests] == [DAY.isoformat()]  # the generated day's drops

    # the code location as the daemon loads it (a gRPC server process of pipelines.definitions)
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import ModuleTarget

    target = ModuleTarget(module_name="pipelines.definitions", attribute="defs", working_directory=str(REPO),
                          location_name="credit_etl")
    with WorkspaceProcessContext(instance, target) as process:
        workspace = process.create_request_context()
        location = workspace.get_code_location("credit_etl")
        repo = next(iter(location.get_repositories().values()))
        remote_job = repo.get_full_job("nightly_collection")
        queued = [_queue(instance, job, remote_job, workspace, r) for r in sched_requests + sensor_requests]
    assert all(r.status == dg.DagsterRunStatus.QUEUED for r in queued)
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
    assert sorted(r.dagster_run.tags["dagster/partition"] for r in records) == ["2026-09-29", "2026-10-09"]
    assert any(r.dagster_run.tags.get("dagster/run_key", "").startswith("inbox-") for r in records)


def test_housekeeping_prunes_history_and_unreferenced_files_only(backend):
    kind, instance, layout, base = backend
    defs = build_definitions(str(layout.root), base)
    # the night from the earlier test, or run it now when this test runs alone
    if not instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1):
        assert run_night(layout.root, DAY, http_base=base, instance=instance).success
    queued_before = {r.dagster_run.run_id for r in instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))}

    # every landed file ten years old, plus one orphan nobody points to
    orphan = layout.landing / "ff" / ("f" * 64 + ".csv")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_text("残留文件\n", encoding="utf-8")
    old = (datetime.now() - timedelta(days=3650)).timestamp()
    landed = [p for p in layout.landing.rglob("*") if p.is_file()]
    for p in landed:
        os.utime(p, (old, old))
    with connect(layout) as con:
        referenced = {r[0] for r in con.execute(
            "SELECT m.landed_path FROM ingest_manifest m WHERE m.file_id IN "
            "(SELECT _file_id FROM penalties_versions UNION SELECT file_id FROM quarantine_items)"
            " AND m.landed_path IS NOT NULL").fetchall()}
    assert referenced

    # the job: retention from the settings (defaults); runs are recent and stay
    result = defs.resolve_job_def("housekeeping").execute_in_process(instance=instance)
    assert result.success
    remaining = {p.relative_to(layout.root).as_posix() for p in layout.landing.rglob("*") if p.is_file()}
    assert referenced <= remaining  # a file a record points to is never deleted
    assert orphan.relative_to(layout.root).as_posix() not in remaining
    with connect(layout, read_only=True) as con:
        logged = {r[0] for r in con.execute("SELECT target FROM housekeeping_log WHERE kind = 'landed_file'").fetchall()}
        assert con.execute("SELECT count(*) FROM penalties_versions").fetchone()[0] > 0
    assert logged == {p.relative_to(layout.root).as_posix() for p in landed} - remaining
    assert instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))

    # run history past the retention goes, queued runs stay
    deleted = prune_run_history(instance, datetime.now() + timedelta(days=1))
    assert deleted and not instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]))
    assert {r.dagster_run.run_id for r in instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))} == queued_before
    # a second pass finds nothing more to do
    again = prune_landing(layout, load_contracts(CONTRACTS_DIR), datetime.now())
    assert again.deleted == [] and set(again.kept_referenced) >= referenced
