"""The Dagster code location loads, explains itself, and its schedules and sensor fire correctly."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from pipelines.definitions import ALL_ASSETS, build_definitions, defs

REPO = Path(__file__).resolve().parents[1]
CST = ZoneInfo("Asia/Shanghai")


STAGES = ("received_rows", "validated_rows", "warehouse_records", "daily_metrics")


def test_definitions_load_and_validate_with_an_asset_per_feed_and_stage():
    from contracts import load_contracts

    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    feeds = list(load_contracts())  # generated from the contracts, not listed by hand
    assert len(feeds) >= 5
    assert keys == {f"{f}/{s}" for f in feeds for s in STAGES} | {"feedback_workbooks", "data_docs", "quality_dashboard", "monthly_indicators", "upward_push",
                                                                 "record_statuses", "crosscheck_findings"}
    # each feed's lineage stands on its own: received → validated → loaded → measured
    for feed in feeds:
        for up, down in zip(STAGES, STAGES[1:]):
            parents = {p.to_user_string() for p in graph.get(dg.AssetKey([feed, down])).parent_keys}
            assert parents == {f"{feed}/{up}"}, (feed, down, parents)
    docs_parents = {p.to_user_string() for p in graph.get(dg.AssetKey("data_docs")).parent_keys}
    assert docs_parents == {f"{f}/validated_rows" for f in feeds}


def test_a_night_stays_one_step_per_stage():
    job = defs.resolve_job_def("nightly_collection")
    steps = sorted(node.name for node in job.graph.node_defs)
    assert steps == sorted([*STAGES, "feedback_workbooks", "data_docs", "quality_dashboard", "upward_push",
                                 "record_statuses", "crosscheck_findings"])


def test_dagster_cli_validates_the_code_location(tmp_path):
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path))
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    out = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "pipelines.definitions"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "passed validation" in (out.stdout + out.stderr)


def test_every_asset_explains_itself():
    for asset in ALL_ASSETS:
        for spec in asset.specs:
            assert spec.description and any("\u4e00" <= ch <= "\u9fff" for ch in spec.description), spec.key
            assert spec.owners, spec.key
            assert spec.kinds, spec.key
            assert spec.group_name in {"ingest", "validate", "load", "measure", "publish", "export", "credit"}, spec.key


def test_duckdb_writers_share_one_pool_and_checks_sit_next_to_each_feeds_asset():
    from contracts import load_contracts

    by_op = {a.op.name: a for a in ALL_ASSETS}
    for name in ("received_rows", "warehouse_records", "daily_metrics"):
        assert by_op[name].op.pool == "duckdb_writer", name
    checks = {(c.asset_key.to_user_string(), c.name, c.blocking) for a in ALL_ASSETS for c in a.check_specs}
    for feed in load_contracts():
        assert (f"{feed}/validated_rows", "rows_conserved", True) in checks
        assert (f"{feed}/warehouse_records", "loaded_equals_passed", True) in checks
        assert (f"{feed}/validated_rows", "compliance_rate_100", False) in checks
        assert (f"{feed}/received_rows", "every_file_readable", False) in checks
        assert (f"{feed}/daily_metrics", "calendar_not_provisional", False) in checks


def test_instance_config_turns_telemetry_and_the_community_popup_off_and_limits_duckdb_writers(tmp_path):
    from pipelines.instance import get_instance

    # a fresh instance, created the way `credit-etl ui/run/demo` create it
    instance = get_instance(tmp_path)
    try:
        assert (tmp_path / "dagster_home" / "dagster.yaml").read_text() == (REPO / "dagster.yaml").read_text()
        assert instance.get_settings("telemetry") == {"enabled": False}
        assert instance.get_settings("nux") == {"enabled": False}
        assert instance.nux_enabled is False  # what the webserver asks before showing the pop-up
        assert instance.get_settings("concurrency")["pools"]["default_limit"] == 1
    finally:
        instance.dispose()


def test_partitions_start_at_the_configured_first_day(tmp_path):
    from datetime import date

    from assets.partitions import FIRST_DAY_ENV, first_day

    assert first_day({FIRST_DAY_ENV: "2026-03-01"}) == date(2026, 3, 1)
    # unset: the first day of the previous month (the month `credit-etl demo` generates)
    assert first_day({}, today=date(2026, 11, 29)) == date(2026, 10, 1)
    assert first_day({}, today=date(2026, 1, 5)) == date(2025, 12, 1)
    with pytest.raises(ValueError, match=FIRST_DAY_ENV):
        first_day({FIRST_DAY_ENV: "2026/03/01"})
    # the code location honours it in a fresh process: no partitions before the first day
    code = ("from assets.partitions import daily_partitions as d, monthly_partitions as m;"
            "print(d.get_first_partition_key(), m.get_first_partition_key())")
    env = dict(os.environ, CREDIT_ETL_FIRST_DAY="2026-09-15")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2026-09-15", "2026-09-01"]


def test_nightly_schedule_targets_the_previous_received_day():
    schedule = defs.resolve_schedule_def("nightly_collection_0130")
    assert schedule.cron_schedule == "30 1 * * *"
    assert schedule.execution_timezone == "Asia/Shanghai"
    # 01:30 on 10 October (a make-up working Saturday) processes what arrived on 9 October.
    when = datetime(2026, 10, 10, 1, 30, tzinfo=CST)
    with dg.build_schedule_context(scheduled_execution_time=when) as ctx:
        requests = schedule.evaluate_tick(ctx).run_requests
    assert [r.partition_key for r in requests] == ["2026-10-09"]


def test_monthly_schedule_exports_the_month_that_ended():
    schedule = defs.resolve_schedule_def("monthly_indicator_export_1st_0600")
    when = datetime(2026, 11, 1, 6, 0, tzinfo=CST)
    with dg.build_schedule_context(scheduled_execution_time=when) as ctx:
        requests = schedule.evaluate_tick(ctx).run_requests
    assert [r.partition_key for r in requests] == ["2026-10-01"]


def test_inbox_sensor_requests_each_new_received_day_once(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDIT_ETL_DATA_DIR", str(tmp_path))
    sensor = defs.resolve_sensor_def("inbox_sensor")
    for day in ("2026-10-08", "2026-10-09"):
        folder = tmp_path / "inbox" / "scjgj" / "penalties" / day
        folder.mkdir(parents=True)
        (folder / "cf.csv").write_text("行政相对人名称\n某公司\n", encoding="utf-8")
    undated = tmp_path / "inbox" / "yjglj" / "penalties" / "undated.csv"
    undated.parent.mkdir(parents=True)
    undated.write_text("x\n", encoding="utf-8")
    mtime = datetime(2026, 10, 12, 9, 0, tzinfo=CST).timestamp()
    os.utime(undated, (mtime, mtime))
    # nested deeper than <dept>/<feed>/<day>/<file> or a non-date folder: not a delivery
    (tmp_path / "inbox" / "scjgj" / "penalties" / "not-a-date").mkdir()
    (tmp_path / "inbox" / "scjgj" / "penalties" / "not-a-date" / "x.csv").write_text("x")

    ctx = dg.build_sensor_context(cursor=None)
    first = list(sensor(ctx))
    assert sorted(r.partition_key for r in first) == ["2026-10-08", "2026-10-09", "2026-10-12"]
    ctx2 = dg.build_sensor_context(cursor=ctx.cursor)
    assert list(sensor(ctx2)) == []
    # a file copied in with an old modification time (cp -p) still triggers its day
    late = tmp_path / "inbox" / "scjgj" / "penalties" / "2026-10-08" / "resent.csv"
    late.write_text("行政相对人名称\n另一公司\n", encoding="utf-8")
    os.utime(late, (mtime - 86400 * 30, mtime - 86400 * 30))
    third = list(sensor(dg.build_sensor_context(cursor=ctx2.cursor)))
    assert [r.partition_key for r in third] == ["2026-10-08"]


@pytest.mark.parametrize("data_dir", ["/srv/credit"])
def test_resources_follow_the_configured_data_dir(data_dir):
    resources = build_definitions(data_dir).resources
    assert str(resources["warehouse"].layout.root) == data_dir


def test_run_before_the_first_partition_day_says_how_to_reach_it(tmp_path, capsys):
    from assets.partitions import FIRST_DAY
    from pipelines.cli import main

    assert FIRST_DAY == os.environ["CREDIT_ETL_FIRST_DAY"]
    assert main(["--data-dir", str(tmp_path), "run", "--date", "2025-12-31"]) == 2
    err = capsys.readouterr().err
    assert "CREDIT_ETL_FIRST_DAY" in err and "早于分区起始日" in err
